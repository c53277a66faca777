"""``Run``: one run over a plan. It owns the store, the client, the limit on tasks in flight,
the download slots and the view, and keeps the records every step makes.

It binds each job to its render, starts each render where the plan says (``life.live``
drives it from there), keeps the fan-out bounded, stops on request (``stop``) or on a
stop-everything error, and counts what was done into a ``RunResult``. It picks no exit
code and handles no signal: the CLI does both, and calls ``stop`` on the first signal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.api.errors import ApiError, AuthError, RateLimited, TransientError
from runner.concurrency import AdaptiveLimit
from runner.engine import life
from runner.engine.states import MAX_TASK_ERRORS, Step, first_step, move
from runner.engine.work import Work
from runner.errors import (
    ConfigError,
    InputError,
    Interrupted,
    NotWritten,
    ShotrunnerError,
    Unreachable,
)
from runner.files import cannot_write
from runner.model import RunResult
from runner.polling import PollPlanner, within
from runner.retry import RetryPolicy
from runner.view import View

if TYPE_CHECKING:
    from runner.api.client import ApiClient
    from runner.engine.options import RunContext, RunOptions
    from runner.plan import Plan
    from runner.store import Store

#: Error codes of a render this run gave up on while its task stays owed (``keep_owed``).
OWED_CODES = frozenset({"poll", "download"})
#: How long a create already on the wire may take to record its answer after a stop.
CREATE_GRACE = 1.5


def check_max_new(plan: Plan, max_new: int | None) -> None:
    """Refuse to start (nothing sent) when more than ``--max-new`` tasks would be submitted."""
    if max_new is not None and plan.summary.tasks_to_submit > max_new:
        raise InputError(
            f"{plan.summary.tasks_to_submit} task(s) would be submitted, more than --max-new "
            f"{max_new}; nothing was sent"
        )


class StopSwitch:
    """A stop that may be asked for at any moment, a signal handler's included: asked before
    a run is there, it is remembered; during a run, ``Run.stop`` is called from its loop."""

    def __init__(self) -> None:
        self.requested = False
        self._target: tuple[asyncio.AbstractEventLoop, Run] | None = None

    def request(self) -> bool:
        """Ask for a stop; True when a run was there to take it (else the caller stops)."""
        self.requested = True
        if self._target is None:
            return False
        loop, run = self._target
        loop.call_soon_threadsafe(run.stop)
        return True

    def attach(self, run: Run | None) -> None:
        """Point the switch at the run now executing (None: at none)."""
        self._target = None if run is None else (asyncio.get_running_loop(), run)


class Run:
    """One run over a plan. ``await run.execute()`` returns a ``RunResult``."""

    def __init__(
        self,
        *,
        store: Store,
        client: ApiClient | None,
        plan: Plan,
        options: RunOptions,
        context: RunContext,
        view: View | None = None,
        run_id: str | None = None,
        stop_switch: StopSwitch | None = None,
    ) -> None:
        self.store = store
        #: Opened by the caller only when the plan needs the network.
        self._client = client
        #: One client per provider the run uses (``run.client`` is the gateway's, or the
        #: only one).
        self.clients: dict[str, ApiClient] = {}
        #: Each provider's base in this run, without credentials (``runner.batch.public_base``);
        #: recorded on each of its renders and in its clips' sidecars.
        self.provider_bases: dict[str, str] = {}
        self.plan = plan
        self.options = options
        self.context = context
        self.view = view or View()
        self.run_id = run_id
        self.stop_switch = stop_switch or StopSwitch()
        self.output_dir = store.path.parent
        self.result = RunResult()
        self.works = [Work.of_render(planned) for planned in plan.renders]
        for earlier in plan.earlier:
            work = Work.of_earlier(earlier)
            if earlier.possibly_billed:
                # A create that never got its answer is not sent again (it would pay for a
                # shot the user removed): it is only reported.
                self.result.possibly_billed.append(work.label)
            else:
                self.works.append(work)
        self.limit = AdaptiveLimit(options.concurrency)
        self.downloads = asyncio.Semaphore(max(1, options.download_concurrency))
        self.create_backoff = RetryPolicy(base=0.5, cap=30.0)
        self.connect_backoff = RetryPolicy(base=0.5, cap=60.0)
        self.task_backoff = RetryPolicy(base=1.0, cap=60.0)
        self.polls = PollPlanner(options.poll_interval)
        #: When the API last answered anything (monotonic), for the outage limit.
        self._last_answer = time.monotonic()
        #: Whether the API answered anything in this run (the outage tolerance starts then).
        self._answered = False
        #: Failures to send a request, by message: each is shown once, counted after.
        self._not_sent: dict[str, int] = {}
        self.stopping = asyncio.Event()
        #: Futures of the coroutines in ``sleep``, resolved at once when the run stops.
        self._sleepers: set[asyncio.Future[None]] = set()
        self._all_done = asyncio.Event()
        self._fatal: BaseException | None = None
        #: Coroutines with a create on the wire: given ``CREATE_GRACE`` to record its answer.
        self.creating: set[asyncio.Task[Any]] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self._stop_requested = False
        self.rate_limited_in_a_row = 0
        #: New creates (new idempotency keys) started in this run, capped by ``--max-new``.
        self._new_creates = 0
        #: Renders whose clip was delivered this run, counted once in the money delivered.
        self._delivered_renders: set[tuple[str, int]] = set()
        self.result.currency = None if plan.money is None else plan.money.currency
        if plan.money is not None:
            self.result.planned_cost = plan.money.total
            self.result.worst_case_cost = plan.money.worst_case

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            raise RuntimeError("this run needs an API client")
        return self._client

    @client.setter
    def client(self, client: ApiClient) -> None:
        self._client = client

    def client_for(self, work: Work) -> ApiClient:
        """The client of the provider that renders ``work``: its shot's, or for an earlier
        render (its shot gone) the provider recorded on the render. ``client`` when the run
        opened no client per provider (one client given by the caller)."""
        if not self.clients:
            return self.client
        provider = (work.job.shot.provider if work.jobs else work.render.provider) or "gateway"
        client = self.clients.get(provider)
        if client is None:
            # Never another provider's client: it would carry its key to this one's origin
            # (``runner.batch`` refuses such a run before anything is sent).
            raise ConfigError(f"no client for provider {provider} in this run")
        return client

    # -- the run -------------------------------------------------------------------------------

    async def execute(self) -> RunResult:
        """Work every render of the plan to its end for this run, or until a stop."""
        started = self._last_answer = time.monotonic()
        check_max_new(self.plan, self.options.max_new)
        self._bind_jobs()
        summary = self.plan.summary
        # The live view counts the renders this run works on, not the done ones it skips.
        working = summary.tasks_to_submit + summary.renders["resume"] + summary.renders["fetch"]
        self.view.start(summary, working + summary.earlier)
        self.stop_switch.attach(self)
        if self.stop_switch.requested:
            self.stop()
        try:
            await self._run_all()
        finally:
            self.stop_switch.attach(None)
            self.result.wall_time = time.monotonic() - started
            self.result.creates = self.limit.accepted
            self.result.rate_limited = self.limit.rate_limited
            self._tally()
        if self._fatal is not None and not isinstance(self._fatal, ShotrunnerError):
            raise self._fatal
        self.result.stopped_by = self._fatal
        return self.result

    def stop(self) -> None:
        """Stop on request (the first Ctrl-C or SIGTERM): no new submissions, a create on the
        wire records its answer (briefly), polls and downloads end (their state is saved)."""
        if not self._stop_requested:
            self.view.state("run", "stopping", "no new submissions; saving state")
        self._stop_requested = True
        self._stop()

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
            # A render new to the store is inserted as the pending row the plan made for it,
            # and a known one is left as it is: the rows in hand stay current.
            rows = self.store.bind_jobs(self.run_id, bindings)
            for work in self.works:
                if work.adopted:
                    self.record(work, "adopted: its clip and sidecar were on disk, unknown here")
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
            state = work.render.state
            if work.action in ("submit", "retry") or (
                work.action == "resume" and state == "failed"
            ):
                needs_slot.append(work)
            elif work.action == "resume":
                if state in ("submitting", "queued", "running"):
                    self.limit.take()
                    work.holds_slot = True
                self.spawn(life.live(self, work, first_step(work.render)))
            elif work.action == "fetch":
                fetches.append(work)
        self.spawn(self._dispatch(needs_slot))
        queue = iter(fetches)
        for _ in range(min(len(fetches), max(1, self.options.download_concurrency))):
            self.spawn(self._fetch_each(queue))
        finished = asyncio.ensure_future(self._all_done.wait())
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait([finished, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished.cancel()
            stopping.cancel()
        if self.stopping.is_set():
            await self._shut_down()
            earlier = self._fatal
            # A stop asked for wins over any error of the runner's own (exit 130 over 2 and 1,
            # as a 401 answered to a create in the grace period would otherwise make it 2),
            # but what that error said is kept.
            if earlier is None or (self._stop_requested and isinstance(earlier, ShotrunnerError)):
                also = f"; also: {earlier}" if earlier is not None else ""
                self.result.interrupted = True
                self._fatal = Interrupted(self._interrupted_message() + also)

    def _interrupted_message(self) -> str:
        """What an interrupted run says, once: what is left on the service, and what next."""
        states = [work.render.state for work in self.works]
        tasks = sum(1 for state in states if state in ("queued", "running", "downloading"))
        unanswered = states.count("submitting")
        self.result.in_flight_at_stop = tasks + unanswered
        parts = []
        if tasks:
            parts.append(f"{tasks} task(s) already submitted are kept on the service")
        if unanswered:
            parts.append(
                f"{unanswered} create(s) got no answer yet (sent again under the same key)"
            )
        if not parts:
            return "interrupted before any task was submitted; run the same command again"
        return f"interrupted: {'; '.join(parts)}; run the same command again to collect them"

    async def _dispatch(self, works: list[Work]) -> None:
        """Start each render that needs a slot once one is free, in storyboard order."""
        for work in works:
            await self.limit.acquire()
            if self.stopping.is_set():
                await self.limit.release()
                return
            work.holds_slot = True
            self.spawn(life.live(self, work, first_step(work.render)))

    async def _fetch_each(self, works: Iterator[Work]) -> None:
        """One fetch worker: deliver done renders' clips (copied, or fetched again), one after
        the other."""
        for work in works:
            await life.live(self, work, Step.DELIVER, worker=True)

    async def _shut_down(self) -> None:
        for task in list(self.tasks - self.creating):
            task.cancel()
        if self.creating:
            await asyncio.wait(list(self.creating), timeout=CREATE_GRACE)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=0.5)

    def _tally(self) -> None:
        for work in self.works:
            render = work.render
            if render.possible_duplicate:
                sent = f" ({render.creates_sent} creates sent)" if render.creates_sent else ""
                self.result.possible_duplicates.append(work.label + sent)
            # A task given up on for this run only (see keep_owed): reported, not abandoned.
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

    # -- coroutines and stopping ---------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(self._guard(coroutine))
        self.tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not self.tasks:
            self._all_done.set()

    async def _guard(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run one render's coroutine; a stop-everything error ends the whole run."""
        try:
            await coroutine
        except asyncio.CancelledError:
            raise
        except AuthError as error:
            # The keys of the run's providers (the URL in the message says whose it was).
            profiles = [client.profile for client in self.clients.values()]
            keys = " or ".join([p.key_env for p in profiles if p.key_env] or ["SHOTRUNNER_API_KEY"])
            bases = "SHOTRUNNER_API_BASE / --api-base"
            if profiles and all(p.name != "gateway" for p in profiles):
                bases = "--api-base"  # the gateway's variable means nothing to another API
            self._stop_with(ConfigError(f"{error.message}; check {keys} (and {bases})"))
        except OSError as error:
            # A full disk or a folder without permission where no step named the file it
            # was writing (see ``writing``): a message, not a traceback.
            where = Path(error.filename) if error.filename else self.output_dir
            self._stop_with(NotWritten(cannot_write(where, error).message))
        except BaseException as error:
            self._stop_with(error)

    def _stop_with(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
        self._stop()

    def _stop(self) -> None:
        """No new submissions, and every ``sleep`` wakes."""
        self.stopping.set()
        for sleeper in self._sleepers:
            if not sleeper.done():
                sleeper.set_result(None)

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once (cancelled) when the run is stopping."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        if self.stopping.is_set():
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
        if self.stopping.is_set():
            raise asyncio.CancelledError

    # -- the outage limit ----------------------------------------------------------------------

    def heard(self) -> None:
        """The API answered (anything at all): it is reachable."""
        self._last_answer = time.monotonic()
        self._answered = True

    def check_reachable(self, work: Work, error: ApiError) -> bool:
        """After a request for ``work`` that never reached its API: False, with the run
        stopping, once nothing has been heard from the API for ``unreachable_after``
        seconds, or, when it never answered in this run, for ``unreachable_at_start`` seconds
        (exit 2: the base is wrong or the network is down; nothing was sent). Each kind of
        failure is shown once."""
        self._note_not_sent(error.message)
        silent = time.monotonic() - self._last_answer
        if not self._answered and silent >= self._silence_allowed():
            tries = sum(self._not_sent.values())
            base, advice = self._where_to_look(work)
            self._stop_with(
                ConfigError(
                    f"cannot reach the API at {base} ({error.message}; {tries} request(s) "
                    f"in {silent:.0f} s, none sent); nothing was billed: {advice}, and the "
                    "network"
                )
            )
            return False
        if silent < self._silence_allowed():
            return True
        base, _ = self._where_to_look(work)
        self._stop_with(
            Unreachable(
                f"the API at {base} is unreachable (no answer for "
                f"{silent:.0f} s; last: {error.message}); run again to continue"
            )
        )
        return False

    def _where_to_look(self, work: Work) -> tuple[str, str]:
        """The base of the API that ``work`` goes to, and what to check when it cannot be
        reached."""
        profile = self.client_for(work).profile
        return self.base_of(profile.name), profile.base_advice()

    def base_of(self, provider: str | None) -> str:
        """The API base of ``provider`` (None: the gateway) in this run, as messages and
        sidecars show it: without credentials (``provider_bases``); the run's own base when
        it opened no client per provider."""
        return self.provider_bases.get(provider or "gateway", self.context.api_base)

    def _silence_allowed(self) -> float:
        """How long the API may stay silent before the run stops (``check_reachable``)."""
        options = self.options
        if self._answered:
            return options.unreachable_after
        return min(options.unreachable_at_start, options.unreachable_after)

    def not_sent_delay(self, delay: float) -> float:
        """``delay``, the back-off before a request that never reached the API is tried
        again, cut to end when the run would stop for the API's silence: a wrong base is
        reported when ``unreachable_at_start`` is up, not at the next back-off after it."""
        left = self._silence_allowed() - (time.monotonic() - self._last_answer)
        return max(0.0, min(delay, left))

    def _note_not_sent(self, message: str) -> None:
        """Show a failure to send once; the same one again is only counted."""
        seen = self._not_sent.get(message, 0)
        self._not_sent[message] = seen + 1
        if not seen:
            self.view.state("run", "waiting", f"not sent ({message}); trying again")

    # -- records every step makes --------------------------------------------------------------

    def record(
        self,
        work: Work,
        detail: str,
        *,
        event: bool = True,
        show: bool = True,
        part_owner: tuple[str, str] | None = None,
    ) -> None:
        """Write the render's row as it is now (with an event, shown, unless told not to)."""
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

    def fail(self, work: Work, message: str, code: str | None) -> Step:
        """The render failed for good in this run (``--retry-failed`` may try it again)."""
        render = work.render
        move(render, "failed")
        render.progress = None
        render.error = message
        render.error_code = code
        self.record(work, message)
        return Step.END

    def keep_owed(self, work: Work, message: str, code: str) -> Step:
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
        self.record(work, render.error)
        return Step.END

    def again(self, work: Work, reason: str) -> Step:
        """A new attempt (``SUBMIT_NEW``) if one is allowed; else the render fails with
        ``reason``."""
        render = work.render
        if work.earlier is not None:
            # No job wants this render any more: followed to its end, never paid for again.
            return self.fail(work, reason, "failed")
        if render.attempt >= work.attempt_budget:
            return self.fail(work, f"{reason} (after {render.attempt} attempt(s))", "failed")
        render.error = reason
        self.record(work, reason)
        return Step.END if self.stopping.is_set() else Step.SUBMIT_NEW

    def may_create(self, work: Work) -> bool:
        """Count one new create (a new key) against ``--max-new``; when the cap is reached the
        render fails with the reason instead: resubmissions during the run (a lost task, a
        remote failure, a lost clip) never pay beyond it."""
        limit = self.options.max_new
        if limit is not None and self._new_creates >= limit:
            self.fail(work, f"not submitted: --max-new {limit} reached", "max_new")
            return False
        if not self._may_commit(work):
            return False
        self._new_creates += 1
        return True

    def created_nothing(self, work: Work) -> None:
        """The new create ``may_create`` counted created nothing: every send of it was
        refused or never reached the service. Its place under ``--max-new`` and its price
        are given back."""
        self._new_creates -= 1
        cost = self._render_cost(work)
        if cost is not None:
            self.result.committed_cost -= cost

    # -- money ---------------------------------------------------------------------------------

    def _render_cost(self, work: Work) -> Decimal | None:
        money = self.plan.money
        return None if money is None or not work.jobs else money.table.cost(work.jobs[0].job.shot)

    def _may_commit(self, work: Work) -> bool:
        """Count a new create's price as committed; past ``--max-cost`` the render fails with
        the reason instead. A create is counted when it is sent (it may create a task), and
        given back if it created nothing (``created_nothing``)."""
        cost = self._render_cost(work)
        limit = self.options.max_cost
        money = self.plan.money
        over = limit is not None and cost is not None and self.result.committed_cost + cost > limit
        if over and limit is not None and money is not None:
            from runner.pricing import money as shown_money

            self.fail(
                work,
                f"not submitted: --max-cost {shown_money(limit, money.currency)} reached "
                f"({shown_money(self.result.committed_cost, money.currency)} committed)",
                "max_cost",
            )
            return False
        if cost is not None:
            self.result.committed_cost += cost
        return True

    def count_delivery(self, work: Work) -> None:
        """The money of a render whose clip was delivered this run, once per render."""
        if work.render.key in self._delivered_renders:
            return
        self._delivered_renders.add(work.render.key)
        cost = self._render_cost(work)
        if cost is not None:
            self.result.delivered_cost += cost

    async def back_off(
        self,
        work: Work,
        errors: int,
        error: ApiError,
        what: str,
        code: str,
        *,
        until: float | None = None,
    ) -> bool:
        """After ``errors`` failed requests in a row about a task: wait before the next one,
        or, at ``MAX_TASK_ERRORS``, give up on the task for this run (False). A wait (a
        server's ``Retry-After`` included) ends by ``until``, a task's deadline, if given."""
        if isinstance(error, TransientError) and not error.sent:
            # Nothing reached the service: no reason to give up on the task, only a long
            # outage stops the run (the task stays in flight for the next one).
            if not self.check_reachable(work, error):
                return False
            delay = self.not_sent_delay(self.task_backoff.delay(errors))
            await self.sleep(self.retrying(work, what, error, delay))
            return True
        self.heard()
        if errors >= MAX_TASK_ERRORS:
            self.keep_owed(work, f"{what} failed: {error.message}", code)
            return False
        retry_after = error.retry_after if isinstance(error, RateLimited) else None
        delay = self.task_backoff.delay(errors, retry_after)
        if until is not None:
            delay = within(delay, until)
        await self.sleep(self.retrying(work, what, error, delay))
        return True

    def retrying(self, work: Work, what: str, error: ApiError, delay: float) -> float:
        """Tell the view a request about ``work`` is tried again, and why (``run -v`` shows
        it); returns ``delay``, the wait before it."""
        self.view.retry(work.label, f"{what}: {error.message}; again in {delay:.1f} s")
        return delay


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)
