"""The retry policy: how long to wait before trying again, and when to stop trying.

Exponential backoff with full jitter (a uniformly random wait up to the exponential bound, so
that many jobs failing together do not retry together), a cap, and the server's
``Retry-After`` honoured up to a sane maximum. Tests make every wait zero with
``instant_retries()`` or ``SHOTRUNNER_INSTANT_RETRY=1``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

INSTANT_ENV = "SHOTRUNNER_INSTANT_RETRY"

#: A Retry-After longer than this is taken as this: a confused proxy must not park a run for days.
MAX_RETRY_AFTER = 300.0

# Above this the bound is the cap anyway; keeps 2**n from overflowing a float.
_MAX_EXPONENT = 62

_instant = False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for one kind of failure: ``delay`` says how long to wait, ``exhausted`` when to stop.

    ``max_tries`` counts attempts in all (the first one included); None means no limit.
    """

    base: float = 1.0
    cap: float = 60.0
    max_tries: int | None = None
    max_retry_after: float = MAX_RETRY_AFTER

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failures`` consecutive failures (1 for the first).

        A server's ``retry_after`` wins over the backoff, capped at ``max_retry_after``.
        """
        if instant():
            return 0.0
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        exponent = min(max(failures, 1) - 1, _MAX_EXPONENT)
        return random.uniform(0.0, min(self.cap, self.base * 2.0**exponent))

    def exhausted(self, tries: int) -> bool:
        """True once ``tries`` attempts have been made and no more are allowed."""
        return self.max_tries is not None and tries >= self.max_tries


def instant() -> bool:
    """Whether waits are switched off (tests)."""
    return _instant or os.environ.get(INSTANT_ENV, "") not in ("", "0")


@contextmanager
def instant_retries(on: bool = True) -> Iterator[None]:
    """Within the block every ``RetryPolicy.delay`` is 0 (or back to normal with ``on=False``)."""
    global _instant
    previous, _instant = _instant, on
    try:
        yield
    finally:
        _instant = previous
