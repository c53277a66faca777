"""The adaptive limit on tasks in flight."""

from __future__ import annotations

import asyncio

from runner.concurrency import AdaptiveLimit


async def test_starts_low_and_grows_by_one_per_accepted_create() -> None:
    """Slow start: the limit begins at 4 and each accepted create adds one, up to the ceiling."""
    limit = AdaptiveLimit(64)
    assert int(limit.limit) == 4
    for _ in range(10):
        limit.on_accepted()
    assert int(limit.limit) == 14


async def test_rate_limit_sets_the_limit_to_what_the_service_holds() -> None:
    """A 429 with 8 tasks in flight makes 8 the limit, then growth is slow."""
    limit = AdaptiveLimit(64)
    for _ in range(8):
        limit.take()
    limit.on_rate_limited(0)
    assert limit.limit == 8
    for _ in range(8):
        limit.on_accepted()
    assert int(limit.limit) == 8
    for _ in range(16):
        limit.on_accepted()
    assert int(limit.limit) >= 9


async def test_never_above_the_ceiling() -> None:
    """--concurrency stays the ceiling however many creates succeed."""
    limit = AdaptiveLimit(3)
    for _ in range(100):
        limit.on_accepted()
    assert limit.limit == 3


async def test_acquire_waits_for_a_released_slot() -> None:
    """With every slot taken, acquire returns only once one is released."""
    limit = AdaptiveLimit(1, start=1)
    await limit.acquire()
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await limit.release()
    await asyncio.wait_for(waiter, 1)
    assert limit.active == 1


async def test_a_pause_after_429_delays_new_creates() -> None:
    """After a 429 with a wait, no slot is handed out before the wait ends."""
    limit = AdaptiveLimit(4)
    limit.on_rate_limited(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await limit.acquire()
    assert loop.time() - started >= 0.15
