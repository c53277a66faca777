"""Reconcile the manifest's jobs with the state store: what ``run`` would do for each.

The plan is pure: it reads the store (all rows at once) and the clips' sizes and times,
and writes nothing. For each job it chooses the render (fingerprint, generation) the job
points at and one action (SPEC.md):

- ``submit``: no render yet, or a new generation (``--force``, a rejected take);
- ``resume``: a task in flight (submitting, queued, running, downloading): polled, never
  resubmitted;
- ``skip``: done, and the clip in the job's folder is intact;
- ``fetch``: done, but the clip is missing, altered, or not yet copied into this job's
  folder (a renamed shot, a shared fingerprint): fetched again from its task, rendered
  again only if the service lost it;
- ``retry`` / ``hold``: failed, with or without ``--retry-failed``.

Jobs with the same fingerprint share one render; an edited shot has a new fingerprint,
so only it is submitted again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.delivery import clip_intact, clip_relpath, read_sidecar
from runner.model import IN_FLIGHT_STATES, KEPT_TASK_CODES, Action, Job, JobState

if TYPE_CHECKING:
    from runner.store import JobRow, RenderRow, Store


@dataclass(frozen=True, slots=True)
class PlanOptions:
    only: frozenset[str] = frozenset()
    force: frozenset[str] = frozenset()
    retry_failed: bool = False
    verify: bool = False
    rerender_rejected: bool = False
    #: The kind of the run planned (``--simulate`` or real), None when unknown (``plan``):
    #: a clip is adopted from its sidecar only when the sidecar is of the same kind.
    simulated: bool | None = None


@dataclass(slots=True)
class PlannedJob:
    job: Job
    action: Action
    state: JobState = "pending"
    generation: int = 1
    attempts: int = 0
    task_id: str | None = None
    progress: float | None = None
    file: str | None = None
    error: str | None = None
    possible_duplicate: bool = False
    #: Creates sent for its render that may have created a task (shown with a duplicate).
    creates_sent: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: The store's rows behind this plan line (None when there are none yet).
    row: JobRow | None = None
    render: RenderRow | None = None
    #: Why a new generation is rendered ("forced", "rejected"), else None.
    new_generation: str | None = None

    @property
    def render_key(self) -> tuple[str, int]:
        return (self.job.fingerprint, self.generation)


def reconcile(
    jobs: Sequence[Job],
    store: Store | None = None,
    options: PlanOptions | None = None,
    *,
    output_dir: Path | None = None,
) -> list[PlannedJob]:
    """The plan: one ``PlannedJob`` per job in scope (``--only``), in the jobs' order.

    Without a store, ``output_dir`` (the batch folder) lets clips on disk whose sidecars name
    a job's fingerprint be planned ``fetch`` (adopted), as ``run`` would.
    """
    options = options or PlanOptions()
    if options.only:
        jobs = [job for job in jobs if job.shot.id in options.only]
    if store is None:
        fresh = [PlannedJob(job=job, action="submit") for job in jobs]
        if output_dir is not None:
            for item in fresh:
                _adopt_from_sidecar(item, output_dir, options)
        return fresh

    output_dir = store.path.parent
    job_rows = store.jobs()
    renders = store.renders()
    verdicts = store.verdicts() if options.rerender_rejected else {}
    highest: dict[str, int] = {}
    for fingerprint, generation in renders:
        highest[fingerprint] = max(generation, highest.get(fingerprint, 0))
    # A job whose fingerprint is new to it joins the render other jobs already use.
    pointed: dict[str, int] = {}
    for existing in job_rows.values():
        pointed[existing.fingerprint] = max(
            existing.generation, pointed.get(existing.fingerprint, 0)
        )
    raised: dict[str, int] = {}

    planned: list[PlannedJob] = []
    for job in jobs:
        row = job_rows.get((job.shot.id, job.take))
        if row is not None and row.fingerprint == job.fingerprint:
            generation = row.generation
        else:
            generation = pointed.get(job.fingerprint) or highest.get(job.fingerprint) or 1
        render = renders.get((job.fingerprint, generation))

        reason = _new_generation_reason(job, render, options, verdicts)
        if reason is not None:
            if job.fingerprint not in raised:
                raised[job.fingerprint] = highest.get(job.fingerprint, generation) + 1
            generation, render = raised[job.fingerprint], None

        item = PlannedJob(
            job=job,
            action="submit",
            generation=generation,
            row=row,
            render=render,
            new_generation=reason,
        )
        if render is not None:
            _apply_render(item, render, row, output_dir, options)
        elif row is None and reason is None:
            _adopt_from_sidecar(item, output_dir, options)
        planned.append(item)
    return planned


@dataclass(frozen=True, slots=True)
class EarlierRender:
    """A render in flight that no job of the manifest points at any more (its shot was
    edited or removed, or has fewer takes now). Its task may be paid for, so its clip is
    still collected, into ``<shot>/.history/`` of the job it was last bound to."""

    render: RenderRow
    shot: str
    take: int


def asks_task_first(render: RenderRow) -> bool:
    """A failed render whose task is kept (timed out, or its clip not downloaded): retried,
    its task is asked first, and only a lost or failed task is submitted again."""
    return (
        render.state == "failed"
        and render.task_id is not None
        and render.error_code in KEPT_TASK_CODES
    )


def earlier_renders(
    store: Store, planned: Sequence[PlannedJob], manifest_jobs: Iterable[tuple[str, int]]
) -> list[EarlierRender]:
    """The renders in flight that neither a planned job nor a job of the manifest left out
    of this run (``--only``) points at, with the job each was last bound to."""
    kept = {item.render_key for item in planned}
    unplanned = [render for render in store.renders_in_flight() if render.key not in kept]
    if not unplanned:
        return []
    in_scope = {(item.job.shot.id, item.job.take) for item in planned}
    rows = store.jobs()
    for key in manifest_jobs:
        row = rows.get(key)
        if key not in in_scope and row is not None:
            kept.add(row.render_key)
    earlier = []
    for render in unplanned:
        if render.key in kept:
            continue
        bound = store.last_bound_job(render.key)
        if bound is not None:
            earlier.append(EarlierRender(render, *bound))
    return earlier


def _adopt_from_sidecar(item: PlannedJob, output_dir: Path, options: PlanOptions) -> None:
    """A clip on disk whose sidecar names this job's fingerprint, unknown to the store (its
    ``state.db`` was lost or deleted): plan to take it back (``fetch``), not to pay again.

    The engine checks the file against the sidecar's hash before it takes it; a mismatch is
    fetched from the sidecar's task. A simulated clip is never adopted by a real run (nor a
    real one by a simulated run): it would pass for a paid one.
    """
    final = output_dir / clip_relpath(item.job.shot.id, item.job.take)
    sidecar = read_sidecar(final)
    if sidecar is None or sidecar.get("fingerprint") != item.job.fingerprint:
        return
    if options.simulated is not None and (sidecar.get("simulated") is True) != options.simulated:
        return
    generation, sha256, size = (sidecar.get(k) for k in ("generation", "sha256", "bytes"))
    if not (isinstance(generation, int) and isinstance(sha256, str) and isinstance(size, int)):
        return
    item.generation = generation
    item.action = "fetch"
    item.extra["adopt"] = sidecar


def _new_generation_reason(
    job: Job,
    render: RenderRow | None,
    options: PlanOptions,
    verdicts: Mapping[tuple[str, int], str],
) -> str | None:
    """Why this job renders a new generation now, or None.

    A render in flight is resumed, never raised: running the same ``--force`` command again
    after an interruption must not pay twice.
    """
    if render is None or render.state not in ("done", "failed"):
        return None
    if job.shot.id in options.force:
        return "forced"
    if render.state == "done" and verdicts.get((job.shot.id, job.take)) == "rejected":
        return "rejected"
    return None


def _apply_render(
    item: PlannedJob,
    render: RenderRow,
    row: JobRow | None,
    output_dir: Path,
    options: PlanOptions,
) -> None:
    item.state = render.state
    item.attempts = render.attempt
    item.task_id = render.task_id
    # A failed render's last progress (99 %, say) would read as still rendering.
    item.progress = None if render.state == "failed" else render.progress
    item.error = render.error
    item.possible_duplicate = render.possible_duplicate
    item.creates_sent = render.creates_sent
    if render.state == "pending":
        item.action = "submit"
    elif render.state in IN_FLIGHT_STATES:
        item.action = "resume"
    elif render.state == "failed":
        item.action = "retry" if options.retry_failed else "hold"
        if options.retry_failed and asks_task_first(render):
            # Its task is asked first (a clip that finished late is collected): not paid for.
            item.action = "resume"
    else:
        delivered = (
            row is not None and row.render_key == item.render_key and row.delivered and row.file
        )
        if delivered and row is not None and clip_intact(output_dir, row, verify=options.verify):
            item.action = "skip"
            item.file = row.file
        else:
            item.action = "fetch"
