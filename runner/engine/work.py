"""``Work``: one render as this run carries it, with the jobs sharing its clip and what the
run has learnt of it so far (its last task, its deadline, its slot)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.api.task import Task
    from runner.model import Action, Job
    from runner.plan import EarlierRender, PlannedJob, PlannedRender
    from runner.store import JobRow, RenderRow


@dataclass(slots=True)
class Work:
    """One render and the jobs (same fingerprint and generation) that share its clip."""

    render: RenderRow
    jobs: list[PlannedJob]
    #: What the plan does with it (``submit``, ``retry``, ``resume``, ``fetch``, ...).
    action: Action
    rows: dict[tuple[str, int], JobRow] = field(default_factory=dict)
    #: Taken back from a clip and sidecar on disk that the store did not know.
    adopted: bool = False
    #: For a render no job points at any more (``EarlierRender``): the (shot, take) it was
    #: last bound to; its clip goes into that shot's ``.history/``. ``jobs`` is empty.
    earlier: tuple[str, int] | None = None
    #: Attempts allowed in all for this render during this run.
    attempt_budget: int = 0
    deadline: float | None = None
    #: The task as last answered (a create's answer, a poll), for the next step.
    task: Task | None = None
    #: A whole clip downloaded for it in this run, to deliver.
    source: Path | None = None
    #: Whether it holds one of the run's slots for tasks in flight.
    holds_slot: bool = False
    #: When progress alone was last written to the store (monotonic; 0: never).
    progress_saved_at: float = 0.0

    @classmethod
    def of_render(cls, planned: PlannedRender) -> Work:
        rows = {
            (item.job.shot.id, item.job.take): item.row
            for item in planned.jobs
            if item.row is not None
        }
        from runner.store import RenderRow

        return cls(
            # A render new to the store: the pending row ``Run`` binds its jobs to.
            render=planned.render or RenderRow(*planned.key),
            jobs=planned.jobs,
            action=planned.action,
            rows=rows,
            adopted=planned.adopted,
        )

    @classmethod
    def of_earlier(cls, earlier: EarlierRender) -> Work:
        return cls(
            render=earlier.render, jobs=[], action="resume", earlier=(earlier.shot, earlier.take)
        )

    @property
    def label(self) -> str:
        if self.earlier is not None:
            return f"{self.earlier[0]}/{self.earlier[1]} (earlier render)"
        first = self.jobs[0].job.key
        return first if len(self.jobs) == 1 else f"{first} (+{len(self.jobs) - 1})"

    @property
    def job_key(self) -> tuple[str, int]:
        """The (shot, take) its events are recorded under."""
        if self.earlier is not None:
            return self.earlier
        return (self.job.shot.id, self.job.take)

    @property
    def job(self) -> Job:
        return self.jobs[0].job

    @property
    def task_kind(self) -> tuple[str, int | None, str | None]:
        """What makes tasks take about as long as each other, for the poll planner."""
        if not self.jobs:
            return ("", None, None)  # an earlier render: its shot is no longer known
        shot = self.job.shot
        return (shot.model, shot.seconds, shot.resolution)
