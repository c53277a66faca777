"""The state file: a simulator started again on it knows its tasks, keys and URLs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.plugins.sim_fixtures import StartSim
from tests.sim.conftest import Connect, create, finished, poll


def test_tasks_survive_a_restart_on_the_same_state_file(
    start_sim: StartSim, connect: Connect, tmp_path: Path
) -> None:
    """A task created before a restart is retrieved, and completes, after it."""
    state = tmp_path / "simulator.db"
    first = start_sim(state_path=state)
    task_id = create(connect(first)).json()["id"]
    first.stop()
    second = start_sim(state_path=state)
    task = poll(connect(second), task_id, finished).json()
    assert task["status"] == "completed"


def test_idempotency_keys_survive_a_restart(
    start_sim: StartSim, connect: Connect, tmp_path: Path
) -> None:
    """A create repeated after a restart with the same key reaches the first task."""
    state = tmp_path / "simulator.db"
    first = start_sim(state_path=state)
    task_id = create(connect(first), key="fp-g1-a1").json()["id"]
    first.stop()
    second = start_sim(state_path=state)
    assert create(connect(second), key="fp-g1-a1").json()["id"] == task_id
    assert second.recorder.tasks_created == 0


def test_a_url_signed_before_a_restart_still_downloads(
    start_sim: StartSim, connect: Connect, tmp_path: Path
) -> None:
    """The signing secret is kept in the state file, so old URLs verify after a restart."""
    state = tmp_path / "simulator.db"
    first = start_sim(state_path=state, job_seconds=0.0, file_port=0)
    client = connect(first)
    url = httpx.URL(client.get(f"/videos/{create(client).json()['id']}").json()["video_url"])
    first.stop()
    second = start_sim(state_path=state)
    moved = url.copy_with(port=httpx.URL(second.file_base_url).port)
    assert httpx.get(moved).status_code == 200


def test_a_restart_without_a_state_file_forgets_everything(
    start_sim: StartSim, connect: Connect
) -> None:
    """Without state_path the tasks live in memory only."""
    first = start_sim()
    task_id = create(connect(first)).json()["id"]
    first.stop()
    assert connect(start_sim()).get(f"/videos/{task_id}").status_code == 404


def test_the_state_file_is_sqlite_in_wal_mode_and_closed_on_stop(
    start_sim: StartSim, connect: Connect, tmp_path: Path
) -> None:
    """The state file is a WAL SQLite database holding the tasks; stop releases it."""
    state = tmp_path / "simulator.db"
    sim = start_sim(state_path=state)
    create(connect(sim))
    sim.stop()
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT count(*) FROM tasks").fetchone() == (1,)
    db.close()
    assert not (tmp_path / "simulator.db-wal").exists()


def test_stop_is_idempotent(start_sim: StartSim) -> None:
    """Calling stop twice is harmless."""
    sim = start_sim()
    sim.stop()
    sim.stop()
