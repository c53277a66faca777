"""The poll step: asking a task (when the poll planner says) until it completes, fails or times
out, noting its progress on the way. Next: ``DOWNLOAD`` when it completed, ``SUBMIT_NEW``
when the service lost or failed it and another attempt is allowed, else ``END``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from runner.api.errors import ApiError, AuthError, NotFound
from runner.engine.states import NOT_FOUND_CONFIRMATIONS, Step, move
from runner.polling import Reading, within
from runner.store import parse_iso

if TYPE_CHECKING:
    from runner.api.task import Task
    from runner.engine.run import Run
    from runner.engine.work import Work
    from runner.model import JobState

#: How often progress alone (no change of state) is written to the store, per render.
PROGRESS_SAVE_SECONDS = 5.0
#: Status words of a task that has not started rendering (shown as ``queued``).
_NOT_STARTED = frozenset({"queued", "pending", "submitted", "not_start", ""})


async def poll(run: Run, work: Work) -> Step:
    """Ask ``work``'s task until it finishes (``work.task``: a create's answer, if any)."""
    render, timeout = work.render, run.options.task_timeout
    task = work.task
    if work.deadline is None:
        submitted = parse_iso(render.submitted_at) or time.time()
        work.deadline = submitted + timeout
        if render.state == "failed":
            work.deadline = time.time() + timeout
    first_poll = task is None
    # The deadline is judged only once the task has answered in this run: resumed the next
    # morning, a task that finished overnight is collected, not failed as timed out.
    asked = task is not None
    # Seen pending in this run (a create's answer counts): only then does the finish, seen
    # at a poll, say how long the task took. One found done at the first poll of a resumed
    # run may have finished hours ago; learning that would hold new tasks' polls.
    watched = task is not None and task.status == "pending"
    errors = unknown = 0
    # This attempt's progress as reported, for aiming the next poll.
    readings: list[Reading] = []
    while task is None or task.status == "pending":
        if not first_poll:
            elapsed = time.time() - (work.deadline - timeout)
            delay = run.polls.next_delay(work.task_kind, elapsed, readings)
            delay = run.client_for(work).profile.poll_delay(delay, run.polls.interval)
            await run.sleep(within(delay, work.deadline))
        first_poll = False
        if asked and time.time() > work.deadline:
            return run.fail(
                work,
                f"timed out after {timeout:g} s "
                f"(task {render.task_id} kept; --retry-failed asks it again)",
                "timeout",
            )
        assert render.task_id is not None
        try:
            task = await run.client_for(work).retrieve(render.task_id)
        except NotFound:
            run.heard()
            unknown += 1
            if unknown < NOT_FOUND_CONFIRMATIONS:
                # Asked again before paying again: one 404 may be a replica that has not
                # seen a new task yet.
                task = None
                continue
            return run.again(work, f"the service lost task {render.task_id}")
        except AuthError:
            raise
        except ApiError as error:
            # Anything else (5xx, 429, an odd 400) may pass: poll again later.
            errors += 1
            if not await run.back_off(work, errors, error, "polling", "poll", until=work.deadline):
                return Step.END
            task = None
            continue
        run.heard()
        asked = True
        errors = unknown = 0
        _note_progress(run, work, task)
        watched = watched or task.status == "pending"
        if task.progress is not None:
            readings.append((time.time() - (work.deadline - timeout), task.progress))
    work.task = task
    if task.cost is not None or task.estimated_cost is not None:
        # The provider's price (Runway): kept beside the render for the money figures.
        render.provider_cost = task.cost if task.cost is not None else render.provider_cost
        if task.estimated_cost is not None:
            render.provider_estimated_cost = task.estimated_cost
    if task.status == "failed":
        message = task.error_message or task.error_code or task.raw_status
        if task.is_policy_refusal:
            return run.fail(work, f"refused: {message}", task.error_code or "refused")
        return run.again(work, f"failed remotely: {message}")
    # completed
    if watched:
        run.polls.observe(work.task_kind, time.time() - (work.deadline - timeout))
    return Step.DOWNLOAD


def _note_progress(run: Run, work: Work, task: Task) -> None:
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
        move(render, state)
        render.progress = task.progress
        work.progress_saved_at = time.monotonic()
        run.record(work, task.raw_status, event=changed)
        if not changed:
            run.view.progress(work.label, state, task.progress)
    elif task.progress != render.progress:
        # Progress alone is for display: written at most every PROGRESS_SAVE_SECONDS, so
        # short tasks polled often do not write on every poll (the next save carries it).
        render.progress = task.progress
        now = time.monotonic()
        if now - work.progress_saved_at >= PROGRESS_SAVE_SECONDS:
            work.progress_saved_at = now
            run.record(work, task.raw_status, event=False)
        run.view.progress(work.label, state, task.progress)
