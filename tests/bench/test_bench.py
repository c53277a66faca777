"""Smoke tests: each benchmark of ``bench/run.py`` runs end to end on its tiny size.

The figures at this size mean nothing; what is checked is that the benchmark ran (no
error section), measured every side, and marked each of its targets PASS or MISS.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "run.py"


def run_tiny(name: str, tmp_path: Path) -> str:
    """Run one benchmark at its tiny size and return the page it wrote."""
    output = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, RUN, "--tiny", "--only", name, "--output", output],
        capture_output=True,
        text=True,
        timeout=180,  # a liveness bound: a tiny benchmark takes seconds, more on a busy machine
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return output.read_text(encoding="utf-8")


def verdicts(page: str) -> list[str]:
    """The verdict column of the page's target table."""
    rows = [line for line in page.splitlines() if line.startswith("| ") and "|" in line[2:]]
    return [
        row.rstrip(" |").rsplit("| ", 1)[-1] for row in rows if row.endswith(("PASS |", "MISS |"))
    ]


def needs_sdk() -> None:
    if importlib.util.find_spec("openai") is None:
        pytest.skip("the openai SDK (the bench extra) is not installed")


def test_throughput_measures_shotrunner_the_sdk_and_curl(tmp_path: Path) -> None:
    """Benchmark 1 runs all three sides and judges its four targets."""
    needs_sdk()
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    page = run_tiny("throughput", tmp_path)
    for side in ("| shotrunner |", "| openai SDK |", "| curl loop (sequential) |"):
        assert side in page
    assert len(verdicts(page)) == 4


def test_scale_times_each_command_over_a_done_batch(tmp_path: Path) -> None:
    """Benchmark 2 times validate, plan, status and a run that finds every job done, then
    validate and plan of a larger manifest."""
    page = run_tiny("scale", tmp_path)
    for command in ("| validate |", "| plan |", "| status |", "| run (all done) |"):
        assert command in page
    for command in ("| validate (40 shots) |", "| plan (40 shots) |"):
        assert command in page
    assert "`plan` of 40 shots peak RSS" in page
    assert len(verdicts(page)) == 13


def test_shot_files_times_each_source_and_a_terminal_validate(tmp_path: Path) -> None:
    """Benchmark 2b times validate and plan from YAML, CSV and JSONL, then validates a larger
    JSONL file on a terminal."""
    page = run_tiny("shot-files", tmp_path)
    for row in ("| YAML | validate |", "| CSV | plan |", "| JSONL | validate |"):
        assert row in page
    assert "| JSONL, 200 rows" in page
    assert "shows progress on a terminal | shown | shown | PASS |" in page
    assert len(verdicts(page)) == 14


def test_download_compares_three_ways_and_leaves_no_file(tmp_path: Path) -> None:
    """Benchmark 3 downloads through shotrunner, the SDK and curl, then cleans up."""
    needs_sdk()
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    before = set(Path("/tmp").glob("shotrunner-bench-download-*"))
    page = run_tiny("download", tmp_path)
    assert "| shotrunner | file URL |" in page
    assert len(verdicts(page)) == 3
    assert set(Path("/tmp").glob("shotrunner-bench-download-*")) <= before


def test_adaptive_counts_429_answers(tmp_path: Path) -> None:
    """Benchmark 4 runs against a limited simulator and reports the 429 share."""
    page = run_tiny("adaptive", tmp_path)
    assert "429 share of creates" in page
    assert len(verdicts(page)) == 2


def test_real_length_compares_requests_and_delays(tmp_path: Path) -> None:
    """Benchmark 5 runs both sides in turn and reports requests per job, delays, and the
    runner's CPU as a share of one core."""
    needs_sdk()
    page = run_tiny("real-length", tmp_path)
    assert "| openai SDK |" in page
    assert "runner CPU over the run, % of one core" in page
    assert len(verdicts(page)) == 3
