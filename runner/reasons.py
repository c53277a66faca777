"""Why each job renders (or is fetched) again: one short reason per job of a plan.

The reason compares a job's request now (``runner.jobs.provenance_request``) with the one
its shot and take last rendered, which the store keeps per fingerprint (``requests``), else
the sidecar of the clip in the job's folder. Wording, in order of precedence: ``--force``,
rejected take, failed earlier (with its error), clip lost on disk, the fields that changed
(the provider, the prompt as a short word diff, images with sha256 prefixes, seconds,
ratio, resolution, model: old → new), new shot. Knows nothing of HTTP; reads files only through
``runner.delivery``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.delivery import clip_relpath, read_sidecar

if TYPE_CHECKING:
    from runner.plan import PlannedJob
    from runner.store import Store

#: The fields of a request compared as plain values, with the word a reason uses.
_FIELDS = (
    ("seconds", "seconds"),
    ("aspect_ratio", "ratio"),
    ("resolution", "resolution"),
    ("model", "model"),
)
_IMAGE_FIELDS = ("first_image_url", "last_image_url", "images")
#: Words shown of each side of a prompt diff, at most.
_DIFF_WORDS = 6


def explain(planned: Sequence[PlannedJob], store: Store | None, output_dir: Path | None) -> None:
    """Set ``reason`` on each job the plan submits, retries or fetches."""
    from runner.jobs import provenance_request

    wanted = [p for p in planned if p.action in ("submit", "retry", "fetch")]
    earlier_fps = {p.row.fingerprint for p in wanted if p.row is not None}
    earlier = _Earlier(
        store.requests(earlier_fps) if store is not None else {},
        store.providers(earlier_fps) if store is not None else {},
        output_dir,
    )
    for item in wanted:
        item.reason = _reason(item, earlier, provenance_request)


class _Earlier:
    """What the jobs' earlier fingerprints rendered: their requests (from the store, else
    the sidecar of the clip in the job's folder) and the providers they were submitted to
    (from the store)."""

    def __init__(
        self,
        requests: Mapping[str, Mapping[str, Any]],
        providers: Mapping[str, str],
        output_dir: Path | None,
    ) -> None:
        self.requests = requests
        self.providers = providers
        self.output_dir = output_dir

    def request(self, item: PlannedJob, fingerprint: str) -> Mapping[str, Any] | None:
        if fingerprint in self.requests:
            return self.requests[fingerprint]
        return self._sidecar_request(item, fingerprint)

    def _sidecar_request(self, item: PlannedJob, fingerprint: str) -> Mapping[str, Any] | None:
        """The request in the sidecar of the clip in the job's folder, if it rendered
        ``fingerprint`` (a store written before requests were recorded)."""
        if self.output_dir is None:
            return None
        sidecar = read_sidecar(self.output_dir / clip_relpath(item.job.shot.id, item.job.take))
        if sidecar is None or sidecar.get("fingerprint") != fingerprint:
            return None
        request = sidecar.get("request")
        return request if isinstance(request, dict) else None


def _reason(item: PlannedJob, earlier: _Earlier, provenance_request: Any) -> str:
    if item.new_generation == "forced":
        return "--force"
    if item.new_generation == "rejected":
        return "rejected take (--rerender-rejected)"
    if item.action == "retry":
        return f"failed earlier: {item.error or 'no error recorded'}"
    row = item.row
    if item.action == "fetch":
        if row is not None and row.render_key == item.render_key and row.delivered:
            return "clip lost on disk"
        if item.adopted is not None:
            return "clip on disk, unknown to the store: taken back"
        return "clip not yet in this folder"
    if row is None:
        # A clip of an earlier version in its folder, unknown to the store (its database
        # lost, or the folder copied in): read when the plan looked for one to take back.
        if item.folder_request is None:
            return "new shot"
        changed = changes(item.folder_request, provenance_request(item.job.shot)) or "shot changed"
        return f"{changed}, since the clip in its folder (unknown to the store)"
    if row.fingerprint == item.job.fingerprint:
        return "not submitted yet (an earlier run stopped before)"
    parts = []
    provider, now = earlier.providers.get(row.fingerprint), item.job.shot.provider
    if provider is not None and provider != now:
        parts.append(f"provider changed: {provider} → {now}")
    before = earlier.request(item, row.fingerprint)
    if before is None:
        return parts[0] if parts else "shot changed (its earlier request is not recorded)"
    parts.append(changes(before, provenance_request(item.job.shot)))
    return "; ".join(part for part in parts if part) or "shot changed"


def changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """What differs between two requests, in a few words; empty when nothing shown differs."""
    parts = []
    if before.get("prompt") != now.get("prompt"):
        diff = word_diff(str(before.get("prompt")), str(now.get("prompt")))
        parts.append(f"prompt changed: {diff}")
    images = _image_changes(before, now)
    if images:
        parts.append(f"images changed: {images}")
    for key, word in _FIELDS:
        if before.get(key) != now.get(key):
            parts.append(f"{word} changed: {_shown(before.get(key))} → {_shown(now.get(key))}")
    if not parts and _rest(before) != _rest(now):
        parts.append("extra fields changed")
    return "; ".join(parts)


def word_diff(old: str, new: str) -> str:
    """A short word diff: ``- golden hour / + blue hour`` (the first changed stretch)."""
    a, b = old.split(), new.split()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        sides = []
        if i2 > i1:
            sides.append("- " + _words(a[i1:i2]))
        if j2 > j1:
            sides.append("+ " + _words(b[j1:j2]))
        return " / ".join(sides)
    return "whitespace only"


def _words(words: Sequence[str]) -> str:
    shown = " ".join(words[:_DIFF_WORDS])
    return shown + (" …" if len(words) > _DIFF_WORDS else "")


def _shown(value: Any) -> str:
    return "unset" if value is None else str(value)


def _image_list(request: Mapping[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key in _IMAGE_FIELDS:
        value = request.get(key)
        if isinstance(value, list):
            found += [(f"{key}[{i}]", image) for i, image in enumerate(value)]
        elif value is not None:
            found.append((key, value))
    return found


def _image_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    old, new = dict(_image_list(before)), dict(_image_list(now))
    parts = []
    for name in [*new, *(k for k in old if k not in new)]:
        if _image_key(old.get(name)) != _image_key(new.get(name)):
            parts.append(f"{name} {_image_id(old.get(name))} → {_image_id(new.get(name))}")
    return ", ".join(parts)


def _image_key(image: Any) -> Any:
    """What an image is compared by. A frame of another shot's clip is that clip's frame:
    its PNG is taken again when the request is sent, so the file seen earlier says nothing."""
    if isinstance(image, Mapping) and image.get("kind") == "shot":
        return tuple(image.get(k) for k in ("shot", "take", "frame", "clip_sha256"))
    return image


def _image_id(image: Any) -> str:
    if image is None:
        return "none"
    if isinstance(image, Mapping) and image.get("kind") == "shot":
        clip = image.get("clip_sha256")
        frame = image.get("frame")
        at = f", {frame} frame" if frame in ("first", "last") else f" at {frame} s"
        where = f"{image.get('shot')} take {image.get('take')}{at}"
        return f"{where} (clip sha256:{clip[:8]})" if isinstance(clip, str) else where
    if isinstance(image, Mapping):
        sha = image.get("sha256")
        if isinstance(sha, str):
            return f"sha256:{sha[:8]}"
        return str(image.get("source"))
    return str(image)


def _rest(request: Mapping[str, Any]) -> dict[str, Any]:
    skip = {"prompt", *_IMAGE_FIELDS, *(key for key, _ in _FIELDS)}
    return {k: v for k, v in request.items() if k not in skip}
