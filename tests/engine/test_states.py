"""The state machine of a render: the table of moves, the step for each state, and that a
real run moves only as the table says."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import pytest

from runner.api.client import ApiClient
from runner.engine.states import (
    MOVES,
    STEP_FOR_STATE,
    IllegalMove,
    Step,
    first_step,
    move,
)
from runner.model import JOB_STATES
from runner.sim import RunningSim
from runner.store import RenderRow, Store
from tests.engine.runs import manifest_of, run_once
from tests.plugins.sim_fixtures import StartSim


def test_every_state_has_its_moves_and_its_step() -> None:
    """The tables name every state, and every move leads to a state."""
    assert set(MOVES) == set(JOB_STATES) == set(STEP_FOR_STATE)
    for targets in MOVES.values():
        assert targets <= set(JOB_STATES)


def test_a_move_the_table_does_not_list_is_refused() -> None:
    """pending straight to done would skip the create: refused, the state left as it was."""
    render = RenderRow("f" * 64, 1)
    with pytest.raises(IllegalMove, match="pending -> done"):
        move(render, "done")
    assert render.state == "pending"
    move(render, "submitting")
    assert render.state == "submitting"


def test_a_paid_clip_is_never_moved_back_to_pending() -> None:
    """No state after a create may return to pending: only a create that created nothing
    (still ``submitting``) goes back there."""
    for state, targets in MOVES.items():
        if state != "submitting":
            assert "pending" not in targets, state


@pytest.mark.parametrize(
    ("state", "task_id", "error_code", "step"),
    [
        ("pending", None, None, Step.SUBMIT_NEW),
        ("submitting", None, None, Step.SUBMIT_SAME),
        ("queued", "t", None, Step.POLL),
        ("running", "t", None, Step.POLL),
        ("downloading", "t", None, Step.DOWNLOAD),
        ("done", "t", None, Step.DELIVER),
        ("failed", "t", "timeout", Step.POLL),
        ("failed", None, "unanswered", Step.SUBMIT_SAME),
        ("failed", "t", "policy", Step.SUBMIT_NEW),
    ],
)
def test_the_first_step_follows_the_state_the_store_left(
    state: str, task_id: str | None, error_code: str | None, step: Step
) -> None:
    """A render picks up where it was: a kept task is asked first, a lost answer resent."""
    render = RenderRow("f" * 64, 1, state=state, task_id=task_id, error_code=error_code)  # type: ignore[arg-type]
    assert first_step(render) is step


def _moves_recorded(store: Store) -> dict[tuple[str, int], list[str]]:
    """Each render's states, in the order its events recorded them."""
    states: dict[tuple[str, int], list[str]] = defaultdict(list)
    for event in store.events():
        if event["state"] in JOB_STATES and event["fingerprint"] is not None:
            states[(event["fingerprint"], event["generation"])].append(event["state"])
    return states


async def test_a_run_with_failures_moves_only_as_the_table_says(
    start_sim: StartSim, store: Store, out_dir: Path
) -> None:
    """Every change of state a real run records, retries and remote failures included, is a
    move of the table."""
    sim = start_sim(fail_rate=0.3, lose_rate=0.2, job_seconds=0.1, seed=3)
    manifest = manifest_of(out_dir, *(f"prompt {i}" for i in range(6)))
    async with ApiClient(sim.base_url, "k") as client:
        await run_once(manifest, store, client, max_attempts=3)
    recorded = _moves_recorded(store)
    assert len(recorded) == 6
    # The run did meet failures: some render went through more than one attempt.
    assert any(states.count("submitting") > 1 for states in recorded.values())
    for states in recorded.values():
        for before, after in itertools.pairwise(states):
            assert before == after or after in MOVES[before], (before, after)  # type: ignore[index]


async def test_a_delivered_render_ends_done(sim: RunningSim, store: Store, out_dir: Path) -> None:
    """The plain life: pending, submitting, queued, (running,) downloading, done."""
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest_of(out_dir, "waves"), store, client)
    assert result.done == 1
    (states,) = _moves_recorded(store).values()
    assert states[:2] == ["submitting", "queued"]
    assert states[-2:] == ["downloading", "done"]
