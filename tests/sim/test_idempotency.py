"""Idempotency-Key: the same key reaches the same task, unless the simulator ignores keys."""

from __future__ import annotations

from runner.sim import RunningSim
from tests.plugins.sim_fixtures import StartSim
from tests.sim.conftest import Connect, create


def test_the_same_key_returns_the_same_task(sim: RunningSim, connect: Connect) -> None:
    """A second create with the same key answers the first task and makes none."""
    client = connect(sim)
    first = create(client, key="fp-g1-a1")
    second = create(client, key="fp-g1-a1")
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert sim.recorder.tasks_created == 1


def test_different_keys_make_different_tasks(sim: RunningSim, connect: Connect) -> None:
    """Two keys (a new attempt, say) make two tasks."""
    client = connect(sim)
    ids = {create(client, key=key).json()["id"] for key in ("fp-g1-a1", "fp-g1-a2")}
    assert len(ids) == 2


def test_creates_without_a_key_always_make_new_tasks(sim: RunningSim, connect: Connect) -> None:
    """Without the header each create makes a task."""
    client = connect(sim)
    create(client)
    create(client)
    assert sim.recorder.tasks_created == 2


def test_ignore_idempotency_makes_a_new_task_for_a_repeated_key(
    start_sim: StartSim, connect: Connect
) -> None:
    """Like the real gateway, ignore_idempotency makes a task per create whatever the key."""
    sim = start_sim(ignore_idempotency=True)
    client = connect(sim)
    ids = {create(client, key="fp-g1-a1").json()["id"] for _ in range(2)}
    assert len(ids) == 2
    assert sim.recorder.tasks_created == 2


def test_a_replay_is_answered_even_at_the_concurrency_limit(
    start_sim: StartSim, connect: Connect
) -> None:
    """A repeated key finds its task though max_active would refuse a new one."""
    sim = start_sim(max_active=1, job_seconds=30)
    client = connect(sim)
    first = create(client, key="k").json()["id"]
    assert create(client, key="k").json()["id"] == first
