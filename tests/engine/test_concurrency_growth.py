"""The adaptive limit grows as creates are accepted, without waiting for a task to finish."""

from __future__ import annotations

import asyncio

from runner.concurrency import AdaptiveLimit


async def test_accepted_create_lets_a_waiting_dispatcher_through() -> None:
    """Slow start wakes a waiter as soon as the limit grows, with no slot released."""
    limit = AdaptiveLimit(16, start=2)
    await limit.acquire()
    await limit.acquire()
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    limit.on_accepted()
    await asyncio.wait_for(waiter, 1.0)
    assert limit.active == 3


async def test_a_full_limit_keeps_the_waiter_waiting() -> None:
    """Without room (no growth, no release) a waiter does not get a slot."""
    limit = AdaptiveLimit(2, start=2)
    await limit.acquire()
    await limit.acquire()
    limit.on_accepted()  # already at the ceiling: no room appears
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await limit.release()
    await asyncio.wait_for(waiter, 1.0)
    assert limit.active == 2
