"""The export's timelines: OpenTimelineIO, EDL and XML, written by ``shotrunner export`` (the
real CLI) and read back by OpenTimelineIO and its adapters."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.export import export_cut
from runner.store import Store
from runner.timeline import ProbeError, at_edit_rate, probe
from tests.review.conftest import SIM_CLIP, Batch
from tests.review.test_export import FFPROBE, duration

otio = pytest.importorskip("opentimelineio")

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None or FFPROBE is None, reason="needs ffmpeg/ffprobe")


def encode(target: Path, *, seconds: float, fps: int) -> Path:
    """A clip of the simulator's picture with its own length and frame rate."""
    assert FFMPEG is not None
    cut = ["-t", str(seconds), "-r", str(fps), "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", "-i", str(SIM_CLIP), *cut, str(target)], check=True
    )
    return target


def export_cli(batch: Batch, to: Path, *formats: str) -> subprocess.CompletedProcess[str]:
    args = [arg for name in formats for arg in ("--format", name)]
    command = [sys.executable, "-m", "runner", "export", str(batch.manifest_path)]
    return subprocess.run(
        [*command, "--to", str(to), *args, "--no-animatic"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cut_batch(batch: Batch, tmp_path: Path) -> Batch:
    """s01-wide: one take (2 s at 12 fps); s02-hero: take 1 done, take 3 (1 s at 25 fps)
    picked; s03-turn: take 1 rejected, take 2 (1.5 s at 24 fps) the first not rejected."""
    clips = tmp_path / "clips"
    clips.mkdir()
    batch.done("s01-wide", 1)
    batch.done("s02-hero", 1)
    batch.done("s02-hero", 3, clip=encode(clips / "hero3.mp4", seconds=1, fps=25))
    batch.done("s03-turn", 1)
    batch.done("s03-turn", 2, clip=encode(clips / "turn2.mp4", seconds=1.5, fps=24))
    with Store.open(batch.out) as store:
        store.set_verdict("s02-hero", 3, "picked")
        store.set_verdict("s03-turn", 1, "rejected")
    return batch


EXPECTED = [
    ("s01-wide", "01-s01-wide.mp4"),
    ("s02-hero", "02-s02-hero.mp4"),
    ("s03-turn", "03-s03-turn.mp4"),
]


@needs_ffmpeg
def test_the_otio_timeline_holds_the_chosen_takes_with_their_real_durations(
    cut_batch: Batch, tmp_path: Path
) -> None:
    """cut.otio read back: one track, the chosen takes in storyboard order, each named by its
    shot, referring to its copy beside the file, lasting what ffprobe says, prompt as marker."""
    to = tmp_path / "cut"
    result = export_cli(cut_batch, to, "otio", "csv")
    assert result.returncode == 0, result.stderr
    assert (to / "cut.csv").is_file()
    timeline = otio.adapters.read_from_file(str(to / "cut.otio"))
    (track,) = timeline.tracks
    clips = list(track.find_clips())
    assert [(c.name, c.media_reference.target_url) for c in clips] == EXPECTED
    assert [c.metadata["shotrunner"]["take"] for c in clips] == [1, 3, 2]
    for clip in clips:
        probed = duration(to / clip.media_reference.target_url)
        assert clip.source_range.duration.to_seconds() == pytest.approx(probed, abs=0.05)
    rates = [c.source_range.duration.rate for c in clips]
    assert rates == [12, 25, 24]
    prompts = [s.prompt for s in cut_batch.manifest.shots]
    assert [[m.comment for m in c.markers] for c in clips] == [[p] for p in prompts]


def clip_names_and_seconds(timeline: otio.schema.Timeline) -> list[tuple[str, str, float]]:
    return [
        (c.name, Path(c.media_reference.target_url).name, c.source_range.duration.to_seconds())
        for c in timeline.find_clips()
    ]


@needs_ffmpeg
def test_edl_and_xml_read_back_with_the_same_clips(cut_batch: Batch, tmp_path: Path) -> None:
    """The EDL and both XML flavours, read by their OpenTimelineIO adapters, hold the same
    clips in the same order, with the same lengths, as cut.otio."""
    to = tmp_path / "cut"
    result = export_cli(cut_batch, to, "otio", "edl", "fcpxml", "xml")
    assert result.returncode == 0, result.stderr
    assert not (to / "cut.csv").exists()  # only what was asked for
    expected = clip_names_and_seconds(otio.adapters.read_from_file(str(to / "cut.otio")))
    assert [(name, file) for name, file, _ in expected] == EXPECTED
    for name, adapter in (("cut.fcpxml", "fcpx_xml"), ("cut.xml", "fcp_xml")):
        back = otio.adapters.read_from_file(str(to / name), adapter_name=adapter)
        got = clip_names_and_seconds(back)
        assert [g[:2] for g in got] == EXPECTED, name
        assert [g[2] for g in got] == pytest.approx([e[2] for e in expected], abs=0.05), name
    # An EDL has one rate for the whole list; its reader is told the sequence's rate.
    edl = otio.adapters.read_from_file(str(to / "cut.edl"), adapter_name="cmx_3600", rate=24)
    got = clip_names_and_seconds(edl)
    assert [g[:2] for g in got] == EXPECTED
    assert [g[2] for g in got] == pytest.approx([e[2] for e in expected], abs=0.05)


@needs_ffmpeg
def test_a_shot_with_no_usable_take_is_refused_in_every_format(
    batch: Batch, tmp_path: Path
) -> None:
    """As for cut.csv: the shot is named with its reason, left out, and export exits 1."""
    batch.done("s01-wide", 1)
    batch.failed("s02-hero", 1, "upstream_error: boom")
    batch.done("s03-turn", 1)
    with Store.open(batch.out) as store:
        store.set_verdict("s03-turn", 1, "rejected")
    to = tmp_path / "cut"
    result = export_cli(batch, to, "otio", "edl")
    assert result.returncode == 1
    assert "error: shot s02-hero: no finished take (take 1 failed: upstream_error: boom" in (
        result.stderr
    )
    assert "error: shot s03-turn: every finished take is rejected" in result.stderr
    timeline = otio.adapters.read_from_file(str(to / "cut.otio"))
    assert [c.name for c in timeline.find_clips()] == ["s01-wide"]
    edl = otio.adapters.read_from_file(str(to / "cut.edl"), adapter_name="cmx_3600", rate=24)
    assert [c.name for c in edl.find_clips()] == ["s01-wide"]


def test_an_unknown_format_is_bad_input(batch: Batch, tmp_path: Path) -> None:
    batch.done("s01-wide", 1)
    result = export_cli(batch, tmp_path / "cut", "aaf")
    assert result.returncode == 2
    assert "'aaf' is not one of" in result.stderr
    assert not (tmp_path / "cut").exists()


def test_without_ffprobe_no_timeline_is_written_and_export_says_why(
    batch: Batch, tmp_path: Path
) -> None:
    """The clips and cut.csv are still exported; the timeline is not, with the reason."""
    batch.done("s01-wide", 1)
    to = tmp_path / "cut"
    with batch.store() as store:
        result = export_cut(
            batch.manifest, store, to, animatic=False, formats=("csv", "otio"), ffprobe=None
        )
    assert result.timelines == ()
    assert result.timeline_problem is not None
    assert result.timeline_problem.startswith("ffprobe not found: cut.otio not written")
    assert (to / "cut.csv").is_file() and (to / "01-s01-wide.mp4").is_file()
    assert not (to / "cut.otio").exists()


@needs_ffmpeg
def test_a_clip_ffprobe_cannot_read_is_named(tmp_path: Path) -> None:
    assert FFPROBE is not None
    broken = tmp_path / "01-s01.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(ProbeError, match=r"ffprobe cannot read 01-s01\.mp4"):
        probe(broken, FFPROBE)


def test_an_edl_is_counted_in_one_standard_rate() -> None:
    """A 12 fps clip (a rate timecode cannot count) becomes 24 fps frames of the same length."""
    timeline = otio.schema.Timeline()
    track = otio.schema.Track()
    timeline.tracks.append(track)
    for frames, rate in ((24, 12), (25, 25)):
        span = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(frames, rate)
        )
        track.append(otio.schema.Clip(source_range=span))
    counted = [c.source_range.duration for c in at_edit_rate(timeline).find_clips()]
    assert [(d.value, d.rate) for d in counted] == [(48, 24), (24, 24)]
    # The timeline given is left as it was.
    assert [c.source_range.duration.rate for c in timeline.find_clips()] == [12, 25]


ODD_PROMPTS = """\
version: 1
name: odd-text
defaults: {seconds: 4}
shots:
  - id: s01
    prompt: |
      waves
      999  EVIL     V     C        00:00:00:00 00:00:09:00 00:00:00:00 00:00:09:00
  - id: s02
    prompt: "dunes\\tat dusk \\e]0;owned\\a \\x00 \\uFFFE\\uFFFF"
"""


@needs_ffmpeg
def test_control_characters_and_line_ends_in_prompts_stay_text_in_every_format(
    make_batch: Any, tmp_path: Path
) -> None:
    """A prompt may hold any character YAML allows: a line end (which an EDL line cannot
    hold), a terminal escape, a BEL, a NUL, U+FFFE or U+FFFF (which XML cannot hold at
    all). Every format is still written and read back with the same clips; the marker shows
    those characters as escapes, and the EDL gains no event from a prompt's second line."""
    batch = make_batch(ODD_PROMPTS)
    batch.done("s01", 1)
    batch.done("s02", 1)
    to = tmp_path / "cut"
    result = export_cli(batch, to, "otio", "edl", "fcpxml", "xml")
    assert result.returncode == 0, result.stderr
    timeline = otio.adapters.read_from_file(str(to / "cut.otio"))
    clips = list(timeline.find_clips())
    assert [c.name for c in clips] == ["s01", "s02"]
    comments = [m.comment for c in clips for m in c.markers]
    assert comments[1] == "dunes\tat dusk \\x1b]0;owned\\x07 \\x00 \\ufffe\\uffff"
    assert comments[0].splitlines()[0] == "waves"
    for name, adapter in (("cut.fcpxml", "fcpx_xml"), ("cut.xml", "fcp_xml")):
        back = otio.adapters.read_from_file(str(to / name), adapter_name=adapter)
        assert [c.name for c in back.find_clips()] == ["s01", "s02"], name
    edl_text = (to / "cut.edl").read_text(encoding="utf-8")
    assert "\x1b" not in edl_text and "\x00" not in edl_text
    edl = otio.adapters.read_from_file(str(to / "cut.edl"), adapter_name="cmx_3600", rate=24)
    assert [c.name for c in edl.find_clips()] == ["s01", "s02"]
