"""When to ask a task again: the poll interval, stretched toward the task's expected finish.

A task is asked every ``--poll-interval`` seconds (with jitter) at the most. Polling sooner than
a task can finish spends requests (and the gateway's rate limit) for nothing, so the planner
learns how long tasks of the same kind (model, seconds, resolution) took in this run and lets
the first polls of a new task wait until shortly before the quickest of them would be done.
It waits on the low side of what it saw (a low quantile), so a clip is rarely collected later
than with plain polling; until it has seen a task finish, it polls at the interval.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Hashable


class PollPlanner:
    """Delays between polls, from the configured interval and the durations seen so far."""

    #: Durations kept per kind of task (the newest win: a service can speed up or slow down).
    WINDOW = 64
    #: Which of the seen durations to aim for: low, so a task is rarely asked late.
    QUANTILE = 0.2
    #: Finished tasks of a kind that must be seen before their durations are trusted.
    MIN_SEEN = 3

    def __init__(self, interval: float, *, jitter: float = 0.2, rng: random.Random | None = None):
        self.interval = max(0.0, interval)
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._seen: dict[Hashable, deque[float]] = {}

    def observe(self, kind: Hashable, duration: float) -> None:
        """A task of ``kind`` was seen finished ``duration`` seconds after it was submitted."""
        if duration >= 0:
            self._seen.setdefault(kind, deque(maxlen=self.WINDOW)).append(duration)

    def expected(self, kind: Hashable) -> float | None:
        """How long a task of ``kind`` takes at the least, as far as this run has seen."""
        seen = self._seen.get(kind)
        if seen is None or len(seen) < self.MIN_SEEN:
            return None
        ordered = sorted(seen)
        return ordered[int(self.QUANTILE * (len(ordered) - 1))]

    def next_delay(self, kind: Hashable, elapsed: float) -> float:
        """Seconds to wait before asking again a task submitted ``elapsed`` seconds ago."""
        delay = self.interval * self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        expected = self.expected(kind)
        if expected is not None:
            # Wait for the expected finish when it is further away than the interval.
            delay = max(delay, expected - elapsed)
        return delay
