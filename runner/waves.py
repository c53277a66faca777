"""The waves of one run: jobs that waited for other shots' clips, run once those are there.

A chained job cannot be fingerprinted before the clip it needs is delivered, so it holds no
slot and sends nothing while it waits. When a wave ends, the jobs it unblocked (their clips
now delivered) are bound, planned and run as the next wave, through the same client, view
and run record; the results add up into one ``RunResult``. Jobs still waiting at the end
are counted as failed with their reason ("needs s01-wide, which failed"), so the exit code
says so. A kill between waves loses nothing: the next run binds them from the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from runner.errors import InputError
from runner.plan import make_plan

if TYPE_CHECKING:
    from runner.chain import Waiting
    from runner.engine import Run
    from runner.model import RunResult
    from runner.plan import Plan


class Outcome(Protocol):
    result: RunResult
    waiting: list[Waiting]


def check_max_new_waiting(plan: Plan, max_new: int | None) -> None:
    """Refuse to start when the tasks to submit now and the jobs that wait for clips would
    together pass ``--max-new``: the waiting ones are submitted later in the same run."""
    total = plan.summary.tasks_to_submit + len(plan.waiting)
    if max_new is not None and plan.waiting and total > max_new:
        raise InputError(
            f"{plan.summary.tasks_to_submit} task(s) would be submitted and {len(plan.waiting)} "
            f"more once the clips they need are delivered, more than --max-new {max_new}; "
            "nothing was sent"
        )


async def run_waves(
    outcome: Outcome, first: Run, plan: Plan, make_run: Callable[[Plan], Run]
) -> None:
    """Run the jobs ``plan`` left waiting, wave after wave, as their clips are delivered."""
    from runner.sources import bind_batch

    outcome.waiting = list(plan.waiting)
    planned = {item.job.key for item in plan.jobs}
    only = plan.options.only
    manifest = first.context.manifest
    while outcome.waiting and not _stopped(outcome.result):
        bound, _ = bind_batch(manifest, first.store, plan.options)
        fresh = [
            job
            for job in bound.jobs
            if job.key not in planned and (not only or job.shot.id in only)
        ]
        outcome.waiting = [w for w in bound.waiting if not only or w.shot.id in only]
        if not fresh:
            return
        planned.update(job.key for job in fresh)
        later = make_plan(fresh, first.store, plan.options)
        # Renders in flight that no job points at were collected by the first wave.
        later.earlier = []
        later.summary.earlier = later.summary.possibly_billed = 0
        if plan.money is not None:
            # Priced with the run's table: a wave's creates count against --max-cost too,
            # and its plan line shows what it costs.
            from runner.pricing import price_with

            price_with(later, plan.money.table, first.options.max_attempts)
        for job in fresh:
            first.view.state(job.key, "ready", "the clips it needs are delivered")
        run = make_run(later)
        if first.options.max_new is not None:
            left = max(0, first.options.max_new - outcome.result.creates)
            run.options = dataclasses.replace(run.options, max_new=left)
        # --max-cost holds for the whole run: a wave starts from the money committed so far.
        run.result.committed_cost = outcome.result.committed_cost
        part = await run.execute()
        _add(outcome.result, part)


def _stopped(result: RunResult) -> bool:
    return result.interrupted or result.stopped_by is not None


def _add(total: RunResult, part: RunResult) -> None:
    """Add one wave's result to the run's."""
    for name in (
        "delivered",
        "seconds_delivered",
        "done",
        "creates",
        "rate_limited",
        "earlier_collected",
        "wall_time",
    ):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.delivered_cost += part.delivered_cost
    total.committed_cost = part.committed_cost  # a wave starts from the run's (see above)
    total.failed += part.failed
    total.possible_duplicates += part.possible_duplicates
    total.earlier_lost += part.earlier_lost
    total.possibly_billed += part.possibly_billed
    total.interrupted = total.interrupted or part.interrupted
    total.stopped_by = part.stopped_by or total.stopped_by
    total.in_flight_at_stop = part.in_flight_at_stop


def hold_waiting(result: RunResult, waiting: Sequence[Waiting]) -> None:
    """Count the jobs still waiting as failed with their reason, unless the run stopped
    early (then they are simply the next run's)."""
    if _stopped(result):
        return
    for item in waiting:
        reason = item.reason if item.held else f"{item.reason}: its clip was not delivered"
        result.failed.append((item.key, reason))
