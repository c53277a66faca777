"""One run from start to end: the in-process simulator of ``run --simulate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import runner.sim
from runner.batch import BatchSettings, run_batch
from runner.engine import RunOptions
from runner.model import Manifest, Shot
from runner.view import View


def test_simulate_starts_the_simulator_without_its_recorder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run --simulate`` keeps no request bodies in memory and its tasks in simulator.db."""
    configs: list[Any] = []
    start = runner.sim.start_in_thread

    def recording_start(config: Any) -> Any:
        configs.append(config)
        return start(config)

    monkeypatch.setattr(runner.sim, "start_in_thread", recording_start)
    out = tmp_path / "out"
    manifest = Manifest(
        path=tmp_path / "m.yaml",
        display_path="m.yaml",
        name="m",
        output_dir=out,
        sha256="0" * 64,
        shots=(Shot(id="s01", index=0, prompt="waves", seconds=4),),
    )
    settings = BatchSettings(simulate=True, run=RunOptions(poll_interval=0.05))
    monkeypatch.setattr("runner.batch.SIMULATE_JOB_SECONDS", 0.1)
    result, code = run_batch(manifest, settings, View())
    assert code == 0 and result.done == 1
    (config,) = configs
    assert config.record is False
    assert config.state_path == out / "simulator.db"
