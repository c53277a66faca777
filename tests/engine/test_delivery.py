"""Clips on disk: intact by size and time, moved to .history/ without ever overwriting one."""

from __future__ import annotations

import os
from pathlib import Path

from runner.delivery import (
    clip_intact,
    history_candidates,
    move_to_history,
    sidecar_of,
    write_sidecar,
)
from runner.store import JobRow


def _clip(folder: Path, content: bytes = b"clip") -> Path:
    clip = folder / "s01" / "take-1.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    clip.write_bytes(content)
    write_sidecar(clip, {"fingerprint": "f" * 64})
    return clip


def _row(folder: Path, clip: Path) -> JobRow:
    stat = clip.stat()
    return JobRow(
        "s01",
        1,
        "f" * 64,
        1,
        file=str(clip.relative_to(folder)),
        file_size=stat.st_size,
        file_mtime_ns=stat.st_mtime_ns,
    )


def test_a_clip_touched_after_writing_is_not_intact(tmp_path: Path) -> None:
    """Same size, another modification time: no longer trusted as the clip written."""
    clip = _clip(tmp_path)
    row = _row(tmp_path, clip)
    assert clip_intact(tmp_path, row)
    os.utime(clip, ns=(row.file_mtime_ns or 0, (row.file_mtime_ns or 0) + 10**9))
    assert not clip_intact(tmp_path, row)


def test_moving_twice_under_one_label_keeps_both(tmp_path: Path) -> None:
    """Two clips filed under the same render label get two names; neither is overwritten."""
    first = move_to_history(_clip(tmp_path, b"one"), "ffffffffffff-g1")
    second = move_to_history(_clip(tmp_path, b"two"), "ffffffffffff-g1")
    assert first is not None and second is not None
    assert (first.read_bytes(), second.read_bytes()) == (b"one", b"two")
    assert sidecar_of(first).exists() and sidecar_of(second).exists()


def test_a_crash_between_the_two_renames_keeps_clip_and_sidecar_together(tmp_path: Path) -> None:
    """Sidecar moved, clip not (kill -9 in between): the clip follows under the sidecar's name."""
    clip = _clip(tmp_path)
    history = clip.parent / ".history"
    history.mkdir()
    os.replace(sidecar_of(clip), history / "take-1.ffffffffffff-g1.json")
    moved = move_to_history(clip, "ffffffffffff-g1")
    assert moved == history / "take-1.ffffffffffff-g1.mp4"
    assert sorted(p.name for p in history.iterdir()) == [
        "take-1.ffffffffffff-g1.json",
        "take-1.ffffffffffff-g1.mp4",
    ]


def test_history_candidates_are_the_clips_filed_for_that_render(tmp_path: Path) -> None:
    """Only clips filed under the render's fingerprint prefix and generation are candidates."""
    ours = move_to_history(_clip(tmp_path, b"ours"), "f" * 12 + "-g1")
    move_to_history(_clip(tmp_path, b"other"), "e" * 12 + "-g1")
    move_to_history(_clip(tmp_path, b"later"), "f" * 12 + "-g2")
    final = tmp_path / "s01" / "take-1.mp4"
    assert history_candidates(final, "f" * 64, 1) == [ours]
