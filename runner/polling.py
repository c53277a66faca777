"""When to ask a task again: aimed at its own progress, or at the finishes seen so far, else the
poll interval.

A task is asked every ``--poll-interval`` seconds (with jitter) while nothing is known. Polling
sooner than a task can finish spends requests (and the gateway's rate limit) for nothing, and
polling long after it finished leaves its slot idle and its clip waiting. So the planner learns
how long tasks of the same kind (model, seconds, resolution) took in this run, and aims each
poll of a new task at the next of a few points of that spread (its 10th, 30th, 50th, 70th and
90th percentile, then the longest seen), at least a sixth of the interval apart. Past the
longest seen it falls back to the interval. Until it has seen a few tasks finish, it polls at
the interval.

A task that reports progress says more about itself than the others do: from its last two
readings (or one, counted from its submission) the planner extrapolates its finish and asks
a moment after it (a fiftieth of the interval: asked at the finish itself, a task is found
just short of it about half the time, and asked once more), never sooner than a sixth of the
interval, and no later than the interval with its jitter may be (1.2 intervals); a finish
further off waits the interval. Progress that has not risen since the reading before (a
task stuck at 99 %) gives no estimate. Backends that invent progress (10, 20, 30, then 100)
give estimates far past the finishes seen: an estimate past twice the longest one seen is
not trusted, and the spread is used instead. (A task a little slower than any seen is
common, most of all early in a run, when only the quickest have finished: its estimate is
trusted.)
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Hashable, Sequence

#: An answer's progress: (seconds since submission, percent done).
Reading = tuple[float, float]


class PollPlanner:
    """Delays between polls, from the configured interval and the durations seen so far."""

    #: Durations kept per kind of task (the newest win: a service can speed up or slow down).
    WINDOW = 64
    #: The points of the seen durations that polls aim at, in order.
    QUANTILES: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
    #: Finished tasks of a kind that must be seen before their durations are trusted.
    MIN_SEEN = 3
    #: Aimed polls are at least this share of the interval apart.
    MIN_STEP = 1 / 6
    #: A finish extrapolated from progress past this many times the longest seen is taken
    #: for invented progress, and the seen spread is used instead.
    IMPLAUSIBLE = 2.0
    #: A poll aimed at an extrapolated finish comes this share of the interval after it.
    PAST_FINISH = 1 / 50

    def __init__(self, interval: float, *, jitter: float = 0.2, rng: random.Random | None = None):
        self.interval = max(0.0, interval)
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._seen: dict[Hashable, deque[float]] = {}

    def observe(self, kind: Hashable, duration: float) -> None:
        """A task of ``kind`` was seen finished ``duration`` seconds after it was submitted."""
        if duration >= 0:
            self._seen.setdefault(kind, deque(maxlen=self.WINDOW)).append(duration)

    def targets(self, kind: Hashable) -> list[float]:
        """The elapsed times at which polls of a task of ``kind`` are aimed (empty: unknown)."""
        seen = self._seen.get(kind)
        if seen is None or len(seen) < self.MIN_SEEN:
            return []
        ordered = sorted(seen)
        last = len(ordered) - 1
        return [ordered[int(q * last)] for q in self.QUANTILES]

    def next_delay(self, kind: Hashable, elapsed: float, readings: Sequence[Reading] = ()) -> float:
        """Seconds to wait before asking again a task submitted ``elapsed`` seconds ago.

        ``readings`` are the progress the task reported in this attempt, oldest first.
        """
        interval = self.interval * self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        step = self.interval * self.MIN_STEP
        targets = self.targets(kind)
        finish = estimated_finish(readings)
        if finish is not None and (not targets or finish <= self.IMPLAUSIBLE * targets[-1]):
            aimed = max(step, finish - elapsed + self.interval * self.PAST_FINISH)
            return aimed if aimed <= self.interval * (1 + self.jitter) else interval
        for target in targets:
            if target >= elapsed + step:
                return target - elapsed
        return interval


def estimated_finish(readings: Sequence[Reading]) -> float | None:
    """When the task reaches 100 %, extrapolated from its progress readings (None: unknown).

    Two rising readings give a rate; one alone is counted from the submission, which a queued
    start makes late rather than early. Progress that did not rise since the reading before
    gives no estimate.
    """
    if not readings:
        return None
    at, done = readings[-1]
    if not 0 < done < 100:
        return at if done >= 100 else None
    if len(readings) >= 2:
        before, done_before = readings[-2]
        if done <= done_before:
            # Progress that has not moved says nothing of the pace. Counted from the
            # submission instead, a task stuck at 99 % would always seem about to finish and
            # be asked every sixth of an interval for as long as it hangs.
            return None
        if done_before > 0 and at > before:
            return at + (100 - done) * (at - before) / (done - done_before)
    return at * 100 / done


def within(delay: float, deadline: float) -> float:
    """``delay``, cut to end just past ``deadline`` (a task's): no wait outlasts it."""
    return min(delay, max(0.0, deadline - time.time()) + _PAST_DEADLINE)


#: How long after a deadline a wait cut to it ends: the deadline has then passed.
_PAST_DEADLINE = 0.05
