"""The run engine: joins the store and the API client to submit once, poll, and deliver.

One coroutine drives each render (fingerprint, generation) from where the store says it is:

    pending ──submit──► submitting ──answer──► queued/running ──completed──► downloading ──► done
                           │ lost answer: same key again, possible duplicate      │
                           ▼                                                      ▼
                        failed ◄── rejected, refused, out of attempts, timed out  (clip copied
                                                                                 into each job)

Money rules (SPEC.md): the store records ``submitting`` (with the attempt) before a create is
sent and the task id the moment the answer arrives; every create carries
``Idempotency-Key: <fingerprint>-g<generation>-a<attempt>``; a lost answer, or a
``submitting`` row found at start, is retried with the same key and flagged as a possible
duplicate (a 429 keeps such a render ``submitting``, so a crash never turns it into a new
key), at most ``MAX_AMBIGUOUS_SENDS`` times in all; a create that created nothing (never
sent, 429) waits as ``pending``. An unreachable API fails no job: after
``unreachable_after`` seconds without an answer the run stops. A render in flight that no
job points at any more (an edited or removed shot) is still followed, never resubmitted,
and its clip kept in ``.history/``. A paid clip is never deleted: a replaced clip moves to
``.history/``, and comes back from there by its hash when an edit is undone. A task this
run cannot poll, or whose clip it cannot download, is not failed: it keeps its state and
task id, the run counts it as failed (exit 1), and the next run asks the same task again
(``_keep_owed``).

Bounds: renders that need a slot wait in one list (the dispatcher), clips to fetch wait for a
few workers, request bodies exist only while their create is on the wire; every retry loop
is counted or backs off.

Signals: the first SIGINT/SIGTERM stops new submissions, lets a create already on the wire
record its answer (briefly), cancels polls and downloads (their state is already saved) and
ends with ``Interrupted``; a second one exits at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from runner import __version__
from runner.api.errors import (
    ApiError,
    AuthError,
    LinkExpired,
    NotFound,
    RateLimited,
    Rejected,
    TransientError,
)
from runner.concurrency import AdaptiveLimit
from runner.delivery import (
    HISTORY,
    clip_intact,
    clip_relpath,
    copy_to_part,
    history_candidates,
    matches,
    move_to_history,
    part_of,
    place,
    read_sidecar,
    sidecar_of,
    write_sidecar,
)
from runner.errors import ConfigError, InputError, Interrupted, ShotrunnerError, Unreachable
from runner.polling import PollPlanner
from runner.reconcile import PlannedJob, earlier_renders
from runner.retry import RetryPolicy
from runner.store import SIMULATOR_BASE, JobRow, RenderRow, Store, now_iso, parse_iso
from runner.view import PlanSummary, RunResult, View

if TYPE_CHECKING:
    from runner.api.client import ApiClient
    from runner.api.task import Task
    from runner.model import Job, JobState, Manifest

#: How long a create already on the wire may take to record its answer after a signal.
CREATE_GRACE = 1.5
#: Creates sent in all under one key whose answers were lost: a gateway that ignores the key
#: may bill each one, so after these the render fails (flagged) instead of sending again.
MAX_AMBIGUOUS_SENDS = 3
#: Status words of a task that has not started rendering (shown as ``queued``).
_NOT_STARTED = frozenset({"queued", "pending", "submitted", "not_start", ""})
#: Consecutive failed polls or downloads of one task before this run gives up on it.
MAX_TASK_ERRORS = 12
#: 404s in a row for a task before it counts as forgotten by the service (and resubmitted).
NOT_FOUND_CONFIRMATIONS = 2
#: Error codes of a render this run gave up on while its task stays owed (``_keep_owed``).
OWED_CODES = frozenset({"poll", "download"})


def _task_kind(work: Work) -> tuple[str, int | None, str | None]:
    """What makes tasks take about as long as each other, for the poll planner."""
    if not work.jobs:
        return ("", None, None)  # an earlier render: its shot is no longer known
    shot = work.job.shot
    return (shot.model, shot.seconds, shot.resolution)


def _exit_now(*_: object) -> None:
    """The second Ctrl-C: leave at once. Every state change is already committed, and the
    kernel drops the batch lock; the next run resumes from the store."""
    os._exit(130)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The knobs of ``run`` that the engine itself uses."""

    concurrency: int = 4
    poll_interval: float = 15.0
    task_timeout: float = 7200.0
    max_attempts: int = 3
    retry_failed: bool = False
    verify: bool = False
    max_new: int | None = None
    download_concurrency: int = 4
    #: Seconds without any answer from the API (only connection failures) before the run
    #: stops, jobs left pending: an outage fails no job.
    unreachable_after: float = 600.0


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
    if state in ("submitting", "queued", "running", "downloading"):
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
        if kind == "submit" or (kind == "resume" and work.render.state == "failed"):
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


class Engine:
    """One run over a planned batch. ``await engine.run()`` returns a ``RunResult``."""

    def __init__(
        self,
        *,
        store: Store,
        client: ApiClient | None,
        planned: Sequence[PlannedJob],
        options: RunOptions,
        context: RunContext,
        view: View | None = None,
        run_id: str | None = None,
        request_body: Callable[[Any], dict[str, Any]],
        provenance_request: Callable[[Any], dict[str, Any]],
    ) -> None:
        self.store = store
        #: Opened by the caller only when ``needs_network``; set before ``run``.
        self._client = client
        self.options = options
        self.context = context
        self.view = view or View()
        self.run_id = run_id
        self.output_dir = store.path.parent
        self._request_body = request_body
        self._provenance_request = provenance_request
        self.result = RunResult()
        self.works = group_work(planned)
        self._add_earlier(planned)
        self.plan = summarise(self.works, options.retry_failed)
        self.plan.possibly_billed = len(self.result.possibly_billed)
        self.limit = AdaptiveLimit(options.concurrency)
        self._downloads = asyncio.Semaphore(max(1, options.download_concurrency))
        self._create_backoff = RetryPolicy(base=0.5, cap=30.0)
        self._connect_backoff = RetryPolicy(base=0.5, cap=60.0)
        #: When the API last answered anything (monotonic), for the outage limit.
        self._last_answer = time.monotonic()
        self._task_backoff = RetryPolicy(base=1.0, cap=60.0)
        self._polls = PollPlanner(options.poll_interval)
        self._stopping = asyncio.Event()
        self._all_done = asyncio.Event()
        self._fatal: BaseException | None = None
        self._creating: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._signals = 0
        self._installed_signals: list[int] = []
        self._previous_handlers: dict[int, Any] = {}
        self._rate_limited_in_a_row = 0

    def _add_earlier(self, planned: Sequence[PlannedJob]) -> None:
        """Follow the renders in flight that no job points at any more (an edited or removed
        shot, fewer takes): their tasks may be paid for. A create that never got its answer
        is not sent again (it would pay for a shot the user removed): it is only reported."""
        manifest = self.context.manifest
        jobs = [(shot.id, take) for shot in manifest.shots for take in range(1, shot.takes + 1)]
        for item in earlier_renders(self.store, planned, jobs):
            work = Work(render=item.render, jobs=[], earlier=(item.shot, item.take))
            if item.render.task_id is None:
                self.result.possibly_billed.append(work.label)
            else:
                self.works.append(work)

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            raise RuntimeError("the engine needs an API client for this run")
        return self._client

    @client.setter
    def client(self, client: ApiClient) -> None:
        self._client = client

    @property
    def needs_network(self) -> bool:
        """Whether any render may have to talk to the API (submit, poll, fetch)."""
        return any(kind_of(work, self.options.retry_failed) != "none" for work in self.works)

    # -- the run -------------------------------------------------------------------------------

    def check_money_guard(self) -> None:
        """Refuse to start (nothing sent) when more than ``--max-new`` tasks would be submitted."""
        limit = self.options.max_new
        if limit is not None and self.plan.to_submit > limit:
            raise InputError(
                f"{self.plan.to_submit} task(s) would be submitted, more than --max-new {limit}; "
                "nothing was sent"
            )

    async def run(self) -> RunResult:
        started = self._last_answer = time.monotonic()
        self.check_money_guard()
        self._bind_jobs()
        # The live view counts the renders this run works on, not the done ones it skips.
        working = self.plan.to_submit + self.plan.to_resume + self.plan.to_fetch
        self.view.start(self.plan, working + self.plan.earlier)
        loop = asyncio.get_running_loop()
        self._installed_signals = self._install_signals(loop)
        try:
            await self._run_all()
        finally:
            self._restore_signals(loop)
            self.result.wall_time = time.monotonic() - started
            self.result.creates = self.limit.accepted
            self.result.rate_limited = self.limit.rate_limited
            self._tally()
        if self._fatal is not None:
            raise self._fatal
        return self.result

    def _bind_jobs(self) -> None:
        """Point each job at its render in the store (one transaction for all new bindings)."""
        bindings = [
            (item.job.shot.id, item.job.take, *work.render.key)
            for work in self.works
            for item in work.jobs
            if (row := work.rows.get((item.job.shot.id, item.job.take))) is None
            or row.render_key != work.render.key
        ]
        if bindings:
            rows = self.store.bind_jobs(self.run_id, bindings)
            renders = self.store.renders()
            for work in self.works:
                if work.adopted:
                    self._save(work, "adopted: its clip and sidecar were on disk, unknown here")
                else:
                    work.render = renders.get(work.render.key, work.render)
                for item in work.jobs:
                    key = (item.job.shot.id, item.job.take)
                    work.rows[key] = rows.get(key, work.rows.get(key))  # type: ignore[assignment]
        for work in self.works:
            render = work.render
            if render.state == "failed":
                work.attempt_budget = render.attempt + self.options.max_attempts
            else:
                work.attempt_budget = max(render.attempt, self.options.max_attempts)

    async def _run_all(self) -> None:
        # Bounded fan-out, so 10,000 jobs are not 10,000 coroutines: renders that need a
        # slot (new ones, failed ones retried) wait in the dispatcher's list; clips to fetch
        # wait for one of a few workers. Only renders already in flight start at once.
        needs_slot: list[Work] = []
        fetches: list[Work] = []
        for work in self.works:
            kind = kind_of(work, self.options.retry_failed)
            if kind == "submit" or (kind == "resume" and work.render.state == "failed"):
                needs_slot.append(work)
            elif kind == "resume":
                if work.render.state in ("submitting", "queued", "running"):
                    self.limit.take()
                self._spawn(self._resume(work))
            elif kind == "fetch":
                fetches.append(work)
        self._spawn(self._dispatch(needs_slot))
        queue = iter(fetches)
        for _ in range(min(len(fetches), max(1, self.options.download_concurrency))):
            self._spawn(self._fetch_each(queue))
        finished = asyncio.ensure_future(self._all_done.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([finished, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished.cancel()
            stopping.cancel()
        if self._stopping.is_set():
            await self._shut_down()
            if self._fatal is None:
                self.result.interrupted = True
                self._fatal = Interrupted(
                    "interrupted: tasks already submitted keep rendering; "
                    "run the same command again to collect them"
                )

    async def _dispatch(self, works: list[Work]) -> None:
        """Start each render that needs a slot once one is free, in storyboard order."""
        for work in works:
            await self.limit.acquire()
            if self._stopping.is_set():
                await self.limit.release()
                return
            if work.render.state == "failed":
                self._spawn(self._retry_failed(work))
            else:
                self._spawn(self._submit_and_follow(work, new_attempt=True))

    async def _fetch_each(self, works: Iterator[Work]) -> None:
        """One fetch worker: deliver done renders' clips, one after the other."""
        for work in works:
            await self._fetch(work)

    async def _shut_down(self) -> None:
        for task in list(self._tasks - self._creating):
            task.cancel()
        if self._creating:
            await asyncio.wait(list(self._creating), timeout=CREATE_GRACE)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=0.5)

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(self._guard(coroutine))
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._all_done.set()

    async def _guard(self, coroutine: Any) -> None:
        """Run one render's coroutine; a stop-everything error ends the whole run."""
        try:
            await coroutine
        except asyncio.CancelledError:
            raise
        except AuthError as error:
            self._stop_with(
                ConfigError(
                    f"{error.message}; check SHOTRUNNER_API_KEY "
                    "(and SHOTRUNNER_API_BASE / --api-base)"
                )
            )
        except OSError as error:
            # A full disk or a folder without permission: a message, not a traceback.
            self._stop_with(ShotrunnerError(f"cannot write the batch: {error}"))
        except BaseException as error:
            self._stop_with(error)

    def _stop_with(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
        self._stopping.set()

    # -- signals -------------------------------------------------------------------------------

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        installed: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            try:
                loop.add_signal_handler(signum, self._on_signal)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._previous_handlers[signum] = previous
            installed.append(signum)
        return installed

    def _restore_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give the caller its own handlers back (asyncio would leave the defaults)."""
        for signum, previous in self._previous_handlers.items():
            loop.remove_signal_handler(signum)
            if previous is not None:
                signal.signal(signum, previous)

    def _on_signal(self) -> None:
        self._signals += 1
        if self._signals > 1:
            _exit_now()
        # The loop runs this handler only between callbacks; a plain handler runs the
        # second signal at once even while the loop is busy (hashing a clip, say).
        for signum in self._installed_signals:
            signal.signal(signum, _exit_now)
        self.view.state("run", "stopping", "no new submissions; saving state")
        self._stopping.set()

    # -- one render ----------------------------------------------------------------------------

    async def _resume(self, work: Work) -> None:
        """A render found in flight at the start."""
        render = work.render
        holds_slot = render.state in ("submitting", "queued", "running")
        if render.state == "submitting":
            await self._submit_and_follow(work, new_attempt=False, holds_slot=True)
            return
        if render.state == "downloading":
            await self._collect(work, None)
            return
        await self._follow(work, holds_slot=holds_slot)

    async def _retry_failed(self, work: Work) -> None:
        """A failed render, with --retry-failed (a slot is held)."""
        render = work.render
        if render.task_id is not None and render.error_code in ("timeout", "download"):
            # Ask the old task first: a clip that finished late is collected, not paid twice.
            await self._follow(work, holds_slot=True)
            return
        # A create that never got an answer is retried under the same key, asked on purpose:
        # one more round of sends.
        new_attempt = not (render.task_id is None and render.error_code == "unanswered")
        if not new_attempt:
            render.key_sends = 0
        await self._submit_and_follow(work, new_attempt=new_attempt, holds_slot=True)

    async def _submit_and_follow(
        self, work: Work, *, new_attempt: bool, holds_slot: bool = True
    ) -> None:
        task = await self._submit(work, new_attempt=new_attempt)
        if task is None:
            await self.limit.release()
            return
        await self._follow(work, holds_slot=holds_slot, task=task)

    async def _submit(self, work: Work, *, new_attempt: bool) -> Task | None:
        """Create the task of the next attempt (or the same one again); None if it failed."""
        render = work.render
        #: Whether a create under this key may have reached the service without an answer.
        ambiguous = False
        last_error = "a run stopped before its answer came"
        if new_attempt or render.attempt == 0:
            render.attempt += 1
            render.key_sends = 0
        else:
            # A create whose answer never arrived (found at start): it may exist and be billed.
            render.possible_duplicate = ambiguous = True
        render.task_id = None
        render.progress = None
        render.error = render.error_code = None
        failures = 0
        #: Put back to ``pending`` after a create that cannot have created anything, so that
        #: a stop or a crash while waiting leaves no ``submitting`` row (a false duplicate).
        withdrawn = False
        current = asyncio.current_task()
        assert current is not None
        while True:
            if self._stopping.is_set():
                return None
            if ambiguous and render.key_sends >= MAX_AMBIGUOUS_SENDS:
                self._fail(
                    work,
                    f"no task id came back for {render.key_sends} creates sent under one key "
                    f"({last_error}); possible duplicate: {render.creates_sent} creates sent, "
                    "each may have been billed; not sent again (--retry-failed sends the same "
                    "key once more)",
                    "unanswered",
                )
                return None
            try:
                # Built just before the call and dropped after it: with data URIs a body can
                # weigh megabytes, and only the creates on the wire should hold one. Built
                # before "submitting" is recorded, so reading images stays out of the window.
                body = self._body(work)
            except InputError as error:
                self._fail(work, error.message, "input")
                return None
            if withdrawn:
                render.attempt += 1
                withdrawn = False
            render.state = "submitting"
            render.submitted_at = now_iso()
            render.api_base = self.context.render_base
            render.creates_sent += 1
            render.key_sends += 1
            self._save(work, f"attempt {render.attempt}")
            self._creating.add(current)
            try:
                task = await self.client.create(body, render.idempotency_key)
            except RateLimited as error:
                self._heard()
                self._unsent(render)
                # Refused, not created: nothing under this key to look for after a crash.
                withdrawn = self._withdraw(render, ambiguous)
                self._save(work, "rate limited (429): waiting", event=False)
                await self._on_rate_limited(error)
                continue
            except TransientError as error:
                failures += 1
                last_error = error.message
                if error.sent:
                    self._heard()
                    ambiguous = True
                else:
                    # Never reached the service: nothing to pay for, so no job fails of it;
                    # only a long outage stops the run.
                    self._unsent(render)
                    if self._withdraw(render, ambiguous):
                        withdrawn = True
                        self._save(work, f"not sent ({error.message}); waiting")
                    if self._check_reachable(error):
                        await self._sleep(self._connect_backoff.delay(failures))
                        continue
                    return None
                if error.sent and not render.possible_duplicate:
                    # Sent, but no task id came back (a lost answer, or a 5xx after which
                    # the gateway may have created it on another channel): it may be billed.
                    render.possible_duplicate = True
                    self._save(work, f"no usable answer ({error.message}); same key again")
                await self._sleep(self._create_backoff.delay(failures))
                continue
            except AuthError:
                # 401/403: refused; the next run sends this attempt again under the same key.
                self._unsent(render)
                self._not_sent(work, ambiguous, "key refused")
                raise
            except NotFound as error:
                self._unsent(render)
                if (error.code or "").lower() != "task_not_exist":
                    # The route itself is missing: the API base is wrong, not this job.
                    self._not_sent(work, ambiguous, "the API base has no such route")
                    raise ConfigError(
                        f"the API at {self.context.api_base} has no route for creating a "
                        f"task ({error.message}); check --api-base or SHOTRUNNER_API_BASE: it "
                        "includes the version prefix, e.g. https://octopusx.ai/v1"
                    ) from None
                # A replay of a task the service has forgotten (SPEC.md): a new attempt.
                reason = f"the service forgot the task of attempt {render.attempt}"
                if not await self._again(work, reason):
                    return None
                render.attempt += 1
                render.key_sends = 0
                ambiguous = False
                continue
            except Rejected as error:
                self._unsent(render)
                self._fail(work, f"rejected by the service: {error.message}", error.code)
                return None
            except ApiError as error:
                self._fail(work, error.message, error.code)
                return None
            finally:
                self._creating.discard(current)
                del body
            break
        # The task id is written before anything else happens (SPEC.md): from here on a
        # crash leaves a task to poll, not a create to send again.
        self._heard()
        render.task_id = task.id
        render.state = "queued"
        self._save(work, f"task {task.id}")
        self._rate_limited_in_a_row = 0
        self.limit.on_accepted()
        work.deadline = time.time() + self.options.task_timeout
        return task

    def _heard(self) -> None:
        """The API answered (anything at all): it is reachable."""
        self._last_answer = time.monotonic()

    def _check_reachable(self, error: ApiError) -> bool:
        """After a request that never reached the API: False, with the run stopping, once
        nothing has been heard from it for ``unreachable_after`` seconds."""
        silent = time.monotonic() - self._last_answer
        if silent < self.options.unreachable_after:
            return True
        self._stop_with(
            Unreachable(
                f"the API at {self.context.api_base} is unreachable (no answer for "
                f"{silent:.0f} s; last: {error.message}); run again to continue"
            )
        )
        return False

    @staticmethod
    def _unsent(render: RenderRow) -> None:
        """A create answered in a way that proves it created nothing: not counted as sent."""
        render.creates_sent -= 1
        render.key_sends -= 1

    @staticmethod
    def _withdraw(render: RenderRow, ambiguous: bool) -> bool:
        """After a create that created nothing: back to ``pending`` under the attempt number
        before, so the next send (this run's or the next run's) uses the same key. Unless an
        earlier send under this key may have created the task: it stays ``submitting``."""
        if ambiguous:
            return False
        render.state, render.attempt = "pending", render.attempt - 1
        return True

    def _not_sent(self, work: Work, ambiguous: bool, detail: str) -> None:
        """A create refused before it could create anything, and the run stops."""
        self._withdraw(work.render, ambiguous)
        self._save(work, detail)

    def _body(self, work: Work) -> dict[str, Any]:
        """The create's body; raises ``InputError`` if a local image vanished or changed."""
        return self._request_body(work.job.shot)

    async def _on_rate_limited(self, error: RateLimited) -> None:
        """A 429 on create: give the slot back, shrink the limit, wait for room again."""
        self._rate_limited_in_a_row += 1
        await self.limit.release()
        # With tasks in flight, the smaller limit alone makes the wait (for one to finish);
        # with none, back off so a saturated service is not asked again at once.
        in_a_row = self._rate_limited_in_a_row
        wait = 0.0
        if error.retry_after is not None or self.limit.active == 0:
            wait = self._create_backoff.delay(in_a_row, error.retry_after)
            if in_a_row > 1:
                # A "Retry-After: 0" answered again and again must not become a tight loop.
                wait = max(wait, self._create_backoff.delay(in_a_row))
        self.limit.on_rate_limited(wait)
        await self.limit.acquire()

    async def _follow(self, work: Work, *, holds_slot: bool, task: Task | None = None) -> None:
        """Poll a task until it finishes, then collect its clip (or try again, or fail)."""
        render = work.render
        if work.deadline is None:
            submitted = parse_iso(render.submitted_at) or time.time()
            work.deadline = submitted + self.options.task_timeout
            if render.state == "failed":
                work.deadline = time.time() + self.options.task_timeout
        first_poll = task is None
        errors = unknown = 0
        while True:
            if task is None or task.status == "pending":
                if not first_poll:
                    elapsed = time.time() - (work.deadline - self.options.task_timeout)
                    await self._sleep(self._polls.next_delay(_task_kind(work), elapsed))
                first_poll = False
                if time.time() > work.deadline:
                    self._fail(
                        work,
                        f"timed out after {self.options.task_timeout:g} s "
                        f"(task {render.task_id} kept; --retry-failed asks it again)",
                        "timeout",
                    )
                    break
                assert render.task_id is not None
                try:
                    task = await self.client.retrieve(render.task_id)
                except NotFound:
                    self._heard()
                    unknown += 1
                    if unknown < NOT_FOUND_CONFIRMATIONS:
                        # Asked again before paying again: one 404 may be a replica that has
                        # not seen a new task yet.
                        task = None
                        continue
                    if not await self._again(work, f"the service lost task {render.task_id}"):
                        break
                    task = await self._submit(work, new_attempt=True)
                    if task is None:
                        break
                    unknown = 0
                    continue
                except AuthError:
                    raise
                except ApiError as error:
                    # Anything else (5xx, 429, an odd 400) may pass: poll again later.
                    errors += 1
                    if not await self._back_off(work, errors, error, "polling", "poll"):
                        break
                    task = None
                    continue
                self._heard()
                errors = unknown = 0
                self._note_progress(work, task)
                continue
            if task.status == "failed":
                message = task.error_message or task.error_code or task.raw_status
                if task.is_policy_refusal:
                    self._fail(work, f"refused: {message}", task.error_code or "refused")
                    break
                if not await self._again(work, f"failed remotely: {message}"):
                    break
                task = await self._submit(work, new_attempt=True)
                if task is None:
                    break
                continue
            # completed
            elapsed = time.time() - (work.deadline - self.options.task_timeout)
            self._polls.observe(_task_kind(work), elapsed)
            if holds_slot:
                holds_slot = False
                await self.limit.release()
            await self._collect(work, task)
            return
        if holds_slot:
            await self.limit.release()

    async def _again(self, work: Work, reason: str) -> bool:
        """Whether another attempt is allowed; fails the render with ``reason`` if not."""
        render = work.render
        if work.earlier is not None:
            # No job wants this render any more: followed to its end, never paid for again.
            self._fail(work, reason, "failed")
            return False
        if render.attempt >= work.attempt_budget:
            self._fail(work, f"{reason} (after {render.attempt} attempt(s))", "failed")
            return False
        render.error = reason
        self._save(work, reason)
        return not self._stopping.is_set()

    def _note_progress(self, work: Work, task: Task) -> None:
        render = work.render
        if task.status == "completed":
            return
        state: JobState = "running"
        if not task.progress and task.raw_status.lower() in _NOT_STARTED:
            state = "queued"
        changed = state != render.state
        if changed or task.progress != render.progress or render.error_code is not None:
            # A task alive again: a timeout (--retry-failed) or an earlier run's poll errors.
            render.error = render.error_code = None
            render.state = state
            render.progress = task.progress
            self._save(work, task.raw_status, event=changed)
            if not changed:
                self.view.progress(work.label, state, task.progress)

    # -- collecting the clip -------------------------------------------------------------------

    async def _fetch(self, work: Work) -> None:
        """A done render with jobs whose clip is missing: copy it, or fetch it again."""
        if self._deliver_locally(work):
            return
        await self._collect(work, None)

    async def _collect(self, work: Work, task: Task | None) -> None:
        """Download a finished task's clip once and deliver it into every job's folder."""
        if self._deliver_locally(work):
            return
        async with self._downloads:
            outcome, task = await self._download(work, task)
        # Re-rendering or polling again happens outside the download slots (and apart
        # from a fetch worker, which goes on with the next clip).
        if outcome == "lost":
            self._spawn(self._render_again(work, "the service no longer has the clip"))
        elif outcome == "pending" and task is not None:
            self.limit.take()
            self._spawn(self._follow(work, holds_slot=True, task=task))

    async def _download(
        self, work: Work, task: Task | None
    ) -> tuple[Literal["done", "owed", "lost", "pending"], Task | None]:
        render = work.render
        part = part_of(self._final(work.jobs[0].job) if work.jobs else self._earlier_path(work))
        if render.state == "done" and matches(part, render.sha256, render.bytes):
            self._deliver_all(work, part)
            return "done", task
        if render.state != "done":
            render.state = "downloading"
            render.error = render.error_code = None
            render.progress = 100.0 if render.progress is not None else None
            render.completed_at = render.completed_at or now_iso()
            self._save(work, "completed")
        errors = unknown = 0
        while True:
            if task is None or task.status != "completed":
                assert render.task_id is not None
                try:
                    task = await self.client.retrieve(render.task_id)
                except NotFound:
                    unknown += 1
                    if unknown < NOT_FOUND_CONFIRMATIONS:
                        await self._sleep(self.options.poll_interval)
                        continue
                    return "lost", None
                except AuthError:
                    raise
                except ApiError as error:
                    errors += 1
                    if not await self._back_off(work, errors, error, "fetching", "download"):
                        return "owed", None
                    continue
                if task.status == "failed":
                    return "lost", task
                if task.status != "completed":
                    # Recorded as downloading, but the task says otherwise: follow it again.
                    render.state = "running"
                    self._save(work, task.raw_status)
                    return "pending", task
            url = task.video_url or self.client.content_url(task.id)
            try:
                downloaded = await self.client.download(url, part)
            except AuthError:
                raise
            except LinkExpired:
                errors += 1
                task = None
                if errors >= MAX_TASK_ERRORS:
                    self._keep_owed(work, "the clip's link keeps expiring", "download")
                    return "owed", None
                if errors > 1:
                    # The first fresh link is asked at once; links that keep expiring back off.
                    await self._sleep(self._task_backoff.delay(errors - 1))
                continue
            except (TransientError, RateLimited) as error:
                # DownloadError is transient: the part file resumes or restarts.
                errors += 1
                if not await self._back_off(work, errors, error, "download", "download"):
                    return "owed", None
                continue
            except ApiError as error:
                self._keep_owed(work, f"download failed: {error.message}", "download")
                return "owed", None
            break
        render.sha256, render.bytes = downloaded.sha256, downloaded.bytes
        render.error = render.error_code = None
        render.downloaded_at = now_iso()
        if work.earlier is not None:
            # Put in place before the render is recorded done: a crash in between fetches
            # it again rather than leave a part file no run looks for.
            kept = self._keep_earlier(work, part)
        render.state = "done"
        render.progress = 100.0
        self._save(work, f"{downloaded.bytes} bytes", show=False)
        if work.earlier is not None:
            self.result.earlier_collected += 1
            self.view.state(work.label, "done", f"kept as {kept.relative_to(self.output_dir)}")
        else:
            self._deliver_all(work, part)
        return "done", task

    async def _render_again(self, work: Work, reason: str) -> None:
        """The service lost a finished clip that was never delivered: render it again."""
        work.attempt_budget = max(work.attempt_budget, work.render.attempt + 1)
        if not await self._again(work, reason):
            return
        await self.limit.acquire()
        await self._submit_and_follow(work, new_attempt=True)

    def _final(self, job: Job) -> Path:
        return self.output_dir / clip_relpath(job.shot.id, job.take)

    def _earlier_path(self, work: Work) -> Path:
        """Where an earlier render's clip goes: the ``.history/`` name ``move_to_history``
        would give it, so that undoing the edit finds it there."""
        assert work.earlier is not None
        shot, take = work.earlier
        render = work.render
        final = self.output_dir / clip_relpath(shot, take)
        label = f"{render.fingerprint[:12]}-g{render.generation}"
        return final.parent / HISTORY / f"{final.stem}.{label}{final.suffix}"

    def _keep_earlier(self, work: Work, part: Path) -> Path:
        """Put an earlier render's downloaded clip into ``.history/`` with its sidecar, under
        a name that overwrites nothing."""
        base = target = self._earlier_path(work)
        counter = 1
        while target.exists() or sidecar_of(target).exists():
            counter += 1
            target = base.with_name(f"{base.stem}-{counter}{base.suffix}")
        place(part, target)
        assert work.earlier is not None
        render = work.render
        write_sidecar(
            target,
            {
                "shot": work.earlier[0],
                "take": work.earlier[1],
                "fingerprint": render.fingerprint,
                "generation": render.generation,
                "attempt": render.attempt,
                "task_id": render.task_id,
                # The manifest no longer describes this render.
                "model": None,
                "request": None,
                "earlier_render": True,
                "sha256": render.sha256,
                "bytes": render.bytes,
                "submitted_at": render.submitted_at,
                "completed_at": render.completed_at,
                "downloaded_at": render.downloaded_at,
                "manifest": self.context.manifest.display_path,
                "manifest_sha256": self.context.manifest.sha256,
                "api_base": self.context.api_base,
                "runner_version": __version__,
                "possible_duplicate": render.possible_duplicate,
                "simulated": self.context.simulated,
            },
        )
        return target

    def _deliver_locally(self, work: Work) -> bool:
        """Deliver a done render without the network: adopt or copy intact files on disk."""
        render = work.render
        if render.state != "done":
            return False
        source = self._intact_copy(work)
        if source is None:
            source = self._copy_on_disk(work)
        if source is None:
            return False
        self._deliver_all(work, source)
        return True

    def _copy_on_disk(self, work: Work) -> Path | None:
        """The render's clip found whole on disk but not on record: at a final path or in a
        part file (a crash before the rename or the record), or in ``.history/`` (an edit
        reverted). Checked by hash, so nothing else is taken for it."""
        render = work.render
        for item in work.jobs:
            final = self._final(item.job)
            candidates = [final, part_of(final)]
            candidates += history_candidates(final, render.fingerprint, render.generation)
            for candidate in candidates:
                if matches(candidate, render.sha256, render.bytes):
                    return candidate
        return None

    def _intact_copy(self, work: Work) -> Path | None:
        for item in work.jobs:
            row = work.rows.get((item.job.shot.id, item.job.take))
            if (
                row is not None
                and row.delivered
                and clip_intact(self.output_dir, row, verify=self.options.verify)
            ):
                return self.output_dir / clip_relpath(item.job.shot.id, item.job.take)
        return None

    def _deliver_all(self, work: Work, source: Path) -> None:
        """Put the clip at ``source`` into every job's folder that lacks it (source last)."""
        render = work.render
        finals = [self._final(item.job) for item in work.jobs]
        order = sorted(range(len(work.jobs)), key=lambda i: part_of(finals[i]) == source)
        for index in order:
            item, final = work.jobs[index], finals[index]
            key = (item.job.shot.id, item.job.take)
            row = work.rows[key]
            if final == source or (
                row.delivered and clip_intact(self.output_dir, row, verify=self.options.verify)
            ):
                if final == source and not row.delivered:
                    self._record(work, item, row, final)
                continue
            if final.exists() and matches(final, render.sha256, render.bytes):
                self._record(work, item, row, final)
                continue
            self._make_room(row, final)
            part = source if source == part_of(final) else copy_to_part(source, final)
            place(part, final)
            self._record(work, item, row, final)
        self.view.state(work.label, "done", f"{render.bytes} bytes")

    def _make_room(self, row: JobRow, final: Path) -> None:
        """Move whatever clip sits at ``final`` (an older render's) into ``.history/``."""
        if not final.exists():
            return
        sidecar = read_sidecar(final) or {}
        if row.file_fingerprint is not None and row.file == clip_relpath(row.shot, row.take):
            label = f"{row.file_fingerprint[:12]}-g{row.file_generation}"
        elif sidecar.get("fingerprint"):
            label = f"{str(sidecar['fingerprint'])[:12]}-g{sidecar.get('generation', 1)}"
        else:
            label = "unknown"
        moved = move_to_history(final, label)
        if row.file is not None:
            self.store.record_file_moved(self.run_id, row, f"moved to {moved}")

    def _record(self, work: Work, item: PlannedJob, row: JobRow, final: Path) -> None:
        render = work.render
        write_sidecar(final, self._sidecar(work, item))
        stat = final.stat()
        assert render.sha256 is not None
        self.store.record_delivery(
            self.run_id,
            row,
            file=clip_relpath(item.job.shot.id, item.job.take),
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            sha256=render.sha256,
        )
        self.result.delivered += 1
        self.result.seconds_delivered += item.job.shot.seconds_to_pay

    def _sidecar(self, work: Work, item: PlannedJob) -> dict[str, Any]:
        render, job, manifest = work.render, item.job, self.context.manifest
        return {
            "shot": job.shot.id,
            "take": job.take,
            "fingerprint": render.fingerprint,
            "generation": render.generation,
            "attempt": render.attempt,
            "task_id": render.task_id,
            "model": job.shot.model,
            "request": self._provenance_request(job.shot),
            "sha256": render.sha256,
            "bytes": render.bytes,
            "submitted_at": render.submitted_at,
            "completed_at": render.completed_at,
            "downloaded_at": render.downloaded_at,
            "manifest": manifest.display_path,
            "manifest_sha256": manifest.sha256,
            "api_base": self.context.api_base,
            "runner_version": __version__,
            "possible_duplicate": render.possible_duplicate,
            "simulated": self.context.simulated,
        }

    # -- bookkeeping ---------------------------------------------------------------------------

    def _save(self, work: Work, detail: str, *, event: bool = True, show: bool = True) -> None:
        self.store.update_render(
            self.run_id,
            work.render,
            detail=detail,
            job=work.job_key,
            event=event,
        )
        if event and show:
            self.view.state(work.label, work.render.state, detail)

    async def _back_off(
        self, work: Work, errors: int, error: ApiError, what: str, code: str
    ) -> bool:
        """After ``errors`` failed requests in a row about a task: wait before the next one,
        or, at ``MAX_TASK_ERRORS``, give up on the task for this run (False)."""
        if isinstance(error, TransientError) and not error.sent:
            # Nothing reached the service: no reason to give up on the task, only a long
            # outage stops the run (the task stays in flight for the next one).
            if not self._check_reachable(error):
                return False
            await self._sleep(self._task_backoff.delay(errors))
            return True
        self._heard()
        if errors >= MAX_TASK_ERRORS:
            self._keep_owed(work, f"{what} failed: {error.message}", code)
            return False
        retry_after = error.retry_after if isinstance(error, RateLimited) else None
        await self._sleep(self._task_backoff.delay(errors, retry_after))
        return True

    def _keep_owed(self, work: Work, message: str, code: str) -> None:
        """Give up on a task for this run, but not on its clip: it is (being) paid for.

        The service kept failing to answer about it (``poll``) or to serve its clip
        (``download``). The render keeps its state (in flight, downloading) and its task id,
        with the reason, so the next run, with no flag, asks the same task again; this run
        counts it as failed (exit 1).
        """
        render = work.render
        again = "fetches it again" if code == "download" else "asks it again"
        render.error = f"{message}; task {render.task_id} kept, the next run {again}"
        render.error_code = code
        self._save(work, render.error)

    def _fail(self, work: Work, message: str, code: str | None) -> None:
        render = work.render
        render.state = "failed"
        render.progress = None
        render.error = message
        render.error_code = code
        self._save(work, message)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the run is stopping."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
        raise asyncio.CancelledError

    def _tally(self) -> None:
        for work in self.works:
            render = work.render
            if render.possible_duplicate:
                sent = f" ({render.creates_sent} creates sent)" if render.creates_sent else ""
                self.result.possible_duplicates.append(work.label + sent)
            # A task given up on for this run only (see _keep_owed): reported, not abandoned.
            owed = render.state != "failed" and render.error_code in OWED_CODES
            if work.earlier is not None:
                if owed:
                    # Its clip is paid for and still owed: the next run asks again.
                    self.result.failed.append((work.label, render.error or "failed"))
                elif render.state == "failed":
                    self.result.earlier_lost.append((work.label, render.error or "failed"))
                continue
            for item in work.jobs:
                row = work.rows.get((item.job.shot.id, item.job.take))
                delivered = render.state == "done" and row is not None and row.delivered
                if delivered:
                    self.result.done += 1
                elif render.state == "failed" or owed:
                    self.result.failed.append((item.job.key, render.error or "failed"))
