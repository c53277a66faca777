"""``shotrunner run`` refreshes the contact sheet at its end."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.plugins.sim_fixtures import StartSim
from tests.review.conftest import Batch
from tests.review.pagehelpers import elements, take_article


def test_every_run_rewrites_the_contact_sheet(batch: Batch, start_sim: StartSim) -> None:
    """After a run, index.html shows the clips that run delivered."""
    sim = start_sim()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "run",
            str(batch.manifest_path),
            "--only",
            "s01-wide",
            "--api-base",
            sim.base_url,
            "--poll-interval",
            "0.1",
        ],
        env={**os.environ, "SHOTRUNNER_API_KEY": "sk-review-test", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    page = (batch.out / "index.html").read_text(encoding="utf-8")
    videos = elements(take_article(page, "s01-wide", 1), "video")
    assert [v["src"] for v in videos] == ["s01-wide/take-1.mp4"]
