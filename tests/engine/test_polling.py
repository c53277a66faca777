"""The poll planner: the interval until durations are known, then aimed at the seen finishes."""

from __future__ import annotations

import itertools
import random

import pytest

from runner.polling import PollPlanner, estimated_finish


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


def test_progress_aims_the_next_poll_at_the_extrapolated_finish() -> None:
    """A task at 50 % after 1 s and 75 % after 1.5 s is next asked just after 2 s (a fiftieth
    of the interval after), not an interval on."""
    plan = planner(2.0)
    delay = plan.next_delay("k", 1.5, [(1.0, 50.0), (1.5, 75.0)])
    assert delay == pytest.approx(0.5 + 2.0 / 50)


def test_one_reading_is_counted_from_the_submission() -> None:
    """One reading of 40 % after 2 s aims just after 5 s."""
    plan = planner(10.0)
    assert plan.next_delay("k", 2.0, [(2.0, 40.0)]) == pytest.approx(3.0 + 10.0 / 50)


def test_progress_never_waits_past_the_interval_or_polls_in_a_burst() -> None:
    """A far estimate waits one interval (with its jitter); one due now waits a sixth of the
    interval; one due just past the interval is asked then, as late as jitter may make an
    interval and no later."""
    plan = planner(6.0)
    assert plan.next_delay("k", 10.0, [(10.0, 1.0)]) <= 7.2
    assert plan.next_delay("k", 10.0, [(9.0, 98.0), (10.0, 99.9)]) == pytest.approx(1.0)
    # 50 % at 7 s: the finish is at 14 s, 7 s on (and a fiftieth of the interval).
    assert plan.next_delay("k", 7.0, [(7.0, 50.0)]) == pytest.approx(7.0 + 6.0 / 50)
    far = [plan.next_delay("k", 7.0, [(7.0, 45.0)]) for _ in range(20)]
    assert all(4.8 <= delay <= 7.2 for delay in far) and len(set(far)) > 1


def test_progress_far_past_every_seen_finish_is_not_trusted() -> None:
    """Invented progress (10 % after 1 s, so 10 s) loses to finishes seen at about 2 s: the
    next poll is at the quickest seen finish (1.95 s), not an interval on."""
    plan = planner(0.5)
    for duration in (2.0, 2.05, 2.1, 1.95, 2.02):
        plan.observe("k", duration)
    assert plan.next_delay("k", 1.0, [(1.0, 10.0)]) == pytest.approx(0.95)


def test_a_task_slower_than_any_seen_is_asked_at_its_own_finish() -> None:
    """Only quick tasks seen so far (about 20 s): one whose progress says 21.4 s is asked then,
    not an interval later."""
    plan = planner(5.0)
    for duration in (19.5, 20.0, 20.3):
        plan.observe("k", duration)
    delay = plan.next_delay("k", 20.5, [(15.5, 68.0), (20.5, 95.0)])
    assert 20.5 + delay == pytest.approx(20.5 + 5 * 5 / 27 + 5.0 / 50)


def test_a_task_stuck_at_99_percent_is_asked_at_the_interval() -> None:
    """Progress stuck at 99 % predicts no finish: the task is asked every interval, not every
    sixth of one for as long as it hangs."""
    plan = planner(15.0)
    assert plan.next_delay("k", 100.0, [(90.0, 99.0), (100.0, 99.0)]) >= 12.0


def test_progress_within_the_seen_spread_saves_polls() -> None:
    """Among tasks of 1.8-2.2 s, a task reporting its pace is found at its finish in one poll
    more, where stepping through the spread would take several."""
    plan = planner(0.5)
    for duration in (1.8, 1.9, 2.0, 2.1, 2.2):
        plan.observe("k", duration)
    first = plan.next_delay("k", 0.0)
    # At ``first`` the task (2.15 s, linear) reports its progress.
    reading = (first, first / 2.15 * 100)
    second = first + plan.next_delay("k", first, [reading])
    assert 2.15 <= second <= 2.2


@pytest.mark.parametrize(
    ("readings", "finish"),
    [
        ([], None),
        ([(1.0, 0.0)], None),
        ([(3.0, 100.0)], 3.0),
        ([(2.0, 50.0)], 4.0),
        ([(2.0, 20.0), (4.0, 60.0)], 6.0),
        # Progress that has not risen says nothing of the pace.
        ([(2.0, 50.0), (4.0, 50.0)], None),
        ([(2.0, 60.0), (4.0, 50.0)], None),
    ],
)
def test_estimated_finish(readings: list[tuple[float, float]], finish: float | None) -> None:
    """The finish from progress readings: a rate from two rising ones, else from submission."""
    assert estimated_finish(readings) == (None if finish is None else pytest.approx(finish))
