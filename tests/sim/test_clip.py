"""The served MP4: the shipped clip is valid H.264, and per-task padding keeps it playable."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.sim.clip import base_clip, clip_bytes_of, clip_size, iter_clip

needs_ffprobe = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe missing")


def _probe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert result.stderr == ""
    probed: dict[str, Any] = json.loads(result.stdout)
    return probed


@needs_ffprobe
@pytest.mark.parametrize("clip_bytes", [None, 200_000], ids=["unpadded", "padded"])
def test_a_task_clip_is_valid_browser_playable_h264(tmp_path: Path, clip_bytes: int | None) -> None:
    """ffprobe reads the clip, padded or not, as H.264 yuv420p in baseline or main profile."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip_bytes_of("video_abc", clip_bytes))
    (stream,) = _probe(path)["streams"]
    assert stream["codec_name"] == "h264"
    assert stream["pix_fmt"] == "yuv420p"
    assert stream["profile"] in ("Constrained Baseline", "Baseline", "Main")
    assert float(stream["duration"]) > 0


def test_the_shipped_clip_is_a_few_kilobytes() -> None:
    """The packaged clip is small, an MP4 starting with ftyp."""
    clip = base_clip()
    assert clip[4:8] == b"ftyp"
    assert 1_000 < len(clip) < 20_000


def test_the_appended_box_is_well_formed_and_fills_the_file() -> None:
    """After the shipped clip comes one free box whose size runs exactly to the end."""
    clip = clip_bytes_of("video_abc", 50_000)
    size, kind = struct.unpack(">I4s", clip[len(base_clip()) : len(base_clip()) + 8])
    assert kind == b"free" and len(base_clip()) + size == len(clip) == 50_000


def test_a_clip_bytes_below_the_smallest_clip_gives_the_smallest() -> None:
    """A size too small to hold the clip and its label is raised to the smallest possible."""
    assert clip_size("video_abc", 10) == clip_size("video_abc", None) > len(base_clip())


def test_a_slice_of_the_clip_matches_the_whole() -> None:
    """iter_clip(start, stop) yields exactly those bytes of the whole clip."""
    whole = clip_bytes_of("video_abc", 600_000)
    for start, stop in [(0, 10), (5000, 6000), (5300, 300_000), (599_990, 600_000)]:
        assert b"".join(iter_clip("video_abc", 600_000, start, stop)) == whole[start:stop]


def test_a_huge_clip_streams_in_bounded_chunks() -> None:
    """A 1 GiB clip is produced in chunks of at most 256 KiB, never held whole."""
    chunks = iter_clip("video_abc", 1 << 30)
    sizes = [len(next(chunks)) for _ in range(50)]
    assert max(sizes) <= 256 * 1024
    assert clip_size("video_abc", 1 << 30) == 1 << 30


def test_a_clip_over_4_gib_uses_a_64_bit_box_size() -> None:
    """Past 4 GiB the free box uses the largesize form so the file stays well-formed."""
    total = 5 << 30
    head = next(iter_clip("video_abc", total))
    box = head[len(base_clip()) : len(base_clip()) + 16]
    size, kind, largesize = struct.unpack(">I4sQ", box)
    assert (size, kind) == (1, b"free")
    assert len(base_clip()) + largesize == total == clip_size("video_abc", total)
