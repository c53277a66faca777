"""The poll planner: the interval until durations are known, then aimed at the seen finishes."""

from __future__ import annotations

import itertools
import random

from runner.polling import PollPlanner


def planner(interval: float = 1.0) -> PollPlanner:
    return PollPlanner(interval, rng=random.Random(7))


def polls_until(plan: PollPlanner, kind: str, finish: float) -> list[float]:
    """The elapsed times at which a task finishing at ``finish`` is asked, up to the one that
    sees it finished."""
    elapsed, asked = 0.0, []
    while not asked or asked[-1] < finish:
        elapsed += plan.next_delay(kind, elapsed)
        asked.append(elapsed)
    return asked


def test_polls_at_the_interval_with_jitter_before_anything_finished() -> None:
    """With nothing seen yet, every delay is the interval within ±20 %."""
    plan = planner(10.0)
    delays = [plan.next_delay("k", elapsed) for elapsed in (0.0, 5.0, 50.0)]
    assert all(8.0 <= d <= 12.0 for d in delays)


def test_first_poll_waits_for_the_quickest_seen_finishes() -> None:
    """After tasks of a kind took 20-30 s, a new one is first asked near 20 s, not at 1 s."""
    plan = planner(1.0)
    for duration in (20.0, 22.0, 25.0, 30.0, 28.0):
        plan.observe("k", duration)
    assert 19.9 <= plan.next_delay("k", 0.0) <= 22.1


def test_polls_step_through_the_spread_then_fall_back_to_the_interval() -> None:
    """Polls aim at points of the seen spread, then, past the longest seen, the interval."""
    plan = planner(6.0)
    for duration in range(10, 111, 10):
        plan.observe("k", float(duration))
    asked = polls_until(plan, "k", 125.0)
    assert asked[:6] == [20.0, 40.0, 60.0, 80.0, 100.0, 110.0]
    after = [b - a for a, b in itertools.pairwise(asked) if a >= 110.0]
    assert after and all(4.8 <= gap <= 7.2 for gap in after)


def test_a_task_near_the_seen_finishes_is_collected_with_few_polls() -> None:
    """Tasks that all take about 2 s, polled every 0.5 s: found within a few polls, soon."""
    plan = planner(0.5)
    for duration in (2.0, 2.05, 2.1, 1.95, 2.02):
        plan.observe("k", duration)
    asked = polls_until(plan, "k", 2.03)
    assert len(asked) <= 4
    assert asked[-1] - 2.03 <= 0.5 / 6 + 0.1


def test_aimed_polls_are_never_closer_than_a_sixth_of_the_interval() -> None:
    """Finishes seen close together do not make a burst of polls."""
    plan = planner(6.0)
    for duration in (10.0, 10.1, 10.2, 10.3, 10.4, 10.5):
        plan.observe("k", duration)
    asked = polls_until(plan, "k", 30.0)
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(asked))


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


def test_one_slow_outlier_does_not_delay_the_first_poll() -> None:
    """One task that hung for an hour does not make the first poll of new tasks wait."""
    plan = planner(1.0)
    for duration in (10.0, 10.5, 11.0, 3600.0, 10.2, 10.4):
        plan.observe("k", duration)
    assert plan.next_delay("k", 0.0) <= 11.0
