"""The adaptive limit on tasks in flight: what keeps a saturated service from a storm of 429s.

``--concurrency`` is a ceiling, not a promise. The limit starts low and grows by one per
accepted create (slow start) until the first 429; a 429 sets it to the number of tasks the
service is holding for us right now (what it demonstrably accepts) and pauses new creates
for the wait. From there it grows by one only after ``probe_every * limit`` accepted creates,
so probing for more room costs a 429 rarely, and the limit follows a service that frees up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class AdaptiveLimit:
    """Slots for tasks in flight, with a limit that adapts to 429s."""

    def __init__(self, ceiling: int, *, start: int = 4, probe_every: float = 2.0) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = float(min(self.ceiling, max(1, start)))
        self.threshold = float(self.ceiling)
        self.active = 0
        self.rate_limited = 0
        self.accepted = 0
        self._probe_every = probe_every
        self._paused_until = 0.0
        # Set whenever room may have appeared: a slot released or the limit raised.
        self._changed = asyncio.Event()

    def _has_room(self) -> bool:
        return self.active < int(self.limit) and time.monotonic() >= self._paused_until

    async def acquire(self) -> None:
        """Wait for a free slot (and for any pause after a 429 to end), then take it."""
        while not self._has_room():
            self._changed.clear()
            pause = self._paused_until - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), pause if pause > 0 else None)
        self.active += 1

    def take(self) -> None:
        """Take a slot without waiting: a task already in flight on the server (resume)."""
        self.active += 1

    async def release(self) -> None:
        self.active = max(0, self.active - 1)
        self._changed.set()

    def on_accepted(self) -> None:
        """A create was answered with a task: grow (fast below the threshold, slowly above)."""
        self.accepted += 1
        if self.limit < self.threshold:
            self.limit = min(self.threshold, self.limit + 1)
        else:
            self.limit += 1 / (self._probe_every * self.limit)
        self.limit = min(self.limit, float(self.ceiling))
        # Slow start grows per accepted create, not per finished task: wake the dispatcher.
        self._changed.set()

    def on_rate_limited(self, wait: float) -> None:
        """A create was answered 429 (its slot already released): shrink and pause."""
        self.rate_limited += 1
        self.threshold = float(max(1, self.active))
        self.limit = self.threshold
        self._paused_until = max(self._paused_until, time.monotonic() + wait)
