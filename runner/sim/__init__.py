"""The built-in simulator of a video API, served on loopback: the gateway of docs/api.md, or
Google Veo's or Runway's API (``SimConfig.dialect``; one module per dialect).

It knows nothing of the runner. ``start_in_thread`` serves from a daemon thread (tests,
``run --simulate``); ``serve`` serves in the caller's event loop (``shotrunner sim``).
"""

from __future__ import annotations

from runner.sim.config import SimConfig
from runner.sim.recorder import RecordedRequest, Recorder
from runner.sim.server import RunningSim, Simulator, serve, start_in_thread

__all__ = [
    "RecordedRequest",
    "Recorder",
    "RunningSim",
    "SimConfig",
    "Simulator",
    "serve",
    "start_in_thread",
]
