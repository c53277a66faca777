"""What a run is told: the knobs the engine uses and where its clips come from."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from runner.store import SIMULATOR_BASE

if TYPE_CHECKING:
    from runner.model import Manifest


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The knobs of ``run`` that the engine itself uses."""

    concurrency: int = 4
    poll_interval: float = 15.0
    task_timeout: float = 7200.0
    max_attempts: int = 3
    verify: bool = False
    max_new: int | None = None
    #: ``--max-cost``: a dearer plan is refused before the run (``batch``), and no new create
    #: is sent once the money committed this run would pass it.
    max_cost: Decimal | None = None
    download_concurrency: int = 4
    #: Seconds without any answer from the API (only connection failures) before the run
    #: stops, jobs left pending: an outage fails no job.
    unreachable_after: float = 600.0
    #: Seconds without any answer from the API before the run stops when nothing of this run
    #: has reached it yet (a wrong base, a refused port, a name that does not resolve).
    unreachable_at_start: float = 20.0


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a sidecar records about where a clip came from."""

    manifest: Manifest
    api_base: str
    simulated: bool

    @property
    def render_base(self) -> str:
        """The base recorded on each render submitted: the simulator's port changes per run."""
        return SIMULATOR_BASE if self.simulated else self.api_base
