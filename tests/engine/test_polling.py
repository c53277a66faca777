"""The poll planner: the interval until durations are known, then the expected finish."""

from __future__ import annotations

import random

from runner.polling import PollPlanner


def planner(interval: float = 1.0) -> PollPlanner:
    return PollPlanner(interval, rng=random.Random(7))


def test_polls_at_the_interval_with_jitter_before_anything_finished() -> None:
    """With nothing seen yet, every delay is the interval within ±20 %."""
    plan = planner(10.0)
    delays = [plan.next_delay("k", elapsed) for elapsed in (0.0, 5.0, 50.0)]
    assert all(8.0 <= d <= 12.0 for d in delays)


def test_first_poll_waits_for_the_quickest_seen_finish() -> None:
    """After tasks of a kind took 20-30 s, a new one is first asked near 20 s, not at 1 s."""
    plan = planner(1.0)
    for duration in (20.0, 22.0, 25.0, 30.0, 28.0):
        plan.observe("k", duration)
    assert 19.0 <= plan.next_delay("k", 0.0) <= 20.5
    # Past the expected finish it falls back to the interval.
    assert plan.next_delay("k", 21.0) <= 1.2


def test_kinds_are_learned_apart() -> None:
    """Durations of one kind of task do not delay polls of another kind."""
    plan = planner(1.0)
    for _ in range(5):
        plan.observe("long", 100.0)
    assert plan.next_delay("short", 0.0) <= 1.2
    assert plan.next_delay("long", 0.0) >= 99.0


def test_a_few_samples_are_not_trusted() -> None:
    """Fewer than three finished tasks leave the interval alone."""
    plan = planner(1.0)
    plan.observe("k", 50.0)
    plan.observe("k", 50.0)
    assert plan.next_delay("k", 0.0) <= 1.2


def test_the_low_quantile_resists_one_slow_outlier() -> None:
    """One task that hung for an hour does not make new tasks wait an hour."""
    plan = planner(1.0)
    for duration in (10.0, 10.5, 11.0, 3600.0, 10.2):
        plan.observe("k", duration)
    assert plan.next_delay("k", 0.0) <= 11.0
