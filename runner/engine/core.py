"""``Engine``: one run over a planned batch, from binding jobs to their renders to the tally.

It starts each render where the store left it (resume, retry a failed one, submit, fetch),
keeps the fan-out bounded, shuts down on a signal or a stop-everything error, and counts
what was done. The steps of one render live in the mixins it joins; their shared state is
``EngineBase``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

from runner.engine.base import OWED_CODES
from runner.engine.collect import CollectMixin
from runner.engine.deliver import DeliverMixin
from runner.engine.earlier import EarlierMixin
from runner.engine.follow import FollowMixin
from runner.engine.submit import SubmitMixin
from runner.engine.work import Work, kind_of
from runner.errors import InputError, Interrupted, ShotrunnerError
from runner.reconcile import asks_task_first
from runner.view import RunResult

#: How long a create already on the wire may take to record its answer after a signal.
CREATE_GRACE = 1.5


def _exit_now(*_: object) -> None:
    """The second Ctrl-C: leave at once. Every state change is already committed, and the
    kernel drops the batch lock; the next run resumes from the store."""
    os._exit(130)


class Engine(SubmitMixin, FollowMixin, CollectMixin, DeliverMixin, EarlierMixin):
    """One run over a planned batch. ``await engine.run()`` returns a ``RunResult``.

    Built with ``EngineBase.__init__`` (store, client, plan, options, context, view, run id,
    request builders).
    """

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
            # A render new to the store is inserted as the pending row ``group_work`` made for
            # it, and a known one is left as it is: the rows in hand stay current.
            rows = self.store.bind_jobs(self.run_id, bindings)
            for work in self.works:
                if work.adopted:
                    self._save(work, "adopted: its clip and sidecar were on disk, unknown here")
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
            earlier = self._fatal
            # A signal wins over any error of the runner's own (exit 130 over 2 and 1, as a
            # 401 answered to a create in the grace period would otherwise make it 2), but
            # what that error said is kept.
            if earlier is None or (self._signals and isinstance(earlier, ShotrunnerError)):
                also = f"; also: {earlier}" if earlier is not None else ""
                self.result.interrupted = True
                self._fatal = Interrupted(
                    "interrupted: tasks already submitted keep rendering; "
                    f"run the same command again to collect them{also}"
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
        """One fetch worker: deliver done renders' clips (copied, or fetched again), one after
        the other."""
        for work in works:
            await self._collect(work, None)

    async def _shut_down(self) -> None:
        for task in list(self._tasks - self._creating):
            task.cancel()
        if self._creating:
            await asyncio.wait(list(self._creating), timeout=CREATE_GRACE)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=0.5)

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
        self._stop()

    # -- where a render picks up ---------------------------------------------------------------

    async def _resume(self, work: Work) -> None:
        """A render found in flight at the start."""
        render = work.render
        if render.state == "submitting":
            await self._submit_and_follow(work, new_attempt=False, holds_slot=True)
            return
        if render.state == "downloading":
            await self._collect(work, None)
            return
        # Queued or running: ``_run_all`` took its slot.
        await self._follow(work, holds_slot=True)

    async def _retry_failed(self, work: Work) -> None:
        """A failed render, with --retry-failed (a slot is held)."""
        render = work.render
        if asks_task_first(render):
            # Ask the old task first: a clip that finished late is collected, not paid twice.
            await self._follow(work, holds_slot=True)
            return
        # A create that never got an answer is retried under the same key, asked on purpose:
        # one more round of sends.
        new_attempt = not (render.task_id is None and render.error_code == "unanswered")
        if not new_attempt:
            render.key_sends = 0
        await self._submit_and_follow(work, new_attempt=new_attempt, holds_slot=True)

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
