"""What every step of a run shares: the run's state (built from the plan), the store writes,
the sidecar fields of every clip, failing a render or keeping its task owed, backing off and
sleeping (woken by a stop), the outage limit, and the coroutines spawned per render.

The steps themselves are mixins of ``EngineBase`` in their own modules; the ones a step calls
in another module are declared here (for the type checker only), so each module says what it
needs from the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import __version__
from runner.api.errors import ApiError, AuthError, RateLimited, TransientError
from runner.concurrency import AdaptiveLimit
from runner.engine.options import RunContext, RunOptions
from runner.engine.work import Work, group_work, kind_of, summarise
from runner.errors import ConfigError, ShotrunnerError, Unreachable
from runner.polling import PollPlanner
from runner.reconcile import PlannedJob
from runner.retry import RetryPolicy
from runner.store import Store
from runner.view import RunResult, View

if TYPE_CHECKING:
    from runner.api.client import ApiClient
    from runner.api.task import Task
    from runner.model import Job

#: Consecutive failed polls or downloads of one task before this run gives up on it.
MAX_TASK_ERRORS = 12
#: 404s in a row for a task before it counts as forgotten by the service (and resubmitted).
NOT_FOUND_CONFIRMATIONS = 2
#: Error codes of a render this run gave up on while its task stays owed (``_keep_owed``).
OWED_CODES = frozenset({"poll", "download"})


class EngineBase:
    """The state of one run and the bookkeeping every step shares."""

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
        #: Futures of the coroutines in ``_sleep``, resolved at once when the run stops.
        self._sleepers: set[asyncio.Future[None]] = set()
        self._all_done = asyncio.Event()
        self._fatal: BaseException | None = None
        self._creating: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._signals = 0
        self._installed_signals: list[int] = []
        self._previous_handlers: dict[int, Any] = {}
        self._rate_limited_in_a_row = 0
        #: New creates (new idempotency keys) started in this run, capped by ``--max-new``.
        self._new_creates = 0

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

    # -- steps other modules provide (declared for the type checker) ---------------------------

    if TYPE_CHECKING:

        def _add_earlier(self, planned: Sequence[PlannedJob]) -> None: ...

        async def _submit(self, work: Work, *, new_attempt: bool) -> Task | None: ...

        async def _submit_and_follow(
            self, work: Work, *, new_attempt: bool, holds_slot: bool = True
        ) -> None: ...

        async def _again(self, work: Work, reason: str) -> bool: ...

        async def _follow(
            self, work: Work, *, holds_slot: bool, task: Task | None = None
        ) -> None: ...

        async def _collect(self, work: Work, task: Task | None) -> None: ...

        def _final(self, job: Job) -> Path: ...

        def _deliver_locally(self, work: Work) -> bool: ...

        def _deliver_all(self, work: Work, source: Path) -> None: ...

        def _earlier_path(self, work: Work) -> Path: ...

        def _keep_earlier(self, work: Work, part: Path) -> Path: ...

    # -- spawned coroutines --------------------------------------------------------------------

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
        self._stop()

    def _stop(self) -> None:
        """Stop the run: no new submissions, and every ``_sleep`` wakes."""
        self._stopping.set()
        for sleeper in self._sleepers:
            if not sleeper.done():
                sleeper.set_result(None)

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

    # -- bookkeeping ---------------------------------------------------------------------------

    def _save(
        self,
        work: Work,
        detail: str,
        *,
        event: bool = True,
        show: bool = True,
        part_owner: tuple[str, str] | None = None,
    ) -> None:
        self.store.update_render(
            self.run_id,
            work.render,
            detail=detail,
            job=work.job_key,
            event=event,
            part_owner=part_owner,
        )
        if event and show:
            self.view.state(work.label, work.render.state, detail)

    def _sidecar_common(self, work: Work, shot: str, take: int) -> dict[str, Any]:
        """The sidecar fields of any clip of a render, delivered or kept in ``.history/``:
        the job, the render and its task, the clip's hash and times, where it came from.
        Callers add what the manifest says of the shot (``model``, ``request``)."""
        render, manifest = work.render, self.context.manifest
        return {
            "shot": shot,
            "take": take,
            "fingerprint": render.fingerprint,
            "generation": render.generation,
            "attempt": render.attempt,
            "task_id": render.task_id,
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

    def _may_create(self, work: Work) -> bool:
        """Count one new create (a new key) against ``--max-new``; when the cap is reached the
        render fails with the reason instead: resubmissions during the run (a lost task, a
        remote failure, a lost clip) never pay beyond it."""
        limit = self.options.max_new
        if limit is not None and self._new_creates >= limit:
            self._fail(work, f"not submitted: --max-new {limit} reached", "max_new")
            return False
        self._new_creates += 1
        return True

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the run is stopping."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        if self._stopping.is_set():
            raise asyncio.CancelledError
        # A future and a timer: the whole run sleeps this way between polls, and
        # ``wait_for`` on the stop event made a task and a cancellation of it per sleep.
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, _wake, sleeper)
        self._sleepers.add(sleeper)
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleepers.discard(sleeper)
        if self._stopping.is_set():
            raise asyncio.CancelledError


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)
