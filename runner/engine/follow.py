"""Following a task: polling it (the interval from the poll planner) until it completes,
fails (another attempt, or refused) or times out, and noting its progress on the way."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from runner.api.errors import ApiError, AuthError, NotFound
from runner.engine.base import NOT_FOUND_CONFIRMATIONS, EngineBase
from runner.engine.work import Work, task_kind
from runner.polling import Reading
from runner.store import parse_iso

if TYPE_CHECKING:
    from runner.api.task import Task
    from runner.model import JobState

#: How often progress alone (no change of state) is written to the store, per render.
PROGRESS_SAVE_SECONDS = 5.0
#: Status words of a task that has not started rendering (shown as ``queued``).
_NOT_STARTED = frozenset({"queued", "pending", "submitted", "not_start", ""})


class FollowMixin(EngineBase):
    """Polling a render's task until it finishes."""

    async def _follow(self, work: Work, *, holds_slot: bool, task: Task | None = None) -> None:
        """Poll a task until it finishes, then collect its clip (or try again, or fail)."""
        render = work.render
        if work.deadline is None:
            submitted = parse_iso(render.submitted_at) or time.time()
            work.deadline = submitted + self.options.task_timeout
            if render.state == "failed":
                work.deadline = time.time() + self.options.task_timeout
        first_poll = task is None
        # The deadline is judged only once the task has answered in this run: resumed the next
        # morning, a task that finished overnight is collected, not failed as timed out.
        asked = task is not None
        # Seen pending in this run (a create's answer counts): only then does the finish,
        # seen at a poll, say how long the task took. One found done at the first poll of a
        # resumed run may have finished hours ago; learning that would hold new tasks' polls.
        watched = task is not None and task.status == "pending"
        errors = unknown = 0
        # This attempt's progress as reported, for aiming the next poll.
        readings: list[Reading] = []
        while True:
            if task is None or task.status == "pending":
                if not first_poll:
                    elapsed = time.time() - (work.deadline - self.options.task_timeout)
                    delay = self._polls.next_delay(task_kind(work), elapsed, readings)
                    await self._sleep(delay)
                first_poll = False
                if asked and time.time() > work.deadline:
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
                    readings.clear()
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
                asked = True
                errors = unknown = 0
                self._note_progress(work, task)
                watched = watched or task.status == "pending"
                if task.progress is not None:
                    submitted = work.deadline - self.options.task_timeout
                    readings.append((time.time() - submitted, task.progress))
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
                readings.clear()
                continue
            # completed
            if watched:
                elapsed = time.time() - (work.deadline - self.options.task_timeout)
                self._polls.observe(task_kind(work), elapsed)
            if holds_slot:
                holds_slot = False
                await self.limit.release()
            await self._collect(work, task)
            return
        if holds_slot:
            await self.limit.release()

    def _note_progress(self, work: Work, task: Task) -> None:
        render = work.render
        if task.status == "completed":
            return
        state: JobState = "running"
        if not task.progress and task.raw_status.lower() in _NOT_STARTED:
            state = "queued"
        changed = state != render.state
        if changed or render.error_code is not None:
            # A task alive again: a timeout (--retry-failed) or an earlier run's poll errors.
            render.error = render.error_code = None
            render.state = state
            render.progress = task.progress
            work.progress_saved_at = time.monotonic()
            self._save(work, task.raw_status, event=changed)
            if not changed:
                self.view.progress(work.label, state, task.progress)
        elif task.progress != render.progress:
            # Progress alone is for display: written at most every PROGRESS_SAVE_SECONDS, so
            # short tasks polled often do not write on every poll (the next save carries it).
            render.progress = task.progress
            now = time.monotonic()
            if now - work.progress_saved_at >= PROGRESS_SAVE_SECONDS:
                work.progress_saved_at = now
                self._save(work, task.raw_status, event=False)
            self.view.progress(work.label, state, task.progress)
