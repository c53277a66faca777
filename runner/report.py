"""The contact sheet: ``<output_dir>/index.html``, and the pick / reject verdicts it shows.

The page is built in two steps so each can be tested alone: ``collect`` reads the manifest,
the store and the files into a plain ``ReportData``; ``render_html`` turns that into one
self-contained HTML file (inline CSS and JS from ``report_assets/``, no network, clip and
image paths relative to the page so it works from ``file://``). Each take carries its event
history (``take_histories``, every event read in one query) in a collapsed ``<details>``.
The report reads the store and the files, never the API.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import shlex
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol
from urllib.parse import quote

from runner.delivery import HISTORY, clip_relpath, read_sidecar
from runner.errors import InputError
from runner.files import make_batch_folder, write_atomic, writing
from runner.jobs import fingerprint
from runner.model import DEFAULT_PROVIDER, IN_FLIGHT_STATES, JOB_STATES, Manifest, Shot

Status = Literal["done", "failed", "in_flight", "not_started"]
Verdict = Literal["picked", "rejected"]

#: Up to this many clips on a page, every ``<video>`` preloads its metadata at once. Beyond
#: it each preloads nothing until it scrolls near the viewport (``sheet.js``), so that a
#: sheet of 10,000 takes does not start 10,000 media loads when it opens.
EAGER_VIDEOS = 60

STATUS_LABELS: dict[Status, str] = {
    "done": "done",
    "failed": "failed",
    "in_flight": "in flight",
    "not_started": "not started",
}
REPORT_NAME = "index.html"


class ReviewStore(Protocol):
    """What the review surface needs from the state store (``runner.store.Store``)."""

    def job_states(self) -> Sequence[Mapping[str, Any]]: ...

    def verdicts(self) -> Mapping[tuple[str, int], str]: ...

    def set_verdict(self, shot: str, take: int, verdict: Verdict | None) -> None: ...


class HistoryStore(Protocol):
    """What the takes' histories need from the state store: every event, in order of id."""

    def events(self) -> Iterable[Mapping[str, Any]]: ...


class SheetStore(ReviewStore, HistoryStore, Protocol):
    """What the contact sheet needs from the state store (``runner.store.Store``)."""


@dataclass(frozen=True, slots=True)
class TakeRecord:
    """One (shot, take) as the store knows it; the fields the page shows."""

    state: str = "pending"
    file: str | None = None
    task_id: str | None = None
    error: str | None = None
    attempts: int = 0
    progress: str | None = None
    generation: int = 1
    fingerprint: str | None = None
    possible_duplicate: bool = False
    submitted_at: str | None = None
    completed_at: str | None = None
    downloaded_at: str | None = None

    def clip_file(self, out: Path, shot_id: str, take: int) -> Path:
        """Where this take's clip is: the file the store recorded, else its usual place."""
        path = Path(self.file) if self.file else clip_path(out, shot_id, take)
        return path if path.is_absolute() else out / path

    def outdated_for(self, shot: Shot, take: int) -> bool:
        """The row is of an earlier version of the shot (edited since, not yet run again)."""
        if any(image.kind == "shot" for image in shot.images):
            # A chained shot's fingerprint needs its sources' delivered clips, which the
            # page does not bind; ``plan`` says when one is stale.
            return False
        return self.fingerprint is not None and self.fingerprint != fingerprint(shot, take)


class HistoryEntry(NamedTuple):
    """One event in a take's history, as the page shows it (a tuple: a sheet of 10,000
    takes holds some 70,000)."""

    #: When (UTC, to the second), as ``_time_text`` writes it; None when unrecorded.
    at: str | None
    #: A job state (``submitting``, ``done``...) or a job event (``bound``, ``delivered``,
    #: ``file-moved``).
    state: str
    detail: str


@dataclass(frozen=True, slots=True)
class ImageView:
    """An input image as the page shows it: a thumbnail source, or a link for a remote URL."""

    kind: str
    label: str
    src: str


@dataclass(frozen=True, slots=True)
class TakeView:
    """One take on the page."""

    take: int
    state: str
    status: Status
    clip: str | None
    clip_missing: bool
    record: TakeRecord
    verdict: Verdict | None = None
    #: The store's row is of an earlier version of the shot (edited since; not yet run again).
    outdated: bool = False
    #: What happened to the take, oldest first (``take_histories``).
    history: tuple[HistoryEntry, ...] = ()
    #: The frames of other shots' clips this take started from (``started_from``).
    frames: tuple[ChainFrame, ...] = ()


@dataclass(frozen=True, slots=True)
class ChainFrame:
    """A frame of another shot's clip that a chained take started from: the shot and take it
    came from, which frame, and a link to the stored PNG."""

    shot: str
    take: int
    frame: str
    src: str


@dataclass(frozen=True, slots=True)
class VersionView:
    """An earlier clip of a shot, kept in ``<shot>/.history/`` (an edit, ``--force`` or a
    rejection replaced it): its file name and a link from the page."""

    name: str
    href: str


@dataclass(frozen=True, slots=True)
class ShotView:
    """One shot on the page, with its takes in order."""

    index: int
    id: str
    prompt: str
    mode: str
    params: tuple[tuple[str, str], ...]
    images: tuple[ImageView, ...]
    takes: tuple[TakeView, ...]
    #: Earlier clips of the shot in ``.history/``, by name.
    versions: tuple[VersionView, ...] = ()

    def has(self, status: Status) -> bool:
        return any(t.status == status for t in self.takes)

    @property
    def picked(self) -> bool:
        return any(t.verdict == "picked" for t in self.takes)


@dataclass(frozen=True, slots=True)
class Totals:
    """The counts at the top of the page."""

    shots: int = 0
    takes: int = 0
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    not_started: int = 0
    picked: int = 0
    rejected: int = 0
    seconds_done: int = 0


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the contact sheet shows, in storyboard order; no HTML in here."""

    title: str
    manifest: str
    output_dir: str
    generated_at: str
    shots: tuple[ShotView, ...]
    totals: Totals = field(default_factory=Totals)


def status_of(state: str) -> Status:
    """The badge for a job state: done, failed, in flight or not started."""
    if state == "done":
        return "done"
    if state == "failed":
        return "failed"
    if state in IN_FLIGHT_STATES:
        return "in_flight"
    return "not_started"


def clip_path(output_dir: Path, shot_id: str, take: int) -> Path:
    """Where a take's clip lives in the batch folder (docs/running.md)."""
    return output_dir / clip_relpath(shot_id, take)


def collect(manifest: Manifest, store: SheetStore | None) -> ReportData:
    """Read the manifest, the store and the clip files into the page's data."""
    if store is None:
        return build_report_data(manifest, {}, {})
    return build_report_data(
        manifest, take_records(store), store.verdicts(), histories=take_histories(store)
    )


def build_report_data(
    manifest: Manifest,
    records: Mapping[tuple[str, int], TakeRecord],
    verdicts: Mapping[tuple[str, int], str],
    *,
    histories: Mapping[tuple[str, int], tuple[HistoryEntry, ...]] | None = None,
    now: datetime | None = None,
) -> ReportData:
    """Join shots, store records, verdicts and histories into the page's data (no I/O but
    ``stat``)."""
    out = manifest.output_dir
    shots = tuple(
        _shot_view(position, shot, out, records, verdicts, histories or {})
        for position, shot in enumerate(manifest.shots, start=1)
    )
    generated = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    return ReportData(
        title=manifest.name,
        manifest=manifest.display_path,
        output_dir=str(out),
        generated_at=generated,
        shots=shots,
        totals=_totals(manifest.shots, shots),
    )


def _shot_view(
    position: int,
    shot: Shot,
    out: Path,
    records: Mapping[tuple[str, int], TakeRecord],
    verdicts: Mapping[tuple[str, int], str],
    histories: Mapping[tuple[str, int], tuple[HistoryEntry, ...]],
) -> ShotView:
    takes = []
    for n in range(1, shot.takes + 1):
        record = records.get((shot.id, n), TakeRecord())
        status = status_of(record.state)
        clip: str | None = None
        missing = False
        if status == "done":
            path = record.clip_file(out, shot.id, n)
            missing = not path.is_file()
            clip = _href(path, out)
        frames = started_from(path, out) if status == "done" else ()
        verdict = verdicts.get((shot.id, n))
        takes.append(
            TakeView(
                take=n,
                state=record.state,
                status=status,
                clip=clip,
                clip_missing=missing,
                record=record,
                verdict=_as_verdict(verdict),
                outdated=record.outdated_for(shot, n),
                history=histories.get((shot.id, n), ()),
                frames=frames,
            )
        )
    return ShotView(
        index=position,
        id=shot.id,
        prompt=shot.prompt,
        mode=shot.mode,
        params=_params(shot),
        images=tuple(
            _image_view(image.source, image.kind, image.path, out) for image in shot.images
        ),
        takes=tuple(takes),
        versions=_versions(out, shot.id),
    )


#: The clips of ``.history/`` the page offers to play (their sidecars are not clips).
VERSION_SUFFIXES = (".mp4", ".mov", ".webm", ".m4v")


def _versions(out: Path, shot_id: str) -> tuple[VersionView, ...]:
    """The clips in ``<shot>/.history/``, by name (a take's versions sort together)."""
    history = out / shot_id / HISTORY
    try:
        names = sorted(
            entry.name
            for entry in os.scandir(history)
            if entry.name.lower().endswith(VERSION_SUFFIXES) and entry.is_file()
        )
    except OSError:  # no such folder, the common case
        return ()
    return tuple(VersionView(name, _href(history / name, out)) for name in names)


def _as_verdict(value: str | None) -> Verdict | None:
    if value == "picked":
        return "picked"
    if value == "rejected":
        return "rejected"
    return None


def _params(shot: Shot) -> tuple[tuple[str, str], ...]:
    params: list[tuple[str, str]] = [("model", shot.model)]
    if shot.provider != DEFAULT_PROVIDER:
        params.insert(0, ("provider", shot.provider))
    if shot.seconds is not None:
        params.append(("seconds", str(shot.seconds)))
    if shot.aspect_ratio:
        params.append(("aspect ratio", shot.aspect_ratio))
    if shot.resolution:
        params.append(("resolution", shot.resolution))
    params.append(("takes", str(shot.takes)))
    if shot.extra:
        params.append(("extra", json.dumps(shot.extra, sort_keys=True, ensure_ascii=False)))
    return tuple(params)


def started_from(clip: Path, out: Path) -> tuple[ChainFrame, ...]:
    """The frames of other shots a delivered take started from, as its sidecar records them
    (``<shot>/inputs/<file>``, written by ``runner.frames``)."""
    request = (read_sidecar(clip) or {}).get("request")
    if not isinstance(request, dict):
        return ()
    entries: list[Any] = [request.get("first_image_url"), request.get("last_image_url")]
    if isinstance(request.get("images"), list):
        entries += request["images"]
    frames = []
    for entry in entries:
        if not (isinstance(entry, dict) and entry.get("kind") == "shot"):
            continue
        shot, take, frame, name = (entry.get(k) for k in ("shot", "take", "frame", "file"))
        if isinstance(shot, str) and isinstance(take, int) and isinstance(name, str):
            png = clip.parent / "inputs" / Path(name).name
            frames.append(ChainFrame(shot, take, str(frame), _href(png, out)))
    return tuple(frames)


def _render_frames(frames: Sequence[ChainFrame]) -> str:
    """On a chained take: each frame it started from, and a link to the shot it came from."""
    items = []
    for f in frames:
        at = f"{f.frame} frame" if f.frame in ("first", "last") else f"frame at {f.frame} s"
        items.append(
            f'<figure class="chain-frame"><img src="{_e(f.src)}" alt="{_e(at)}" '
            f'loading="lazy"><figcaption>from <a href="#shot-{_e(f.shot)}">{_e(f.shot)}</a> '
            f"take {f.take}, {_e(at)}</figcaption></figure>"
        )
    return f'<div class="started-from">{"".join(items)}</div>' if items else ""


def _image_view(source: str, kind: str, path: Path | None, out: Path) -> ImageView:
    if kind == "shot":
        # A frame of another shot: the take's own card shows the frame it started from.
        return ImageView(kind="text", label=source, src="")
    if kind == "url" and not source.lower().startswith(("http://", "https://")):
        # The manifest admits only http(s) URLs; a page must not link anything else
        # (``javascript:``) whatever reached it.
        return ImageView(kind="text", label=source, src="")
    if kind == "data":
        return ImageView(kind=kind, label=source.split(",", 1)[0], src=source)
    if kind == "file" and path is not None:
        return ImageView(kind=kind, label=source, src=_href(path, out))
    return ImageView(kind=kind, label=source, src=source)


def _href(path: Path, base: Path) -> str:
    """A link from the page in ``base`` to ``path``, relative where possible."""
    try:
        rel = os.path.relpath(path.absolute(), base.absolute())
    except ValueError:  # another drive on Windows: no relative path exists
        return path.absolute().as_uri()
    return quote(Path(rel).as_posix())


def _totals(shots: Iterable[Shot], views: tuple[ShotView, ...]) -> Totals:
    seconds = {shot.id: shot.seconds_to_pay for shot in shots}
    takes = [t for view in views for t in view.takes]
    return Totals(
        shots=len(views),
        takes=len(takes),
        done=sum(t.status == "done" for t in takes),
        failed=sum(t.status == "failed" for t in takes),
        in_flight=sum(t.status == "in_flight" for t in takes),
        not_started=sum(t.status == "not_started" for t in takes),
        picked=sum(view.picked for view in views),
        rejected=sum(t.verdict == "rejected" for t in takes),
        seconds_done=sum(
            seconds[view.id] for view in views for t in view.takes if t.status == "done"
        ),
    )


def take_records(store: ReviewStore) -> dict[tuple[str, int], TakeRecord]:
    """The store's job rows as ``TakeRecord`` values, keyed by (shot, take)."""
    return {
        (str(row["shot"]), int(row["take"])): record_from_row(row) for row in store.job_states()
    }


def record_from_row(row: Mapping[str, Any]) -> TakeRecord:
    """A ``TakeRecord`` from one job row of the store (missing columns are left empty)."""

    def text(name: str) -> str | None:
        value = row.get(name)
        return None if value is None or value == "" else str(value)

    progress = row.get("progress")  # 0..100 as the API client normalises it
    return TakeRecord(
        state=str(row.get("state") or "pending"),
        file=text("file"),
        task_id=text("task_id"),
        error=text("error"),
        attempts=int(row.get("attempt") or 0),
        progress=None if progress is None else f"{float(progress):.0f}%",
        generation=int(row.get("generation") or 1),
        fingerprint=text("fingerprint"),
        possible_duplicate=bool(row.get("possible_duplicate")),
        submitted_at=_time_text(row.get("submitted_at")),
        completed_at=_time_text(row.get("completed_at")),
        downloaded_at=_time_text(row.get("downloaded_at")),
    )


#: Events about a render (its state changes); the others (``bound``, ``delivered``,
#: ``file-moved``) are about one job's folder.
_RENDER_EVENTS = frozenset(JOB_STATES)

JobKey = tuple[str, int]
RenderKey = tuple[str, int]
#: An event while histories are gathered: id, render (None for none), whether it is a
#: render's change of state, and the entry shown.
_Item = tuple[int, RenderKey | None, bool, HistoryEntry]


def take_histories(store: HistoryStore) -> dict[JobKey, tuple[HistoryEntry, ...]]:
    """Each job's history, keyed by (shot, take): the events ``Store.events_for_job`` gives.

    That is a job's own events and the state changes of every render it has pointed at
    (a render shared with another job is recorded under that job); another job's own
    ``bound``, ``delivered`` and ``file-moved`` say nothing of this one and are left out.
    All events are read in one query, so that a sheet of 10,000 takes does not ask 10,000
    times; each is handled once, and only the few renders shared by jobs are merged.
    """
    own: defaultdict[JobKey, list[_Item]] = defaultdict(list)
    unowned: list[_Item] = []
    for event in store.events():
        fingerprint = event["fingerprint"]
        render = None if fingerprint is None else (fingerprint, event["generation"])
        item = (event["id"], render, event["state"] in _RENDER_EVENTS, _history_entry(event))
        shot = event["shot"]
        if shot is None:
            unowned.append(item)
        else:
            own[(shot, event["take"])].append(item)
    # Who recorded events of each render: its jobs, and None for events of no job.
    recorders: defaultdict[RenderKey, set[JobKey | None]] = defaultdict(set)
    renders_of: dict[JobKey, set[RenderKey]] = {}
    for job, items in own.items():
        renders_of[job] = {item[1] for item in items if item[1] is not None}
        for render in renders_of[job]:
            recorders[render].add(job)
    for item in unowned:
        if item[1] is not None:
            recorders[item[1]].add(None)
    histories: dict[JobKey, tuple[HistoryEntry, ...]] = {}
    for job, items in own.items():
        shared = {r for r in renders_of[job] if len(recorders[r]) > 1}
        if shared:
            others = {k for r in shared for k in recorders[r] if k != job}
            sources = [unowned if k is None else own[k] for k in others]
            extra = [i for source in sources for i in source if i[2] and i[1] in shared]
            items = sorted(items + extra, key=lambda item: item[0])
        histories[job] = tuple(item[3] for item in items)
    return histories


def _history_entry(event: Mapping[str, Any]) -> HistoryEntry:
    state, detail = event["state"] or "", event["detail"] or ""
    if state == "bound" and not detail and event["fingerprint"]:
        # The render the job was pointed at: a new one after an edit, --force or a rejection.
        detail = f"render {event['fingerprint'][:12]}"
        if event["generation"] and event["generation"] > 1:
            detail += f" generation {event['generation']}"
    return HistoryEntry(_event_time(event["at"]), str(state), str(detail))


def _event_time(value: Any) -> str | None:
    """``_time_text`` of an event's time; the store's own UTC form is cut, not parsed, as a
    sheet of 10,000 takes holds some 70,000 events."""
    if isinstance(value, str) and len(value) == 32 and value.endswith("+00:00"):
        return f"{value[:10]} {value[11:19]}"
    return _time_text(value)


def _time_text(value: Any) -> str | None:
    """Times as the page shows them: UTC, to the second, whatever the store kept."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


# --- rendering -------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _asset(name: str) -> str:
    return resources.files("runner").joinpath("report_assets", name).read_text(encoding="utf-8")


def render_html(data: ReportData) -> str:
    """The whole page: one HTML document with its CSS and JS inline."""
    css = _asset("sheet.css")
    js = _asset("sheet.js").replace("</", "<\\/")
    lazy = lazy_videos(data)
    shots = "\n".join(render_shot(shot, data.manifest, lazy) for shot in data.shots)
    if not data.shots:
        shots = '<p class="hint">This manifest has no shots.</p>'
    style, script = f"\n{css}", f"\n{js}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(_policy(style, script))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="shotrunner">
<title>{_e(data.title)} · contact sheet</title>
<style>{style}</style>
</head>
<body data-filter="all">
<header class="sheet-head">
<h1>{_e(data.title)}</h1>
<p class="meta">manifest <code>{_e(data.manifest)}</code> · batch <code>{_e(data.output_dir)}</code>
 · written {_e(data.generated_at)}</p>
<div class="bar">
{_render_totals(data)}
{_render_filters(data)}
</div>
</header>
<main>
{shots}
<p id="no-match" hidden>No shot matches this filter.</p>
</main>
<script>{script}</script>
</body>
</html>
"""


#: Where the review app serves its assets, relative to its page (``runner.review_app``).
APP_ASSETS = "_app"
APP_STYLES = ("sheet.css", "review.css")
APP_SCRIPTS = ("sheet.js", "review.js")
#: The shortcuts the review app's page answers, as its bar lists them.
APP_KEYS = "j/k shot · 1-9 play take · p pick · x reject · u undo"


def render_app_page(
    data: ReportData, sections: Sequence[str], *, version: str, poll_seconds: float
) -> str:
    """The review app's page: the sheet's markup, its sections as ``render_shot`` made them
    (``interactive``), and a bar with undo. No inline script or style at all: the assets
    are files beside the page, which the server's Content-Security-Policy allows alone."""
    links = "".join(f'<link rel="stylesheet" href="{APP_ASSETS}/{n}">\n' for n in APP_STYLES)
    scripts = "".join(f'<script src="{APP_ASSETS}/{n}"></script>\n' for n in APP_SCRIPTS)
    shots = "\n".join(sections) or '<p class="hint">This manifest has no shots.</p>'
    poll = int(poll_seconds * 1000)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="shotrunner">
<link rel="icon" href="data:,">
<title>{_e(data.title)} · review</title>
{links}</head>
<body data-filter="all" data-review="1" data-version="{_e(version)}" data-poll="{poll}">
<header class="sheet-head">
<h1>{_e(data.title)}</h1>
<p class="meta">manifest <code>{_e(data.manifest)}</code> · batch <code>{_e(data.output_dir)}</code>
 · live</p>
<div class="bar">
{_render_totals(data)}
{_render_filters(data)}
</div>
<div class="review-bar">
<button type="button" id="undo" disabled title="undo (key u)">undo</button>
<span id="review-status" role="status" aria-live="polite"></span>
<span class="keys">{_e(APP_KEYS)}</span>
</div>
</header>
<main>
{shots}
<p id="no-match" hidden>No shot matches this filter.</p>
</main>
{scripts}</body>
</html>
"""


def totals_counts(data: ReportData) -> dict[str, int]:
    """The page's totals and filter counts by key, for the review app's live updates."""
    return asdict(data.totals)


def filter_counts(data: ReportData) -> dict[str, int]:
    """How many shots each filter shows (``_render_filters``), for live updates."""
    shots = data.shots
    return {
        "all": len(shots),
        "failed": sum(s.has("failed") for s in shots),
        "inflight": sum(s.has("in_flight") for s in shots),
        "picked": sum(s.picked for s in shots),
    }


def lazy_videos(data: ReportData) -> bool:
    """Whether the page has more clips than load at once (``EAGER_VIDEOS``)."""
    return sum(t.clip is not None and not t.clip_missing for t in _takes(data)) > EAGER_VIDEOS


def _policy(style: str, script: str) -> str:
    """The page's Content-Security-Policy: nothing from the network, and no script or style
    but the page's own (by hash), so that even markup that escaped escaping could not run."""
    return "; ".join(
        [
            "default-src 'none'",
            f"style-src {_csp_hash(style)}",
            f"script-src {_csp_hash(script)}",
            # Clips and thumbnails next to the page (file:// or a plain web server).
            "img-src 'self' file: data:",
            "media-src 'self' file:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _takes(data: ReportData) -> Iterable[TakeView]:
    return (take for shot in data.shots for take in shot.takes)


_TOTAL_LABELS = {
    "shots": "shots",
    "takes": "takes",
    "done": "done",
    "failed": "failed",
    "in_flight": "in flight",
    "not_started": "not started",
    "picked": "picked",
    "rejected": "rejected",
    "seconds_done": "s rendered",
}


def _render_totals(data: ReportData) -> str:
    counts = totals_counts(data)
    items = [(counts[key], label, key) for key, label in _TOTAL_LABELS.items()]
    lis = "".join(
        f'<li data-total="{key}"><b>{count}</b>{_e(label)}</li>' for count, label, key in items
    )
    return f'<ul class="totals">{lis}</ul>'


def _render_filters(data: ReportData) -> str:
    """Buttons that show only some shots; each says how many shots it would show."""
    counts = filter_counts(data)
    labels = {"all": "All", "failed": "Failed", "inflight": "In flight", "picked": "Picked"}
    buttons = [(key, label, counts[key]) for key, label in labels.items()]
    return (
        '<nav class="filters" aria-label="Filter shots">'
        + "".join(
            f'<button type="button" data-filter="{key}" aria-pressed="{str(key == "all").lower()}">'
            f'{_e(label)} <span class="count">{count}</span></button>'
            for key, label, count in buttons
        )
        + "</nav>"
    )


def render_shot(shot: ShotView, manifest: str, lazy: bool, *, interactive: bool = False) -> str:
    """One shot's ``<section>``: its details, its takes, its earlier versions. The review
    app (``interactive``) gives each take pick and reject buttons instead of the command."""
    flags = {
        "failed": shot.has("failed"),
        "inflight": shot.has("in_flight"),
        "picked": shot.picked,
        "notstarted": shot.has("not_started"),
    }
    attrs = " ".join(f'data-{k}="{int(v)}"' for k, v in flags.items())
    params = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in shot.params)
    images = ""
    if shot.images:
        images = '<div class="images">' + "".join(_render_image(i) for i in shot.images) + "</div>"
    takes = "".join(_render_take(shot, take, manifest, lazy, interactive) for take in shot.takes)
    return f"""<section class="shot" id="shot-{_e(shot.id)}" data-shot="{_e(shot.id)}" {attrs}>
<div class="shot-meta">
<h2><span class="idx">{shot.index:02d}</span> {_e(shot.id)}
<span class="mode">{_e(shot.mode)}</span></h2>
<p class="prompt">{_e(shot.prompt)}</p>
<dl class="params">{params}</dl>
{images}{_render_versions(shot.versions)}
</div>
<div class="takes">{takes}</div>
</section>"""


def _render_image(image: ImageView) -> str:
    if image.kind == "text":
        body = ""
    elif image.kind == "url":
        # A link, not an <img>: the page must render without reaching the network.
        body = (
            f'<a class="remote" href="{_e(image.src)}" title="{_e(image.label)}">remote image</a>'
        )
    else:
        body = f'<img src="{_e(image.src)}" alt="{_e(image.label)}" loading="lazy">'
    label = image.label if image.kind != "data" else "data URI"
    return f'<figure>{body}<figcaption title="{_e(image.label)}">{_e(label)}</figcaption></figure>'


def _render_versions(versions: Sequence[VersionView]) -> str:
    """The shot's earlier clips, collapsed; each loads nothing until it is played."""
    if not versions:
        return ""
    items = "".join(
        f'<figure class="version"><video controls muted loop preload="none" '
        f'src="{_e(v.href)}"></video><figcaption>{_e(v.name)}</figcaption></figure>'
        for v in versions
    )
    return (
        f'<details class="versions"><summary>earlier versions ({len(versions)})</summary>'
        f"{items}</details>"
    )


def _render_take(
    shot: ShotView, take: TakeView, manifest: str, lazy: bool, interactive: bool = False
) -> str:
    r = take.record
    classes = ["take", f"status-{take.status}"]
    marks = []
    if take.verdict:
        classes.append(take.verdict)
        marks.append(f'<span class="mark {take.verdict}">{take.verdict}</span>')
    if take.outdated:
        marks.append(
            '<span class="mark dup" title="the shot was edited after this take was rendered; '
            '`shotrunner run` renders it again">outdated</span>'
        )
    if r.possible_duplicate:
        marks.append('<span class="mark dup" title="the service may have billed twice">dup?</span>')
    if take.clip and not take.clip_missing:
        preload = 'preload="none" data-lazy' if lazy else 'preload="metadata"'
        media = f'<video controls muted loop {preload} src="{_e(take.clip)}"></video>'
    elif take.clip_missing:
        media = '<div class="placeholder">clip missing: run again to fetch it</div>'
    else:
        progress = f" · {_e(r.progress)}" if take.status == "in_flight" and r.progress else ""
        media = f'<div class="placeholder">{_e(take.state)}{progress}</div>'
    error = f'<p class="error">{_e(r.error)}</p>' if r.error and take.status == "failed" else ""
    details = [
        ("state", take.state),
        ("task", r.task_id),
        ("attempts", str(r.attempts) if r.attempts else None),
        ("generation", str(r.generation) if r.generation > 1 else None),
        ("submitted", r.submitted_at),
        ("completed", r.completed_at),
        ("downloaded", r.downloaded_at),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{_e(v)}</dd>" for k, v in details if v)
    history = _render_history(take.history)
    hint = ""
    if interactive:
        hint = _render_actions(take)
    elif take.status == "done" and take.verdict != "picked":
        # Quoted for a shell, so that the command can be copied as it is.
        command = shlex.join(["shotrunner", "pick", manifest, shot.id, str(take.take)])
        hint = f'<p class="hint">pick: <code>{_e(command)}</code></p>'
    badge = f'<span class="badge {take.status}">{STATUS_LABELS[take.status]}</span>'
    attrs = f'class="{" ".join(classes)}" data-take="{take.take}" data-status="{take.status}"'
    return f"""<article {attrs}>
{media}
<div class="take-head"><strong>take {take.take}</strong>{badge}{"".join(marks)}</div>
{error}{_render_frames(take.frames)}<dl class="times">{dl}</dl>{history}{hint}
</article>"""


def _render_actions(take: TakeView) -> str:
    """The review app's buttons on a take: pick (a finished take not yet picked), reject (a
    take not yet rejected), and clear the verdict it has."""
    buttons = []
    if take.status == "done" and take.verdict != "picked":
        buttons.append(("picked", "pick", "p"))
    if take.verdict != "rejected":
        buttons.append(("rejected", "reject", "x"))
    if take.verdict is not None:
        buttons.append(("clear", "clear", ""))
    return (
        '<p class="actions">'
        + "".join(
            f'<button type="button" data-verdict="{verdict}" title="{label} this take'
            f'{f" (key {key})" if key else ""}">{label}</button>'
            for verdict, label, key in buttons
        )
        + "</p>"
    )


#: The width of the state column in a take's history (``downloading``).
_STATE_WIDTH = max(len(word) for word in (*JOB_STATES, "file-moved", "delivered"))


def history_text(history: Sequence[HistoryEntry]) -> str:
    """A take's history as plain lines: a line with the date where it changes, then one line
    per event, ``HH:MM:SS state detail``, the states in one column."""
    lines = []
    day = None
    for at, state, detail in history:
        clock = ""
        if at is not None:
            date, _, clock = at.partition(" ")
            if date != day:
                lines.append(date)
                day = date
        lines.append(f"{clock:8} {state:{_STATE_WIDTH}} {detail}".rstrip())
    return "\n".join(lines)


def _render_history(history: Sequence[HistoryEntry]) -> str:
    """The take's history in a collapsed ``<details>``: closed, it costs the browser no
    layout and needs no script. One escaped text block, not markup per event, keeps a sheet
    of 10,000 takes small and quick to write."""
    if not history:
        return ""
    return (
        f'<details class="history"><summary>history ({len(history)} events)</summary>'
        f"<pre>{_e(history_text(history))}</pre></details>"
    )


def write_report(manifest: Manifest, store: SheetStore | None) -> Path:
    """Write ``<output_dir>/index.html`` (atomically) and return its path.

    Raises ``CannotWrite`` (exit 2) when the batch folder cannot take it (read-only, full).
    """
    out = manifest.output_dir
    page = render_html(collect(manifest, store))
    target = out / REPORT_NAME
    # A temp file of its own (``runner.files``), so that a run and a ``pick`` writing at once
    # cannot mix pages, and readable as the user's umask allows, like the clips it shows.
    make_batch_folder(out)
    with writing(target):
        write_atomic(target, page.encode("utf-8"))
    return target


# --- verdicts --------------------------------------------------------------------------


def resolve_take(manifest: Manifest, shot_id: str, take: int) -> Shot:
    """The shot named on the command line (ids match ignoring case), checked to have ``take``."""
    by_id = {shot.id.lower(): shot for shot in manifest.shots}
    shot = by_id.get(shot_id.lower())
    if shot is None:
        known = ", ".join(s.id for s in manifest.shots[:10])
        more = ", ..." if len(manifest.shots) > 10 else ""
        raise InputError(f"no shot {shot_id!r} in {manifest.display_path} (shots: {known}{more})")
    if not 1 <= take <= shot.takes:
        raise InputError(f"shot {shot.id!r} has {shot.takes} take(s); there is no take {take}")
    return shot


def set_verdict(
    manifest: Manifest,
    store: ReviewStore,
    shot_id: str,
    take: int,
    verdict: Verdict | None,
) -> Shot:
    """Record a pick or a rejection (None clears the take's verdict); a pick replaces the
    shot's other pick and any rejection."""
    shot = resolve_take(manifest, shot_id, take)
    if verdict == "picked":
        records = take_records(store)
        state = records.get((shot.id, take), TakeRecord()).state
        if state != "done":
            raise InputError(
                f"take {take} of {shot.id!r} is {state}, not done: "
                "only a finished take can be picked"
            )
    # The store un-picks the shot's other take and replaces any verdict on this one.
    store.set_verdict(shot.id, take, verdict)
    return shot
