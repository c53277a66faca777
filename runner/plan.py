"""The plan: what ``run`` does now for each job and each render, decided in this one place.

``make_plan`` reads the store (all rows at once) and the clips' sizes and times, and writes
nothing. For each job it chooses the render (fingerprint, generation) the job points at and
one action (docs/running.md):

- ``submit``: no render yet, or a new generation (``--force``, a rejected take);
- ``resume``: a task in flight (submitting, queued, running, downloading): polled, never
  resubmitted; with ``--retry-failed`` also a failed render whose task is kept (timed out,
  its clip not downloaded): that task is asked first;
- ``skip``: done, and the clip in the job's folder is intact;
- ``fetch``: done, but the clip is missing, altered, or not yet copied into this job's folder
  (a renamed shot, a shared fingerprint, a clip adopted from its sidecar): fetched again from
  its task, rendered again only if the service lost it;
- ``retry`` / ``hold``: failed, with or without ``--retry-failed``.

Jobs with the same fingerprint share one render (``PlannedRender``), paid for once; an
edited shot has a new fingerprint, so only it is submitted again. Renders in flight that no
job points at any more (a shot edited or removed) are ``EarlierRender``s: followed to their
end and kept in ``.history/``, or, without a task id, reported as possibly billed.

``plan`` prints a ``Plan`` and ``run`` executes the same object. ``plan_batch`` plans a
manifest read-only (the state database is never created); ``check_shot_ids`` refuses
``--only``/``--force`` ids that name no shot. How a plan is shown is ``runner.view``'s.
Knows nothing of HTTP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.delivery import clip_intact, clip_relpath, read_sidecar
from runner.errors import InputError
from runner.model import ACTIONS, IN_FLIGHT_STATES, Action, Job, JobState
from runner.schema import closest

if TYPE_CHECKING:
    from runner.chain import Waiting
    from runner.model import Manifest
    from runner.pricing import PlanMoney
    from runner.store import JobKey, JobRow, RenderRow, Store

#: Actions that pay for a render.
PAYING_ACTIONS: tuple[Action, ...] = ("submit", "retry")
#: A render's action is the first of its jobs' actions in this order.
_RENDER_ACTION_ORDER: tuple[Action, ...] = ("submit", "retry", "resume", "fetch", "hold", "skip")


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
    """One job and what the plan does for it, with the store's rows behind that."""

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
    #: The store's rows behind this plan line (None when there are none yet).
    row: JobRow | None = None
    render: RenderRow | None = None
    #: Why a new generation is rendered ("forced", "rejected"), else None.
    new_generation: str | None = None
    #: The render a clip's sidecar on disk describes, unknown to the store (``state.db``
    #: lost or deleted): taken back (``fetch``) after its hash is checked, never paid again.
    adopted: RenderRow | None = None
    #: The request of a clip in its folder that the store does not know and that another
    #: fingerprint rendered (an earlier version of the shot), read with ``adopted``.
    folder_request: Mapping[str, Any] | None = None
    #: Why it is submitted, retried or fetched (``runner.reasons``), else None.
    reason: str | None = None

    @property
    def render_key(self) -> tuple[str, int]:
        return (self.job.fingerprint, self.generation)


@dataclass(slots=True)
class PlannedRender:
    """One render and the jobs (same fingerprint and generation) that share its clip."""

    key: tuple[str, int]
    jobs: list[PlannedJob]
    #: Its row in the store; None for a render new to it (pending, created by ``run``).
    render: RenderRow | None = None
    action: Action = "skip"
    #: Taken back from a clip and sidecar on disk that the store did not know.
    adopted: bool = False


@dataclass(frozen=True, slots=True)
class EarlierRender:
    """A render in flight that no job of the manifest points at any more (its shot was
    edited or removed, or has fewer takes now). Its task may be paid for, so its clip is
    still collected, into ``<shot>/.history/`` of the job it was last bound to; a create
    that never got its answer is only reported (possibly billed), never sent again."""

    render: RenderRow
    shot: str
    take: int

    @property
    def possibly_billed(self) -> bool:
        return self.render.task_id is None


def _by_action() -> dict[Action, int]:
    return dict.fromkeys(ACTIONS, 0)


@dataclass(slots=True)
class PlanSummary:
    """The plan in numbers, in the plan's own words: renders by action (one task each, so
    what is paid for), jobs by action, and the earlier renders."""

    renders: dict[Action, int] = field(default_factory=_by_action)
    jobs: dict[Action, int] = field(default_factory=_by_action)
    #: Seconds of video the renders to submit or retry cost.
    seconds_to_pay: int = 0
    #: Jobs whose render may have been created more than once.
    possible_duplicates: int = 0
    #: Earlier renders in flight that ``run`` collects into ``.history/``.
    earlier: int = 0
    #: Earlier creates whose answer never came: not sent again, maybe billed.
    possibly_billed: int = 0
    #: What the renders to submit cost, in words, with a price table (``runner.pricing``).
    cost: str | None = None
    #: Jobs that wait for other shots' clips (``runner.chain``); their seconds are counted.
    waiting: int = 0

    @property
    def tasks_to_submit(self) -> int:
        """Renders that would be paid for: submitted, or retried."""
        return sum(self.renders[action] for action in PAYING_ACTIONS)


@dataclass(slots=True)
class Plan:
    """What ``run`` does now: every job in scope, every render they share, the earlier
    renders to collect, and the numbers of it all."""

    jobs: list[PlannedJob]
    renders: list[PlannedRender]
    earlier: list[EarlierRender]
    summary: PlanSummary
    options: PlanOptions
    #: The plan in money (``runner.pricing.plan_money``), None without a price table.
    money: PlanMoney | None = None
    #: Jobs that cannot be fingerprinted yet: a clip they need is not delivered
    #: (``runner.sources.attach_chain`` fills these three in).
    waiting: list[Waiting] = field(default_factory=list)
    #: Which shots each chained shot needs.
    needs: dict[str, list[str]] = field(default_factory=dict)
    #: Per job key (``shot/take``): the shots it needs whose clip changed since its own.
    changed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def waiting_to_pay(self) -> list[Waiting]:
        """The waiting jobs this run may submit, and pay for: all but those held by a failed
        source, which are rendered only with ``--retry-failed``."""
        return [w for w in self.waiting if not w.held or self.options.retry_failed]

    @property
    def needs_network(self) -> bool:
        """Whether any render may have to talk to the API (submit, poll, fetch)."""
        return any(r.action not in ("skip", "hold") for r in self.renders) or any(
            not e.possibly_billed for e in self.earlier
        )


def make_plan(
    jobs: Sequence[Job],
    store: Store | None,
    options: PlanOptions | None = None,
    *,
    output_dir: Path | None = None,
) -> Plan:
    """The plan for ``jobs`` (the manifest's, in storyboard order) and ``options``.

    Without a store, ``output_dir`` (the batch folder) lets clips on disk whose sidecars name
    a job's fingerprint be planned ``fetch`` (adopted), as ``run`` would.
    """
    options = options or PlanOptions()
    in_scope = [job for job in jobs if job.shot.id in options.only] if options.only else jobs
    if store is None:
        planned = [PlannedJob(job=job, action="submit") for job in in_scope]
        if output_dir is not None:
            folders = _shot_folders(output_dir)
            for item in planned:
                _adopt_from_sidecar(item, output_dir, folders, options)
        earlier: list[EarlierRender] = []
    else:
        job_rows = store.jobs()
        planned = _plan_jobs(in_scope, store, job_rows, options)
        earlier = _earlier_renders(store, planned, jobs, job_rows)
    _explain(planned, store, output_dir or (store.path.parent if store else None))
    renders = _group(planned)
    return Plan(planned, renders, earlier, _summarise(planned, renders, earlier), options)


def _plan_jobs(
    jobs: Sequence[Job], store: Store, job_rows: Mapping[JobKey, JobRow], options: PlanOptions
) -> list[PlannedJob]:
    output_dir = store.path.parent
    folders = _shot_folders(output_dir)
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
            _adopt_from_sidecar(item, output_dir, folders, options)
        planned.append(item)
    return planned


def _explain(planned: Sequence[PlannedJob], store: Store | None, output_dir: Path | None) -> None:
    """Each job's reason to be submitted, retried or fetched (``runner.reasons``)."""
    from runner.reasons import explain

    explain(planned, store, output_dir)


def _group(planned: Sequence[PlannedJob]) -> list[PlannedRender]:
    """One ``PlannedRender`` per render, in storyboard order of its first job."""
    renders: dict[tuple[str, int], PlannedRender] = {}
    for item in planned:
        key = item.render_key
        group = renders.get(key)
        if group is None:
            group = renders[key] = PlannedRender(key=key, jobs=[], render=item.render)
        group.jobs.append(item)
        if item.adopted is not None and group.render is None:
            group.render, group.adopted = item.adopted, True
    for group in renders.values():
        actions = {item.action for item in group.jobs}
        group.action = next(a for a in _RENDER_ACTION_ORDER if a in actions)
    return list(renders.values())


def _summarise(
    planned: Sequence[PlannedJob],
    renders: Sequence[PlannedRender],
    earlier: Sequence[EarlierRender],
) -> PlanSummary:
    summary = PlanSummary()
    for item in planned:
        summary.jobs[item.action] += 1
        summary.possible_duplicates += item.possible_duplicate
    for group in renders:
        summary.renders[group.action] += 1
        if group.action in PAYING_ACTIONS:
            summary.seconds_to_pay += group.jobs[0].job.shot.seconds_to_pay
    summary.possibly_billed = sum(1 for e in earlier if e.possibly_billed)
    summary.earlier = len(earlier) - summary.possibly_billed
    return summary


def _earlier_renders(
    store: Store,
    planned: Sequence[PlannedJob],
    manifest_jobs: Iterable[Job],
    job_rows: Mapping[JobKey, JobRow],
) -> list[EarlierRender]:
    """The renders in flight that neither a planned job nor a job of the manifest left out
    of this run (``--only``) points at, with the job each was last bound to."""
    kept = {item.render_key for item in planned}
    unplanned = [render for render in store.renders_in_flight() if render.key not in kept]
    if not unplanned:
        return []
    in_scope = {(item.job.shot.id, item.job.take) for item in planned}
    for job in manifest_jobs:
        key = (job.shot.id, job.take)
        row = job_rows.get(key)
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


def _shot_folders(output_dir: Path) -> frozenset[str]:
    """The names in the batch folder, case-folded: a shot without a folder has no clip, so
    its sidecar is not looked for (opening one per job was most of a new batch's plan)."""
    try:
        return frozenset(_folded(name) for name in os.listdir(output_dir))
    except OSError:
        return frozenset()


def _folded(name: str) -> str:
    """A name as a case-blind, normalising disk (macOS) compares it."""
    return unicodedata.normalize("NFC", name).casefold()


def _adopt_from_sidecar(
    item: PlannedJob, output_dir: Path, folders: frozenset[str], options: PlanOptions
) -> None:
    """A clip on disk whose sidecar names this job's fingerprint, unknown to the store (its
    ``state.db`` was lost or deleted): plan to take it back (``fetch``), not to pay again.

    The run checks the file against the sidecar's hash before it takes it; a mismatch is
    fetched from the sidecar's task. A simulated clip is never adopted by a real run (nor a
    real one by a simulated run): it would pass for a paid one. ``folders`` are
    ``_shot_folders(output_dir)`` (case-folded, as a case-blind disk finds them).
    """
    if _folded(item.job.shot.id) not in folders:
        return
    final = output_dir / clip_relpath(item.job.shot.id, item.job.take)
    sidecar = read_sidecar(final)
    if sidecar is None:
        return
    if sidecar.get("fingerprint") != item.job.fingerprint:
        request = sidecar.get("request")
        item.folder_request = request if isinstance(request, dict) else None
        return
    if options.simulated is not None and (sidecar.get("simulated") is True) != options.simulated:
        return
    generation, sha256, size = (sidecar.get(k) for k in ("generation", "sha256", "bytes"))
    if not (isinstance(generation, int) and isinstance(sha256, str) and isinstance(size, int)):
        return
    item.generation = generation
    item.action = "fetch"
    item.adopted = _adopted_render(item.render_key, sidecar, size)


def _adopted_render(key: tuple[str, int], sidecar: Mapping[str, Any], size: int) -> RenderRow:
    """The render a sidecar describes: done, with its task, hash and size."""
    from runner.store import SIMULATOR_BASE, RenderRow

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
        bytes=size,
        api_base=SIMULATOR_BASE if sidecar.get("simulated") is True else text("api_base"),
        provider=None if text("provider") == "gateway" else text("provider"),
    )


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
        if options.retry_failed and render.asks_task_first:
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


# -- a manifest's plan, read-only ----------------------------------------------------------------


def plan_batch(manifest: Manifest, options: PlanOptions | None = None) -> Plan:
    """What ``run`` with ``options`` would do now, read-only.

    Raises ``InputError`` when ``options`` name a shot the manifest lacks, and when the
    batch's state database cannot be read.
    """
    from runner.manifest import without_cycle_collector
    from runner.sources import attach_chain, bind_batch

    options = check_shot_ids(manifest, options or PlanOptions())
    with _batch_store(manifest) as store, without_cycle_collector():
        # Chained shots: what they need comes first (--only included), and those whose
        # clips are not delivered yet wait.
        bound, options = bind_batch(manifest, store, options)
        plan = make_plan(bound.jobs, store, options, output_dir=manifest.output_dir)
        return attach_chain(plan, bound, manifest.output_dir)


@contextlib.contextmanager
def _batch_store(manifest: Manifest) -> Iterator[Store | None]:
    """The batch's state database opened read-only, or None when it has none yet."""
    # sqlite-utils is imported only for a batch that has a database, so that planning a
    # new batch stays fast.
    if not (manifest.output_dir / "state.db").is_file():
        yield None
        return
    from runner.store import Store

    store = Store.open_existing(manifest.output_dir)
    if store is None:
        yield None
        return
    with store:
        yield store


def check_shot_ids(manifest: Manifest, options: PlanOptions) -> PlanOptions:
    """``options`` with its ``--only``/``--force`` ids spelt as the manifest spells them.

    Ids are unique ignoring case (docs/running.md), so ``--only A`` names shot ``a``; the plan then
    compares exact ids. Raises ``InputError`` naming each id that is no shot, with a hint:
    the one id it begins, else the closest one.
    """
    if not options.only and not options.force:
        return options
    by_folded = {shot.id.casefold(): shot.id for shot in manifest.shots}
    problems = []
    spelt: dict[str, frozenset[str]] = {}
    for option, ids in (("--only", options.only), ("--force", options.force)):
        unknown = sorted(i for i in ids if i.casefold() not in by_folded)
        if unknown:
            named = ", ".join(f"{i!r}{_id_hint(i, by_folded)}" for i in unknown)
            problems.append(f"{option}: no shot with id {named}")
        spelt[option] = frozenset(by_folded[i.casefold()] for i in ids if i not in unknown)
    if problems:
        raise InputError(f"{'; '.join(problems)} in {manifest.display_path}")
    return dataclasses.replace(options, only=spelt["--only"], force=spelt["--force"])


def _id_hint(shot_id: str, by_folded: dict[str, str]) -> str:
    folded = shot_id.casefold()
    prefixed = [k for k in by_folded if k.startswith(folded)]
    close = prefixed[0] if len(prefixed) == 1 else closest(folded, list(by_folded))
    return f" (did you mean {by_folded[close]!r}?)" if close is not None else ""
