"""``report``, ``pick``, ``reject`` and ``export`` on the command line: output, exit codes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runner import export as export_module
from runner.cli import cli
from tests.review.conftest import Batch, MakeBatch


def shotrunner(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_report_writes_the_page_and_prints_its_path(batch: Batch) -> None:
    """``report`` writes <output_dir>/index.html, prints its path and exits 0."""
    batch.done("s01-wide", 1)
    result = shotrunner("report", batch.manifest_path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(batch.out / "index.html")
    assert "s01-wide/take-1.mp4" in (batch.out / "index.html").read_text(encoding="utf-8")


def test_report_before_any_run_shows_every_take_not_started(batch: Batch) -> None:
    """Without a state database ``report`` still writes the page, creates no database, exits 0."""
    result = shotrunner("report", batch.manifest_path)
    assert result.exit_code == 0, result.stderr
    page = (batch.out / "index.html").read_text(encoding="utf-8")
    assert page.count('class="badge not_started"') == 6
    assert not (batch.out / "state.db").exists()


def test_report_honours_out(batch: Batch, tmp_path: Path) -> None:
    """``--out DIR`` puts the page in that batch folder instead of the manifest's output_dir."""
    other = tmp_path / "elsewhere"
    result = shotrunner("report", batch.manifest_path, "--out", other)
    assert result.exit_code == 0, result.stderr
    assert (other / "index.html").is_file()


def test_report_of_an_invalid_manifest_exits_2_with_located_errors(tmp_path: Path) -> None:
    """An invalid manifest is reported file:line:col and exits 2, writing nothing."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nshots:\n  - id: s1\n", encoding="utf-8")
    result = shotrunner("report", bad)
    assert result.exit_code == 2
    assert f"{bad}:3:" in result.stderr
    assert not list(tmp_path.rglob("index.html"))


def test_pick_stores_the_pick_and_the_page_shows_it(batch: Batch) -> None:
    """``pick`` exits 0, says what it did, and the refreshed page marks the take picked."""
    batch.done("s02-hero", 2)
    result = shotrunner("pick", batch.manifest_path, "s02-hero", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("picked s02-hero take 2")
    with batch.store() as store:
        assert dict(store.verdicts()) == {("s02-hero", 2): "picked"}
    page = (batch.out / "index.html").read_text(encoding="utf-8")
    assert '<span class="mark picked">picked</span>' in page
    status = shotrunner("status", batch.manifest_path)
    assert status.exit_code == 0, status.stderr
    row = next(line for line in status.stdout.splitlines() if line.startswith("s02-hero  2 "))
    assert row.split()[2:4] == ["done", "picked"]
    assert status.stdout.rstrip().endswith("; 1 picked, 0 rejected")


def test_reject_stores_the_rejection(batch: Batch) -> None:
    """``reject`` exits 0 and records the take as rejected."""
    batch.done("s02-hero", 1)
    result = shotrunner("reject", batch.manifest_path, "s02-hero", "1")
    assert result.exit_code == 0, result.stderr
    with batch.store() as store:
        assert dict(store.verdicts()) == {("s02-hero", 1): "rejected"}


@pytest.mark.parametrize(
    ("shot", "take", "message"),
    [
        ("nope", "1", "error: no shot 'nope' in"),
        ("s02-hero", "4", "error: shot 's02-hero' has 3 take(s); there is no take 4"),
    ],
)
def test_pick_of_an_unknown_shot_or_take_exits_2_with_a_message(
    batch: Batch, shot: str, take: str, message: str
) -> None:
    """A shot or take the manifest does not have is exit 2 with a message, nothing stored."""
    batch.done("s01-wide", 1)
    result = shotrunner("pick", batch.manifest_path, shot, take)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    with batch.store() as store:
        assert dict(store.verdicts()) == {}


def test_pick_of_a_take_that_is_not_a_number_exits_2(batch: Batch) -> None:
    """TAKE must be a whole number: anything else is a usage error, exit 2."""
    batch.done("s01-wide", 1)
    result = shotrunner("pick", batch.manifest_path, "s01-wide", "first")
    assert result.exit_code == 2
    assert "TAKE" in result.stderr


def test_pick_before_any_run_exits_2_and_creates_no_database(batch: Batch) -> None:
    """Without a state database there is nothing to pick: exit 2, and no state.db is created."""
    result = shotrunner("pick", batch.manifest_path, "s01-wide", "1")
    assert result.exit_code == 2
    assert "no batch at" in result.stderr
    assert not (batch.out / "state.db").exists()


def test_export_of_a_complete_batch_exits_0(
    batch: Batch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a clip for every shot, ``export`` copies them, writes cut.csv and exits 0."""
    monkeypatch.setattr(export_module, "find_ffmpeg", lambda: None)
    for shot in ("s01-wide", "s02-hero", "s03-turn"):
        batch.done(shot, 1)
    to = tmp_path / "cut"
    result = shotrunner("export", batch.manifest_path, "--to", to)
    assert result.exit_code == 0, result.stderr
    assert f"{to / '01-s01-wide.mp4'}  s01-wide take 1 (first finished)" in result.stdout
    assert str(to / "cut.csv") in result.stdout
    assert sorted(p.name for p in to.iterdir()) == [
        "01-s01-wide.mp4",
        "02-s02-hero.mp4",
        "03-s03-turn.mp4",
        "cut.csv",
    ]


def test_export_without_ffmpeg_says_so_and_skips_the_animatic(
    batch: Batch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ffmpeg, stderr says the animatic was skipped and why; that alone is not a failure."""
    monkeypatch.setattr(export_module, "find_ffmpeg", lambda: None)
    for shot in ("s01-wide", "s02-hero", "s03-turn"):
        batch.done(shot, 1)
    result = shotrunner("export", batch.manifest_path, "--to", tmp_path / "cut")
    assert result.exit_code == 0
    assert "note: ffmpeg not found: animatic.mp4 skipped" in result.stderr


def test_export_with_a_shot_missing_exits_1_and_names_it_on_stderr(
    batch: Batch, tmp_path: Path
) -> None:
    """A shot with no finished take is listed with an empty file, named on stderr, exit 1."""
    batch.done("s01-wide", 1)
    batch.failed("s03-turn", 1, "content_policy_violation")
    to = tmp_path / "cut"
    result = shotrunner("export", batch.manifest_path, "--to", to, "--no-animatic")
    assert result.exit_code == 1
    assert "error: shot s02-hero: no finished take" in result.stderr
    assert "error: shot s03-turn: no finished take (take 1 failed: content_policy_violation" in (
        result.stderr
    )
    with (to / "cut.csv").open(newline="", encoding="utf-8") as handle:
        files = [row["file"] for row in csv.DictReader(handle)]
    assert files == ["01-s01-wide.mp4", "", ""]


def test_export_before_any_run_exits_2(batch: Batch, tmp_path: Path) -> None:
    """Without a state database there is no batch to export: exit 2 with a message."""
    result = shotrunner("export", batch.manifest_path, "--to", tmp_path / "cut")
    assert result.exit_code == 2
    assert "no batch at" in result.stderr


def test_export_requires_to(batch: Batch) -> None:
    """``--to`` is required."""
    result = shotrunner("export", batch.manifest_path)
    assert result.exit_code == 2
    assert "--to" in result.stderr


def test_export_of_a_take_older_than_its_shot_says_so(
    make_batch: MakeBatch, tmp_path: Path
) -> None:
    """A clip rendered before the shot was edited is exported with a note on stderr."""
    make_batch("version: 1\nshots:\n  - id: s1\n    prompt: waves\n").done("s1", 1)
    edited = make_batch("version: 1\nshots:\n  - id: s1\n    prompt: storm\n")
    result = shotrunner("export", edited.manifest_path, "--to", tmp_path / "cut", "--no-animatic")
    assert result.exit_code == 0, result.stderr
    assert "note: shot s1 take 1 was rendered before the shot was last edited" in result.stderr


def test_export_when_ffmpeg_fails_exits_1_with_its_message(
    batch: Batch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ffmpeg that fails leaves no animatic, prints its last words, and exits 1."""
    broken = tmp_path / "ffmpeg"
    broken.write_text("#!/bin/sh\necho 'Invalid data found' >&2\nexit 1\n", encoding="utf-8")
    broken.chmod(0o755)
    monkeypatch.setattr(export_module, "find_ffmpeg", lambda: str(broken))
    for shot in ("s01-wide", "s02-hero", "s03-turn"):
        batch.done(shot, 1)
    to = tmp_path / "cut"
    result = shotrunner("export", batch.manifest_path, "--to", to)
    assert result.exit_code == 1
    assert "error: ffmpeg failed to make animatic.mp4: Invalid data found" in result.stderr
    assert not list(to.glob("*animatic*"))


OSC_FOLDER = "r\x1b]0;owned\x07"


def test_paths_printed_by_report_pick_and_export_show_control_characters_escaped(
    make_batch: MakeBatch, tmp_path: Path
) -> None:
    """A batch folder's path is outside text (``output_dir`` refuses control characters, but
    the manifest's own folder may hold them): a window-title sequence in it is printed as
    escapes by ``report``, ``pick`` and ``export``, never as the sequence."""
    (tmp_path / OSC_FOLDER).mkdir()
    batch = make_batch(
        "version: 1\nname: odd-folder\nshots:\n  - id: s01\n    prompt: waves\n",
        name=f"{OSC_FOLDER}/storyboard.yaml",
    )
    batch.done("s01", 1)
    shown = "r\\x1b]0;owned\\x07/renders/odd-folder"
    for args in (
        ("report", batch.manifest_path),
        ("pick", batch.manifest_path, "s01", "1"),
        ("export", batch.manifest_path, "--to", batch.out / "cut", "--no-animatic"),
    ):
        result = shotrunner(*args)
        assert result.exit_code == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout, args
        assert shown in result.stdout, args
