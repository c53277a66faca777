"""What the user sees: a run as it goes, a plan, a status.

A run: a live view on a terminal, one plain line per state change elsewhere; both start with
the plan line and end with the same summary (done, failed with reasons, possible
duplicates, seconds of video delivered, wall time). ``NO_COLOR`` turns colour off. Memory
stays bounded: the live view keeps counts and only the jobs currently in flight.

A plan or a status (``plan``, ``status``): a plain table, one row per job, with a summary
line, or the JSON document of docs/running.md. ``plan`` shows each job's action and sums by action,
``status`` shows states and sums by state; both count what would be paid for per render.

Text from outside (task ids, error messages, shot ids read back from the store) goes
through ``runner.text.visible``/``shown`` before it is printed.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from runner.delivery import HISTORY
from runner.model import ACTIONS, ASSUMED_SECONDS, DEFAULT_PROVIDER, IN_FLIGHT_STATES, JOB_STATES
from runner.text import shown, visible

if TYPE_CHECKING:
    from rich.console import Group

    from runner.chain import Waiting
    from runner.model import Manifest, RunResult, Shot
    from runner.plan import EarlierRender, Plan, PlannedJob, PlanSummary
    from runner.store import JobKey

#: Jobs listed in the live view at most (the rest are counted).
LIVE_ROWS = 12


class View:
    """What the engine tells the user; ``runner.view`` provides the real ones."""

    def start(self, plan: PlanSummary, total: int) -> None:
        """The run starts; ``total`` renders will be worked on (done ones are not counted)."""

    def state(self, label: str, state: str, detail: str = "") -> None:
        """A render or job changed state."""

    def progress(self, label: str, state: str, progress: float | None) -> None:
        """A task reported progress (not a change of state)."""

    def retry(self, label: str, detail: str) -> None:
        """A request is tried again (``detail``: what failed, and the wait); shown by ``-v``."""

    def finish(self, result: RunResult) -> None:
        """The run ended."""


def summary_lines(result: RunResult) -> list[str]:
    """The end-of-run summary, shared by both views."""
    # A run that stopped early says so first: "done: 0" alone reads like success. Why it
    # stopped (and what next) is the CLI's one message.
    so_far = "stopped early, so far " if result.stopped_by is not None else ""
    lines = [
        f"{so_far}done: {result.done} job(s); delivered this run: {result.delivered} clip(s), "
        f"{result.seconds_delivered} s of video; wall time {result.wall_time:.1f} s",
    ]
    if result.currency is not None:
        from runner.pricing import money

        lines.append(
            f"money: committed this run {money(result.committed_cost, result.currency)}, "
            f"delivered this run {money(result.delivered_cost, result.currency)}"
        )
    if result.failed:
        lines.append(f"failed: {len(result.failed)}")
        lines.extend(f"  {visible(key)}: {shown(reason)}" for key, reason in result.failed)
    if result.possible_duplicates:
        lines.append(
            "possible duplicates (a create got no task id back, from a lost answer, a server "
            "error or an interrupted run, and was sent again with the same key; the service "
            f"may have billed it more than once): {len(result.possible_duplicates)}"
        )
        lines.extend(f"  {visible(label)}" for label in result.possible_duplicates)
    if result.earlier_collected:
        lines.append(
            f"earlier renders collected into .history/: {result.earlier_collected} clip(s) "
            "of shots edited or removed while their task was in flight"
        )
    if result.earlier_lost:
        lines.append(f"earlier renders that did not finish: {len(result.earlier_lost)}")
        lines.extend(f"  {visible(key)}: {shown(reason)}" for key, reason in result.earlier_lost)
    if result.possibly_billed:
        lines.append(
            "possibly billed (a create for a shot since edited or removed got no answer; "
            f"it is not sent again): {len(result.possibly_billed)}"
        )
        lines.extend(f"  {visible(label)}" for label in result.possibly_billed)
    return lines


class PlainView(View):
    """One line per state change: for pipes, nohup and CI.

    The plan line and the progress go to ``stream``, the summary to ``summary`` (the same
    stream unless told). ``quiet`` keeps only failures (and the summary); ``verbose`` adds a
    line for every retry, with its reason.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        summary: TextIO | None = None,
        quiet: bool = False,
        verbose: bool = False,
    ) -> None:
        self.stream = stream or sys.stdout
        self.summary = summary or self.stream
        self.quiet = quiet
        self.verbose = verbose
        self.started = time.monotonic()

    def _line(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:7.1f}s] {text}", file=self.stream, flush=True)

    def start(self, plan: PlanSummary, total: int) -> None:
        if not self.quiet:
            print(plan_line(plan), file=self.stream, flush=True)

    def state(self, label: str, state: str, detail: str = "") -> None:
        if self.quiet and state != "failed":
            return
        self._line(f"{visible(label)} {state}" + (f": {shown(detail)}" if detail else ""))

    def retry(self, label: str, detail: str) -> None:
        if self.verbose:
            self._line(f"{visible(label)} retry: {shown(detail)}")

    def finish(self, result: RunResult) -> None:
        for line in summary_lines(result):
            print(line, file=self.summary, flush=True)


class LiveView(View):
    """A rich live display on stderr: counts by state, jobs in flight with progress, elapsed
    and ETA; the summary goes to ``summary`` (stdout unless told), ``verbose`` prints every
    retry above the display."""

    def __init__(self, *, summary: TextIO | None = None, verbose: bool = False) -> None:
        from rich.console import Console
        from rich.live import Live

        self.summary = summary or sys.stdout
        self.verbose = verbose
        # no-color.org: set and not empty.
        self.console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        self.started = time.monotonic()
        self.total = 0
        self.states: dict[str, str] = {}
        self.progress_of: dict[str, float | None] = {}
        self.details: dict[str, str] = {}
        self.finished = 0

    def start(self, plan: PlanSummary, total: int) -> None:
        self.console.print(plan_line(plan), markup=False, highlight=False)
        self.total = total
        self.live.start()
        self.live.update(self._render())

    def state(self, label: str, state: str, detail: str = "") -> None:
        from rich.text import Text

        if state in ("done", "failed"):
            self.finished += 1
            self.states.pop(label, None)
            self.progress_of.pop(label, None)
            self.details.pop(label, None)
            if state == "failed":
                line = Text(f"{visible(label)} failed", style="red")
                line.append(f": {shown(detail)}")
                self.console.print(line)
        else:
            self.states[label] = state
            self.details[label] = detail
        self.live.update(self._render())

    def progress(self, label: str, state: str, progress: float | None) -> None:
        self.progress_of[label] = progress
        self.states[label] = state
        self.live.update(self._render())

    def retry(self, label: str, detail: str) -> None:
        if self.verbose:
            from rich.text import Text

            self.console.print(Text(f"{visible(label)} retry: {shown(detail)}"))

    def finish(self, result: RunResult) -> None:
        self.live.update(self._render())
        self.live.stop()
        for line in summary_lines(result):
            print(line, file=self.summary, flush=True)

    def _render(self) -> Group:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        elapsed = time.monotonic() - self.started
        counts = Counter(self.states.values())
        head = "  ".join(f"{state}: {counts[state]}" for state in JOB_STATES if counts[state])
        eta = ""
        if 0 < self.finished < self.total:
            eta = f"  ETA {elapsed / self.finished * (self.total - self.finished):.0f}s"
        title = Text(f"{self.finished}/{self.total} finished  {head}  elapsed {elapsed:.0f}s{eta}")
        table = Table(box=None, show_header=True, pad_edge=False)
        table.add_column("job")
        table.add_column("state")
        table.add_column("progress", justify="right")
        table.add_column("")
        active = [label for label, state in self.states.items() if state in IN_FLIGHT_STATES]
        for label in active[:LIVE_ROWS]:
            progress = self.progress_of.get(label)
            table.add_row(
                Text(visible(label)),
                self.states[label],
                "" if progress is None else f"{progress:.0f}%",
                Text(shown(self.details.get(label, ""), 40)),
            )
        if len(active) > LIVE_ROWS:
            table.add_row(f"… {len(active) - LIVE_ROWS} more", "", "", "")
        return Group(title, table) if active else Group(title)


def make_view(
    stream: TextIO | None = None,
    *,
    summary: TextIO | None = None,
    quiet: bool = False,
    verbose: bool = False,
) -> View:
    """A run's view: its progress on ``stream`` (stderr), so that stdout can be piped or kept,
    and its summary on ``summary`` (stdout). The live view when the progress goes to a
    terminal (not with ``quiet``), plain lines otherwise."""
    target = stream or sys.stderr
    summary = summary or sys.stdout
    if not quiet and target.isatty() and os.environ.get("TERM") != "dumb":
        return LiveView(summary=summary, verbose=verbose)
    return PlainView(target, summary=summary, quiet=quiet, verbose=verbose)


# -- the plan line of a run ------------------------------------------------------------------


def earlier_wording(collected: int, billed: int) -> str:
    """The end of a plan line for renders of edited or removed shots (``run`` and ``plan``)."""
    line = ""
    if collected:
        line += f"; {collected} earlier render(s) in flight will be collected into .history/"
    if billed:
        line += f"; {billed} earlier create(s) got no answer: not sent again, possibly billed"
    return line


def plan_line(plan: PlanSummary) -> str:
    """What a run is about to do, printed before anything is sent."""
    line = (
        f"plan: {plan.tasks_to_submit} task(s) to submit ({plan.seconds_to_pay} s of video"
        f"{f', {plan.cost}' if plan.cost else ''}), "
        f"{plan.renders['resume']} to resume, {plan.renders['fetch']} to fetch, "
        f"{plan.renders['skip']} done, {plan.renders['hold']} failed and held"
    )
    return line + earlier_wording(plan.earlier, plan.possibly_billed)


# -- plan and status: table and JSON document ------------------------------------------------

_ACTION_NOTES = {
    "fetch": "will fetch again; renders only if the service lost it",
}

#: Marks a length the manifest leaves to the service, counted at ``ASSUMED_SECONDS``.
ASSUMED_MARK = "*"
ASSUMED_NOTE = (
    f"{ASSUMED_MARK} not set: the service's default applies; counted as {ASSUMED_SECONDS} s"
)
#: Above the table of earlier renders in ``plan``'s text.
EARLIER_HEADING = "Earlier renders in flight (their shots were edited or removed since):"


def plan_text(manifest: Manifest, plan: Plan) -> str:
    """``plan`` as a plain table, one row per job, then a summary line.

    A length the manifest leaves unset shows as the length it is counted at, marked, with a
    footnote under the table: the service's default may differ. Earlier renders in flight
    follow the table in one of their own, and the summary line counts them as ``run``'s does.
    """
    return _table(manifest, plan, with_action=True)


def plan_document(manifest: Manifest, plan: Plan) -> dict[str, Any]:
    """``plan --json``: the jobs with their actions, the earlier renders, the summary."""
    document = _document(manifest, plan, with_action=True)
    document["earlier_renders"] = [_earlier_entry(e) for e in plan.earlier]
    document["summary"]["earlier_to_collect"] = plan.summary.earlier
    document["summary"]["possibly_billed"] = plan.summary.possibly_billed
    _add_requests_and_money(document, plan)
    return document


def status_text(manifest: Manifest, *, as_json: bool = False) -> str:
    """``status``: each job's state from the state database (read-only), as a table or JSON."""
    import json

    plan, verdicts = _status_of(manifest)
    document = status_document(manifest, plan, verdicts)
    if as_json:
        return json.dumps(document, indent=2)
    return status_table(manifest, document)


def _status_of(manifest: Manifest) -> tuple[Plan, Mapping[JobKey, str]]:
    """The batch as the store has it (read-only): each job's state, and the verdicts given
    to takes (``pick``, ``reject``, the review app)."""
    from runner.plan import plan_batch

    plan = plan_batch(manifest)
    for item in plan.jobs:
        # status reports states, not plans: a job without a render yet is pending.
        if item.render is None:
            item.state = "pending"
    verdicts: Mapping[JobKey, str] = {}
    # sqlite-utils is imported only for a batch that has a database (as ``plan_batch`` does).
    if (manifest.output_dir / "state.db").is_file():
        from runner.store import Store

        store = Store.open_existing(manifest.output_dir)
        if store is not None:
            with store:
                verdicts = store.verdicts()
    return plan, verdicts


def status_document(
    manifest: Manifest, plan: Plan, verdicts: Mapping[JobKey, str]
) -> dict[str, Any]:
    """``status --json``: each job in storyboard order with its state and verdict
    (``"picked"``, ``"rejected"`` or null), and the counts by state, with the picks and
    rejects. A job that waits for other shots' clips is ``pending``, without a fingerprint
    yet, and names them in ``waits_for`` (empty for the others)."""
    document = _document(manifest, plan, with_action=False)
    placed = [
        ((p.job.shot.index, p.job.take), entry)
        for p, entry in zip(plan.jobs, document["jobs"], strict=True)
    ]
    placed += [((w.shot.index, w.take), _waiting_entry(w)) for w in plan.waiting]
    placed.sort(key=lambda pair: pair[0])
    document["jobs"] = [entry for _, entry in placed]
    for entry in document["jobs"]:
        entry.setdefault("waits_for", [])
        entry["verdict"] = verdicts.get((entry["shot"], entry["take"]))
    summary = document["summary"]
    summary["pending"] += len(plan.waiting)
    summary["jobs"] += len(plan.waiting)
    summary["picked"] = sum(v == "picked" for v in verdicts.values())
    summary["rejected"] = sum(v == "rejected" for v in verdicts.values())
    return document


def _waiting_entry(waiting: Waiting) -> dict[str, Any]:
    """A job that waits for other shots' clips, as ``status --json`` lists it: the fields of
    a job not submitted yet, the error of the one it needs when that failed."""
    return {
        "shot": waiting.shot.id,
        "take": waiting.take,
        "fingerprint": None,
        "generation": None,
        "state": "pending",
        "attempts": 0,
        "task_id": None,
        "progress": None,
        "file": None,
        "error": waiting.reason if waiting.held else None,
        "possible_duplicate": False,
        "creates_sent": 0,
        "waits_for": list(waiting.waits_for),
    }


def run_document(
    manifest: Manifest, result: RunResult, exit_code: int, stopped: str | None
) -> dict[str, Any]:
    """``run --json``: the run's summary (what it did, its exit code, why it stopped early if
    it did) and each job as the store has it now, with its outcome in this run
    (``"done"``, ``"failed"``, or ``"unfinished"``: left for the next run) and the paths of
    its clip and sidecar (null until delivered)."""
    plan, verdicts = _status_of(manifest)
    document = status_document(manifest, plan, verdicts)
    failed = {key for key, _ in result.failed}
    for entry in document["jobs"]:
        clip = manifest.output_dir / entry["file"] if entry["file"] else None
        if f"{entry['shot']}/{entry['take']}" in failed:
            entry["outcome"] = "failed"
        elif entry["state"] == "done" and clip is not None:
            entry["outcome"] = "done"
        else:
            entry["outcome"] = "unfinished"
        entry["clip"] = None if clip is None else str(clip)
        entry["sidecar"] = None if clip is None else str(clip.with_suffix(".json"))
    document["states"] = document.pop("summary")
    document["summary"] = {
        **result.summary(),
        "exit_code": exit_code,
        "stopped": stopped,
        "failed_jobs": [{"job": key, "reason": reason} for key, reason in result.failed],
        "possible_duplicate_jobs": list(result.possible_duplicates),
    }
    return document


def status_table(manifest: Manifest, document: Mapping[str, Any]) -> str:
    """``status`` as a plain table (of ``status_document``): state, verdict, progress, task
    id, then the file, the error or the shots a job waits for; the summary line counts picks
    and rejects."""
    from runner.chain import waiting_reason

    rows = [("SHOT", "TAKE", "STATE", "VERDICT", "PROGRESS", "TASK", "FILE / ERROR")]
    for entry in document["jobs"]:
        progress = entry["progress"]
        shown_progress = "" if progress is None or entry["state"] == "done" else f"{progress:.0f}%"
        note = entry["file"] or entry["error"] or ""
        if not note and entry["waits_for"]:
            note = waiting_reason(entry["waits_for"], held=False)
        if entry["possible_duplicate"]:
            sent = entry["creates_sent"]
            note = f"{note} (possible duplicate{f': {sent} creates sent' if sent else ''})".strip()
        rows.append(
            (
                entry["shot"],
                str(entry["take"]),
                entry["state"],
                entry["verdict"] or "",
                shown_progress,
                visible(entry["task_id"] or ""),
                shown(note),
            )
        )
    counts = document["summary"]
    summary = _summary_text(manifest, counts, JOB_STATES)
    if counts["picked"] or counts["rejected"]:
        summary += f"; {counts['picked']} picked, {counts['rejected']} rejected"
    lines = [*format_columns(rows), "", summary]
    return "\n".join(line.rstrip() for line in lines)


def _counts(plan: Plan, *, with_action: bool) -> dict[str, int]:
    """Jobs by action (plan) or by state (status); then jobs, possible duplicates, and what
    would be paid for: ``tasks_to_submit`` (one per render) and ``seconds_to_pay``."""
    counts: dict[str, int] = {}
    if with_action:
        counts = {action: count for action, count in plan.summary.jobs.items()}
    else:
        counts.update(dict.fromkeys(JOB_STATES, 0))
        for p in plan.jobs:
            counts[p.state] += 1
    counts["jobs"] = len(plan.jobs)
    counts["possible_duplicates"] = plan.summary.possible_duplicates
    counts["tasks_to_submit"] = plan.summary.tasks_to_submit
    counts["seconds_to_pay"] = plan.summary.seconds_to_pay
    return counts


def _job_entry(p: PlannedJob, *, with_action: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "shot": p.job.shot.id,
        "take": p.job.take,
        "fingerprint": p.job.fingerprint,
        "generation": p.generation,
        "state": p.state,
    }
    if with_action:
        entry["action"] = p.action
        entry["provider"] = p.job.shot.provider
    entry.update(
        {
            "attempts": p.attempts,
            "task_id": p.task_id,
            "progress": p.progress,
            "file": p.file,
            "error": p.error,
            "possible_duplicate": p.possible_duplicate,
            "creates_sent": p.creates_sent,
        }
    )
    return entry


def _document(manifest: Manifest, plan: Plan, *, with_action: bool) -> dict[str, Any]:
    """``{"manifest", "output_dir", "jobs": [...], "summary": {...}}``, null for no value."""
    return {
        "manifest": manifest.display_path,
        "output_dir": str(manifest.output_dir),
        "jobs": [_job_entry(p, with_action=with_action) for p in plan.jobs],
        "summary": _counts(plan, with_action=with_action),
    }


def _earlier_entry(earlier: EarlierRender) -> dict[str, Any]:
    """One earlier render as ``plan --json`` lists it: the job it was last bound to, its
    render, and what ``run`` does with it (``"collect"`` into ``.history/``, or
    ``"possibly_billed"`` for a create that got no answer)."""
    render = earlier.render
    return {
        "shot": earlier.shot,
        "take": earlier.take,
        "fingerprint": render.fingerprint,
        "generation": render.generation,
        "state": render.state,
        "action": "possibly_billed" if earlier.possibly_billed else "collect",
        "attempts": render.attempt,
        "task_id": render.task_id,
        "progress": render.progress,
        "history": None if earlier.possibly_billed else f"{earlier.shot}/{HISTORY}/",
        "possible_duplicate": render.possible_duplicate,
        "note": _earlier_note(earlier),
    }


def _earlier_note(earlier: EarlierRender) -> str:
    """What ``run`` does with an earlier render, in the words of its plan line."""
    if earlier.possibly_billed:
        return "create got no answer: not sent again, possibly billed"
    return f"in flight: will be collected into {earlier.shot}/{HISTORY}/"


def display_dir(manifest: Manifest) -> str:
    """The output folder relative to the working directory when it is below it."""
    relative = os.path.relpath(manifest.output_dir)
    return str(manifest.output_dir) if relative.startswith("..") else relative


def _table(manifest: Manifest, plan: Plan, *, with_action: bool) -> str:
    last = "ACTION" if with_action else "STATE"
    header: tuple[str, ...] = ("SHOT", "TAKE", "MODE", "SECONDS", "FINGERPRINT", last)
    # Which API renders each job, once a manifest uses another than the gateway.
    providers = any(shot.provider != DEFAULT_PROVIDER for shot in manifest.shots)
    if providers:
        header = ("SHOT", "TAKE", "PROVIDER", *header[2:])
    rows: list[tuple[str, ...]] = [header]
    for p in plan.jobs:
        shot = p.job.shot
        seconds = str(shot.seconds_to_pay) + ("" if shot.seconds is not None else ASSUMED_MARK)
        word = p.action if with_action else p.state
        note = _ACTION_NOTES.get(word, "") if with_action else (p.error or "")
        if with_action and p.adopted is not None:
            note = ""  # its clip is on disk: taken back, nothing fetched
        if with_action and p.reason:
            note = f"{p.reason}: {note}" if note else p.reason
        rows.append(
            (
                shot.id,
                str(p.job.take),
                *((f"{shot.provider} {shot.model}",) if providers else ()),
                shot.mode,
                seconds,
                p.job.fingerprint[:12],
                f"{word} ({shown(note)})" if note else word,
            )
        )
    lines = format_columns(rows)
    if any(p.job.shot.seconds is None for p in plan.jobs):
        lines.append(ASSUMED_NOTE)
    if with_action:
        lines += money_lines(plan)
    if plan.earlier:
        lines += ["", EARLIER_HEADING, *_earlier_table(plan.earlier)]
    lines.append("")
    earlier = earlier_wording(plan.summary.earlier, plan.summary.possibly_billed)
    lines.append(summary_line(manifest, plan, with_action=with_action) + earlier)
    return "\n".join(lines)


def _earlier_table(earlier: Sequence[EarlierRender]) -> list[str]:
    rows = [("SHOT", "TAKE", "FINGERPRINT", "TASK", "STATE")]
    for e in earlier:
        render = e.render
        rows.append(
            (
                visible(e.shot),
                str(e.take),
                render.fingerprint[:12],
                visible(render.task_id or "-"),
                f"{render.state} ({_earlier_note(e)})",
            )
        )
    return format_columns(rows)


def format_columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as lines of left-aligned columns two spaces apart; the last column is not padded."""
    widths = [max(map(len, column)) for column in list(zip(*rows, strict=True))[:-1]]
    line = "".join(f"{{:<{width}}}  " for width in widths) + "{}"
    return [line.format(*row) for row in rows]


def summary_line(manifest: Manifest, plan: Plan, *, with_action: bool) -> str:
    counts = _counts(plan, with_action=with_action)
    return _summary_text(manifest, counts, ACTIONS if with_action else JOB_STATES)


def _summary_text(manifest: Manifest, counts: Mapping[str, int], words: Sequence[str]) -> str:
    parts = [f"{counts[w]} {w}" for w in words if counts[w]]
    return (
        f"{visible(manifest.display_path)} -> {visible(display_dir(manifest))}: "
        f"{counts['jobs']} job(s)"
        f" ({', '.join(parts) or 'none'}); {counts['tasks_to_submit']} task(s) to submit,"
        f" {counts['seconds_to_pay']} s of video to pay for"
    )


# -- plan: requests, reasons and money -------------------------------------------------------


def preview_request(p: PlannedJob) -> dict[str, Any]:
    """The body ``run`` sends for this job, images by source and sha256 (never base64): the
    same builder as the request sent (``runner.jobs``)."""
    from runner.jobs import provenance_request

    request = provenance_request(p.job.shot)
    for name in ("first_image_url", "last_image_url"):
        if name in request:
            request[name] = _frame_unknown(request[name])
    if isinstance(request.get("images"), list):
        request["images"] = [_frame_unknown(image) for image in request["images"]]
    return request


def _frame_unknown(image: Any) -> Any:
    """A frame of another shot's clip is taken from that clip when the request is sent: its
    PNG's sha256 is known then (the sidecar records it), not before; a file of that name on
    disk may be the frame of an earlier clip."""
    if isinstance(image, dict) and image.get("kind") == "shot":
        return {**image, "sha256": None}
    return image


def preview_call(shot: Shot) -> dict[str, Any] | None:
    """For a shot on a provider other than the gateway, the create call ``run`` makes:
    method, path and body, built by the provider's profile (``Profile.create_call``, as the
    client does) from the same request, each image's bytes shown as its source and sha256.
    None for the gateway, whose body is the request itself."""
    if shot.provider == DEFAULT_PROVIDER:
        return None
    from runner.jobs import provenance_request
    from runner.providers import Unmappable, profile

    request = provenance_request(shot)
    # Stand-ins go where the bytes would: the profile places them, then each is replaced
    # by its image's source and sha256 (a URL is sent as it is).
    shown_as: dict[str, dict[str, Any]] = {}
    stand_ins: list[str] = []
    for index, image in enumerate(shot.images):
        if image.kind == "url":
            stand_ins.append(image.source)
            continue
        token = f"shotrunnerImage{index}"
        shown_as[token] = _frame_unknown(image.provenance())
        stand_ins.append(f"data:{image.media_type or 'image/png'};base64,{token}")
        shown_as[stand_ins[-1]] = shown_as[token]
    for position, name in enumerate(("first_image_url", "last_image_url")):
        if name in request:
            request[name] = stand_ins[position]
    if isinstance(request.get("images"), list):
        request["images"] = stand_ins
    try:
        call = profile(shot.provider).create_call(request)
    except (Unmappable, KeyError) as error:
        return {"error": str(error)}

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            return shown_as.get(value, value)
        if isinstance(value, list):
            return [swap(item) for item in value]
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        return value

    return {"method": call.method, "path": call.path, "body": swap(call.json)}


def requests_text(plan: Plan) -> str:
    """``plan --show-requests``: the body of each create ``run`` would send, one per render
    (for a provider other than the gateway, its own call); the jobs that wait for other
    shots' clips are shown by ``chainview.waiting_requests_text``."""
    import json

    blocks = []
    seen: set[tuple[str, int]] = set()
    for p in plan.jobs:
        if p.action not in ("submit", "retry") or p.render_key in seen:
            continue
        seen.add(p.render_key)
        head = f"{visible(p.job.key)} ({p.action}: {shown(p.reason or '')}):"
        call = preview_call(p.job.shot)
        if call is None:
            body = json.dumps(preview_request(p), indent=2, ensure_ascii=False)
        elif "error" in call:
            body = f"cannot be sent to {p.job.shot.provider}: {shown(str(call['error']))}"
        else:
            body = f"{call['method']} {p.job.shot.provider} {call['path']}\n" + json.dumps(
                call["body"], indent=2, ensure_ascii=False
            )
        blocks.append(f"{head}\n{body}")
    return "\n\n".join(blocks) if blocks else "no request to send"


def _cost_of(plan: Plan, p: PlannedJob) -> str | None:
    from runner.model import amount_text

    if plan.money is None or p.action not in ("submit", "retry"):
        return None
    cost = plan.money.costs.get(p.render_key)
    return None if cost is None else amount_text(cost)


def _add_requests_and_money(document: dict[str, Any], plan: Plan) -> None:
    """Each job's reason, request and cost; the plan's money in the summary."""
    for entry, p in zip(document["jobs"], plan.jobs, strict=True):
        entry["reason"] = p.reason
        entry["request"] = preview_request(p)
        call = preview_call(p.job.shot)
        if call is not None:
            entry["call"] = call
        entry["cost"] = _cost_of(plan, p)
    document["summary"]["money"] = money_document(plan)


def money_document(plan: Plan) -> dict[str, Any] | None:
    """The plan's money as JSON (amounts as decimal strings), None without prices."""
    from runner.model import amount_text

    money = plan.money
    if money is None:
        return None
    return {
        "currency": money.currency,
        "total": amount_text(money.total),
        "worst_case": amount_text(money.worst_case),
        "worst_case_extra": amount_text(money.worst_case_extra),
        "unpriced": list(money.unpriced),
        # Jobs waiting for other shots' clips, priced as new renders (in the total).
        "waiting": {
            key: None if cost is None else amount_text(cost)
            for key, cost in money.waiting_costs.items()
        },
    }


def money_lines(plan: Plan) -> list[str]:
    """Under ``plan``'s table: the cost of each paying render, the total and the worst case;
    without a price table, how to add one."""
    from runner.pricing import NO_PRICES_HINT, money

    money_of = plan.money
    if money_of is None:
        return [NO_PRICES_HINT] if plan.summary.tasks_to_submit or plan.waiting else []
    currency = money_of.currency
    lines = ["", "Cost:"]
    seen: set[tuple[str, int]] = set()
    for p in plan.jobs:
        if p.action not in ("submit", "retry") or p.render_key in seen:
            continue
        seen.add(p.render_key)
        cost = money_of.costs.get(p.render_key)
        shot = p.job.shot
        figure = "no price" if cost is None else money(cost, currency)
        lines.append(f"  {visible(p.job.key)}: {figure} ({shot.seconds_to_pay} s {shot.model})")
    for waiting in plan.waiting_to_pay:
        cost = money_of.waiting_costs[waiting.key]
        shot = waiting.shot
        figure = "no price" if cost is None else money(cost, currency)
        lines.append(
            f"  {visible(waiting.key)}: {figure} ({shot.seconds_to_pay} s {shot.model}, "
            f"{shown(waiting.reason)})"
        )
    paying = money_of.costs or money_of.waiting_costs
    if not paying and not money_of.worst_case_extra and not money_of.unpriced:
        return ["", f"Cost: nothing to submit ({money(money_of.total, currency)})"]
    lines.append(f"total: {money(money_of.total, currency)}")
    if money_of.worst_case_extra:
        lines.append(
            f"worst case with --max-attempts retries: {money(money_of.worst_case, currency)} "
            f"(up to {money(money_of.worst_case_extra, currency)} more if renders fail)"
        )
    if money_of.unpriced:
        lines.append(f"no price for: {', '.join(money_of.unpriced)} (not counted)")
    return lines
