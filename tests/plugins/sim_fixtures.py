"""Fixtures that start the built-in simulator on loopback, each on its own free ports.

- ``start_sim(**knobs)``: a factory; the knobs are ``runner.sim.SimConfig`` fields
  (``job_seconds=0.3`` unless given). Every simulator it started is stopped at teardown.
- ``sim``: one well-behaved simulator with short jobs.

Both work from sync and async tests: the simulator serves from its own thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from runner.sim import RunningSim

#: Short enough for fast tests, long enough that a test sees queued and in_progress.
TEST_JOB_SECONDS = 0.3

StartSim = Callable[..., "RunningSim"]


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """Start simulators with any knobs; all of them stop when the test ends."""
    from runner.sim import SimConfig, start_in_thread

    running: list[RunningSim] = []

    def start(**knobs: Any) -> RunningSim:
        knobs.setdefault("job_seconds", TEST_JOB_SECONDS)
        sim = start_in_thread(SimConfig(**knobs))
        running.append(sim)
        return sim

    yield start
    for sim in reversed(running):
        sim.stop()


@pytest.fixture
def sim(start_sim: StartSim) -> RunningSim:
    """A well-behaved simulator with short jobs."""
    return start_sim()
