"""Clips on disk: where they go, whether they are intact, and putting them in place safely.

A clip is written as ``<final>.part`` and renamed into place only when whole, so no
partial file ever sits at a final path. A clip being replaced (an edited shot, a new
generation) moves with its sidecar to ``<shot>/.history/`` under a name that never
overwrites another: a paid-for clip is never deleted.

Every write goes through ``runner.files``: no link planted in a shot folder (at a part
file, a sidecar's temp file, ``.history``) is followed, and a shot folder that is a link
leading out of the batch is refused.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.files import folder_in, open_part, write_atomic

if TYPE_CHECKING:
    from runner.store import JobRow

HISTORY = ".history"
_CHUNK = 1 << 20


def clip_relpath(shot_id: str, take: int) -> str:
    """The clip's path relative to the batch folder (``<shot>/take-<n>.mp4``)."""
    return f"{shot_id}/take-{take}.mp4"


def sidecar_of(clip: Path) -> Path:
    return clip.with_suffix(".json")


def part_of(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def clip_intact(output_dir: Path, row: JobRow, *, verify: bool = False) -> bool:
    """Whether the clip recorded on a job row is still the file that was written.

    Size and modification time decide (one ``stat``), so a run over thousands of finished
    jobs stays fast; ``verify`` re-hashes the file instead.
    """
    if row.file is None:
        return False
    # A string join, not Path arithmetic: this runs once per job on every run.
    path = os.path.join(output_dir, row.file)
    try:
        stat = os.stat(path)
    except OSError:
        return False
    if stat.st_size != row.file_size:
        return False
    if verify:
        return file_sha256(Path(path)) == row.file_sha256
    return stat.st_mtime_ns == row.file_mtime_ns


def matches(path: Path, sha256: str | None, size: int | None) -> bool:
    """Whether ``path`` holds exactly the bytes with this hash (size checked first)."""
    if sha256 is None or size is None:
        return False
    try:
        if path.stat().st_size != size:
            return False
    except OSError:
        return False
    return file_sha256(path) == sha256


def move_to_history(clip: Path, label: str) -> Path | None:
    """Move a clip and its sidecar into ``.history/`` next to it; returns the new clip path.

    ``label`` names the render the clip came from (``<fingerprint prefix>-g<generation>``);
    a counter is added when that name is taken, so nothing is ever overwritten. Sidecar
    first: a crash between the two renames leaves the clip where the next run finds it.
    """
    if not clip.exists():
        return None
    # The batch folder is the shot folder's parent: .history must stay inside it.
    history = folder_in(clip.parent / HISTORY, clip.parent.parent)
    stem = f"{clip.stem}.{label}"
    sidecar = sidecar_of(clip)
    counter = 1
    while True:
        name = stem if counter == 1 else f"{stem}-{counter}"
        target = history / f"{name}{clip.suffix}"
        target_sidecar = history / f"{name}.json"
        # A sidecar there without its clip, while ours is gone: a crash between the two
        # renames below moved ours ahead; the clip follows it under the same name.
        if not target.exists() and (not target_sidecar.exists() or not sidecar.exists()):
            break
        counter += 1
    if sidecar.exists():
        os.replace(sidecar, target_sidecar)
    os.replace(clip, target)
    return target


def place(part: Path, final: Path) -> None:
    """Rename a whole part file into place.

    No fsync: a killed process loses nothing the OS already holds, and a clip damaged by a
    power cut fails the size check and is fetched again.
    """
    os.replace(part, final)


def copy_to_part(source: Path, final: Path) -> Path:
    """Copy a delivered clip towards another job's final path (as its part file)."""
    part = part_of(final)
    folder_in(final.parent, final.parent.parent)
    try:
        with source.open("rb") as src, open_part(part, append=False) as out:
            shutil.copyfileobj(src, out, _CHUNK)
    except OSError:
        # A copy cut short (a full disk) is of no use to anyone, and it takes the room.
        part.unlink(missing_ok=True)
        raise
    return part


def write_sidecar(clip: Path, data: dict[str, Any]) -> None:
    """Write the provenance JSON next to a clip, atomically (through a new temp file)."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    sidecar = sidecar_of(clip)
    write_atomic(sidecar, text.encode("utf-8"))
    # Leftovers of a write killed half-way: temp files of this kind, or the fixed
    # ``take-<n>.json.part`` of earlier versions (a link there is removed, not followed).
    # Only the run holding the batch lock writes sidecars, so none of them is in use.
    stale = clip.parent.glob(f".{glob.escape(sidecar.name)}.*.part")
    for leftover in [part_of(sidecar), *stale]:
        leftover.unlink(missing_ok=True)


def read_sidecar(clip: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(sidecar_of(clip).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def history_label(fingerprint: str, generation: object) -> str:
    """How ``.history/`` names a render's clip: the same for every writer, so that undoing
    an edit finds the clip filed by the edit."""
    return f"{fingerprint[:12]}-g{generation}"


def history_candidates(clip: Path, fingerprint: str, generation: int) -> list[Path]:
    """Clips in ``.history/`` next to ``clip`` that ``move_to_history`` filed for a render."""
    history = clip.parent / HISTORY
    if not history.is_dir():
        return []
    label = history_label(fingerprint, generation)
    return sorted(history.glob(f"{clip.stem}.{label}*{clip.suffix}"))
