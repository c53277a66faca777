"""The renders of a run: ``Work`` (one render and the jobs sharing its clip), grouping the
plan into it, what each needs now (its kind), and the plan's summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from runner.model import IN_FLIGHT_STATES
from runner.reconcile import PlannedJob, asks_task_first
from runner.store import SIMULATOR_BASE, JobRow, RenderRow
from runner.view import PlanSummary

if TYPE_CHECKING:
    from runner.model import Job


@dataclass(slots=True)
class Work:
    """One render and the jobs (same fingerprint and generation) that share its clip."""

    render: RenderRow
    jobs: list[PlannedJob]
    rows: dict[tuple[str, int], JobRow] = field(default_factory=dict)
    #: Attempts allowed in all for this render during this run.
    attempt_budget: int = 0
    deadline: float | None = None
    #: Taken back from a clip and sidecar on disk that the store did not know.
    adopted: bool = False
    #: For a render no job points at any more (``EarlierRender``): the (shot, take) it was
    #: last bound to; its clip goes into that shot's ``.history/``. ``jobs`` is empty.
    earlier: tuple[str, int] | None = None
    #: When progress alone was last written to the store (monotonic; 0: never).
    progress_saved_at: float = 0.0

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


Kind = Literal["submit", "resume", "fetch", "none"]


def group_work(planned: Sequence[PlannedJob]) -> list[Work]:
    """One ``Work`` per render, in storyboard order of its first job.

    The plan already carries the store's rows (read once by ``reconcile``).
    """
    works: dict[tuple[str, int], Work] = {}
    for item in planned:
        key = item.render_key
        work = works.get(key)
        if work is None:
            work = works[key] = Work(render=item.render or RenderRow(*key), jobs=[])
        work.jobs.append(item)
        if item.row is not None:
            work.rows[(item.job.shot.id, item.job.take)] = item.row
        sidecar = item.extra.get("adopt")
        if sidecar is not None and item.render is None and work.render.state == "pending":
            work.render, work.adopted = _adopted_render(key, sidecar), True
    return list(works.values())


def _adopted_render(key: tuple[str, int], sidecar: dict[str, Any]) -> RenderRow:
    """The render a sidecar describes: done, with its task, hash and size."""

    def text(name: str) -> str | None:
        value = sidecar.get(name)
        return value if isinstance(value, str) else None

    attempt = sidecar.get("attempt")
    return RenderRow(
        *key,
        state="done",
        attempt=attempt if isinstance(attempt, int) else 1,
        task_id=text("task_id"),
        progress=100.0,
        possible_duplicate=sidecar.get("possible_duplicate") is True,
        submitted_at=text("submitted_at"),
        completed_at=text("completed_at"),
        downloaded_at=text("downloaded_at"),
        sha256=text("sha256"),
        bytes=sidecar["bytes"],
        api_base=SIMULATOR_BASE if sidecar.get("simulated") is True else text("api_base"),
    )


def kind_of(work: Work, retry_failed: bool) -> Kind:
    """What a render needs now: a new task, a task looked after, a clip delivered, nothing."""
    state = work.render.state
    actions = {item.action for item in work.jobs}
    if state == "pending" or "submit" in actions:
        return "submit"
    if state in IN_FLIGHT_STATES:
        return "resume"
    if state == "failed":
        return "resume" if retry_failed else "none"
    return "fetch" if "fetch" in actions else "none"


def summarise(works: Sequence[Work], retry_failed: bool) -> PlanSummary:
    summary = PlanSummary()
    for work in works:
        if work.earlier is not None:
            summary.earlier += 1
            continue
        kind = kind_of(work, retry_failed)
        if kind == "resume" and asks_task_first(work.render):
            summary.to_resume += 1
        elif kind == "submit" or (kind == "resume" and work.render.state == "failed"):
            summary.to_submit += 1
            summary.seconds_to_submit += work.job.shot.seconds_to_pay
        elif kind == "resume":
            summary.to_resume += 1
        elif kind == "fetch":
            summary.to_fetch += 1
        elif work.render.state == "failed":
            summary.held += 1
        else:
            summary.done += 1
    return summary


def task_kind(work: Work) -> tuple[str, int | None, str | None]:
    """What makes tasks take about as long as each other, for the poll planner."""
    if not work.jobs:
        return ("", None, None)  # an earlier render: its shot is no longer known
    shot = work.job.shot
    return (shot.model, shot.seconds, shot.resolution)
