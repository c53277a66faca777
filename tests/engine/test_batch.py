"""One run from start to end: the in-process simulator of ``run --simulate``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

import runner.sim
from runner.batch import BatchSettings, run_batch
from runner.cli.common import run_exit_code
from runner.engine import RunOptions
from runner.errors import ConfigError, InputError
from runner.jobs import expand_jobs
from runner.model import Manifest, Shot
from runner.sim import RunningSim
from runner.store import RenderRow, Store
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
    manifest = _one_shot(out)
    settings = BatchSettings(simulate=True, run=RunOptions(poll_interval=0.05))
    monkeypatch.setattr("runner.batch.SIMULATE_JOB_SECONDS", 0.1)
    result = run_batch(manifest, settings, View(), run_exit_code)
    code = run_exit_code(result)
    assert code == 0 and result.done == 1
    (config,) = configs
    assert config.record is False
    assert config.state_path == out / "simulator.db"


def _one_shot(out: Path) -> Manifest:
    return Manifest(
        path=out.parent / "m.yaml",
        display_path="m.yaml",
        name="m",
        output_dir=out,
        sha256="0" * 64,
        shots=(Shot(id="s01", index=0, prompt="waves", seconds=4),),
    )


def _in_flight(out: Path, manifest: Manifest, **fields: Any) -> RenderRow:
    """A render of the manifest's one job left in flight by an earlier run."""
    (job,) = expand_jobs(manifest)
    with Store.open(out) as store:
        store.bind_jobs(None, [(job.shot.id, job.take, job.fingerprint, 1)])
        render = store.renders()[(job.fingerprint, 1)]
        for name, value in {
            "state": "queued",
            "attempt": 1,
            "task_id": "video_x",
            **fields,
        }.items():
            setattr(render, name, value)
        store.update_render(None, render)
    return render


def test_a_run_against_another_base_than_a_task_in_flight_is_refused(
    tmp_path: Path, sim: RunningSim
) -> None:
    """Tasks in flight elsewhere: exit 2 naming that base; nothing sent, nothing changed."""
    out = tmp_path / "out"
    manifest = _one_shot(out)
    before = _in_flight(out, manifest, api_base="https://x.example/v1")
    settings = BatchSettings(api_base=sim.base_url, api_key="k")
    with pytest.raises(ConfigError) as caught:
        run_batch(manifest, settings, View(), run_exit_code)
    assert caught.value.message == (
        "1 task(s) in flight were submitted to https://x.example/v1; "
        "run with --api-base https://x.example/v1 to collect them"
    )
    assert sim.recorder.requests == []
    with Store.open(out) as store:
        assert store.renders()[before.key] == before
        assert store.runs() == []


def test_the_base_of_a_render_is_recorded_without_credentials(
    tmp_path: Path, sim: RunningSim
) -> None:
    """Each render keeps the API base it was submitted to, without user:password."""
    out = tmp_path / "out"
    manifest = _one_shot(out)
    host = sim.base_url.removeprefix("http://")
    settings = BatchSettings(
        api_base=f"http://user:secret@{host}/",
        api_key="k",
        run=RunOptions(poll_interval=0.05),
    )
    result = run_batch(manifest, settings, View(), run_exit_code)
    code = run_exit_code(result)
    assert code == 0, result.failed
    with Store.open(out) as store:
        (render,) = store.renders().values()
    assert render.api_base == sim.base_url


def test_a_real_run_over_a_simulated_batch_is_refused(tmp_path: Path, sim: RunningSim) -> None:
    """Simulated clips in the folder: a real run exits 2 before sending anything."""
    out = tmp_path / "out"
    manifest = _one_shot(out)
    _in_flight(out, manifest, state="done", api_base="simulator")
    with pytest.raises(InputError) as caught:
        run_batch(
            manifest, BatchSettings(api_base=sim.base_url, api_key="k"), View(), run_exit_code
        )
    assert caught.value.message == (
        "this batch folder holds simulated renders; use --out DIR for the real run"
    )
    assert sim.recorder.requests == []


def test_a_simulated_run_over_a_real_batch_is_refused(tmp_path: Path) -> None:
    """Real clips in the folder: a simulated run exits 2 and starts no simulator."""
    out = tmp_path / "out"
    manifest = _one_shot(out)
    _in_flight(out, manifest, state="done", api_base="https://x.example/v1")
    with pytest.raises(InputError) as caught:
        run_batch(manifest, BatchSettings(simulate=True), View(), run_exit_code)
    assert caught.value.message == (
        "this batch folder holds real renders; use --out DIR for the simulated run"
    )
    assert not (out / "simulator.db").exists()


def test_simulate_over_a_finished_batch_starts_no_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing to submit, poll or fetch: ``run --simulate`` needs no simulator either."""
    out = tmp_path / "out"
    manifest = _one_shot(out)
    monkeypatch.setattr("runner.batch.SIMULATE_JOB_SECONDS", 0.1)
    settings = BatchSettings(simulate=True, run=RunOptions(poll_interval=0.05))
    assert run_exit_code(run_batch(manifest, settings, View(), run_exit_code)) == 0
    started: list[Any] = []
    monkeypatch.setattr(runner.sim, "start_in_thread", started.append)
    result = run_batch(manifest, settings, View(), run_exit_code)
    code = run_exit_code(result)
    assert (code, result.done, started) == (0, 1, [])


def test_a_create_that_created_nothing_does_not_make_the_folder_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real run whose create was refused (pending again) leaves the folder free to simulate."""
    monkeypatch.setattr("runner.batch.SIMULATE_JOB_SECONDS", 0.1)
    out = tmp_path / "out"
    manifest = _one_shot(out)
    _in_flight(out, manifest, state="pending", attempt=0, task_id=None, api_base="https://x/v1")
    settings = BatchSettings(simulate=True, run=RunOptions(poll_interval=0.05))
    result = run_batch(manifest, settings, View(), run_exit_code)
    code = run_exit_code(result)
    assert (code, result.done) == (0, 1)


def _unanswered(out: Path, shot: str, api_base: str) -> RenderRow:
    """A create for ``shot`` sent to ``api_base`` whose answer never came (no task id)."""
    manifest = dataclasses.replace(
        _one_shot(out), shots=(Shot(id=shot, index=0, prompt="removed", seconds=4),)
    )
    return _in_flight(out, manifest, state="submitting", task_id=None, api_base=api_base)


def test_a_removed_shots_unanswered_create_does_not_hold_the_batch_to_its_base(
    tmp_path: Path, sim: RunningSim
) -> None:
    """A removed shot's create that never got an answer owes nothing to collect: a run at
    another base goes ahead, reports it as possibly billed, and never sends it."""
    out = tmp_path / "out"
    left = _unanswered(out, "s09", "https://x.example/v1")
    settings = BatchSettings(api_base=sim.base_url, api_key="k", run=RunOptions(poll_interval=0.05))
    result = run_batch(_one_shot(out), settings, View(), run_exit_code)
    code = run_exit_code(result)
    assert code == 0 and result.done == 1
    assert result.possibly_billed == ["s09/1 (earlier render)"]
    assert [c.json["prompt"] for c in sim.recorder.creates()] == ["waves"]
    with Store.open(out) as store:
        assert store.renders()[left.key].state == "submitting"


def test_a_restored_shots_unanswered_create_holds_the_batch_to_its_base(
    tmp_path: Path, sim: RunningSim
) -> None:
    """The shot back in the manifest: its create would be sent again with its key, so only
    to the base it went to first."""
    out = tmp_path / "out"
    _in_flight(
        out, _one_shot(out), state="submitting", task_id=None, api_base="https://x.example/v1"
    )
    with pytest.raises(ConfigError) as caught:
        settings = BatchSettings(api_base=sim.base_url, api_key="k")
        run_batch(_one_shot(out), settings, View(), run_exit_code)
    assert "in flight were submitted to https://x.example/v1" in caught.value.message
    assert sim.recorder.requests == []
