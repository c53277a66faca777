"""Waiting for something another thread or process does, by polling with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], timeout: float = 5.0, what: str = "") -> T:
    """Call ``condition`` until it returns something truthy and return that; fail the test,
    saying ``what`` was awaited, if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"waited {timeout} s in vain: {what or condition}"
        time.sleep(0.02)
    return value
