"""Paid clips are never abandoned nor paid twice: owed downloads, reverted edits, no network."""

from __future__ import annotations

from pathlib import Path

from runner.sim import RunningSim
from tests.e2e.conftest import INSTANT, Batch, RunBatch
from tests.plugins.sim_fixtures import StartSim


def test_a_clip_that_cannot_be_downloaded_stays_owed_and_the_next_run_fetches_it(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch, tmp_path: Path
) -> None:
    """Links that always expire: exit 1, task kept; the next plain run fetches, paying nothing."""
    state = tmp_path / "sim.db"
    broken = start_sim(url_ttl=1e-6, state_path=state)
    batch.write({"s01": "waves"})
    first = run_batch(broken.base_url, env=INSTANT)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "the next run fetches it again" in first.stdout  # the summary's failure
    (job,) = batch.status()["jobs"]
    assert job["state"] == "downloading"
    assert job["task_id"] is not None
    broken.stop()
    # The same API base, now healthy: the tasks in flight were submitted there.
    port = int(broken.base_url.rsplit(":", 1)[1].split("/")[0])
    healthy = start_sim(state_path=state, port=port)
    second = run_batch(healthy.base_url)
    assert second.returncode == 0, second.stdout + second.stderr
    assert healthy.recorder.tasks_created == 0
    assert [p.name for p in batch.clips()] == ["take-1.mp4"]
    assert batch.status()["jobs"][0]["error"] is None


def test_a_reverted_edit_takes_its_clip_back_from_history(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Edit a shot, then undo the edit: the first clip comes back from .history/, no request."""
    batch.write({"s01": "waves"})
    assert run_batch(sim.base_url).returncode == 0
    clip = batch.out / "s01/take-1.mp4"
    original = clip.read_bytes()
    batch.write({"s01": "an edited prompt"})
    assert run_batch(sim.base_url).returncode == 0
    edited = clip.read_bytes()
    assert edited != original
    batch.write({"s01": "waves"})
    sent = len(sim.recorder.requests)
    result = run_batch(sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(sim.recorder.requests) == sent
    assert clip.read_bytes() == original
    kept = sorted(p.read_bytes() for p in (batch.out / "s01/.history").glob("*.mp4"))
    assert kept == sorted([original, edited])


def test_a_finished_batch_runs_without_the_network(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Nothing to submit, poll or fetch: a run against an unreachable API base still exits 0."""
    assert run_batch(sim.base_url).returncode == 0
    result = run_batch("http://127.0.0.1:9/v1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plan: 0 task(s) to submit" in result.stderr


def test_an_unchanged_batch_keeps_its_contact_sheet(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A run that changes nothing leaves index.html as it was; one that delivers rewrites it."""
    assert run_batch(sim.base_url).returncode == 0
    page = batch.out / "index.html"
    written = page.stat().st_mtime_ns
    assert run_batch(sim.base_url).returncode == 0
    assert page.stat().st_mtime_ns == written
    (batch.out / "s01/take-1.mp4").unlink()
    assert run_batch(sim.base_url).returncode == 0
    assert page.stat().st_mtime_ns != written


def _lose_state_db(batch: Batch) -> None:
    """Delete the batch's state database with its WAL files, as a lost disk or a user would."""
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (batch.out / name).unlink(missing_ok=True)


def test_a_lost_state_database_pays_for_nothing_again(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """state.db deleted: the clips on disk are taken back by their sidecars, nothing is sent."""
    sim = start_sim(ignore_idempotency=True)
    assert run_batch(sim.base_url).returncode == 0
    contents = {p: p.read_bytes() for p in batch.clips()}
    _lose_state_db(batch)
    sent = len(sim.recorder.requests)
    result = run_batch(sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plan: 0 task(s) to submit" in result.stderr
    assert len(sim.recorder.requests) == sent
    assert {p: p.read_bytes() for p in batch.clips()} == contents
    assert {job["state"] for job in batch.status()["jobs"]} == {"done"}


def test_a_real_run_refuses_a_folder_of_simulated_sidecars_without_state_db(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Simulated clips with state.db lost: a real run exits 2, no clip passes for a paid one."""
    assert run_batch(sim.base_url).returncode == 0
    for clip in batch.clips():
        sidecar = clip.with_suffix(".json")
        sidecar.write_text(sidecar.read_text().replace('"simulated": false', '"simulated": true'))
    _lose_state_db(batch)
    sent = len(sim.recorder.requests)
    result = run_batch(sim.base_url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "holds simulated renders" in result.stderr
    assert len(sim.recorder.requests) == sent
    assert all('"simulated": true' in c.with_suffix(".json").read_text() for c in batch.clips())


def test_a_real_run_refuses_a_folder_with_a_simulator_database(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """simulator.db without state.db marks the folder simulated: a real run exits 2."""
    batch.out.mkdir(parents=True)
    (batch.out / "simulator.db").write_bytes(b"")
    result = run_batch(sim.base_url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "holds simulated renders" in result.stderr
    assert sim.recorder.tasks_created == 0
