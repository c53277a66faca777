"""The submit step, the money path: ``submitting`` recorded before a create is sent, the task
id the moment its answer arrives, the same idempotency key for a lost answer (a possible
duplicate, at most ``MAX_AMBIGUOUS_SENDS`` sends), ``pending`` again after a create that
created nothing. Next: ``POLL`` with the task, or ``END``."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from runner.api.errors import (
    ApiError,
    AuthError,
    NotFound,
    RateLimited,
    Rejected,
    TransientError,
    UnusableAnswer,
)
from runner.engine.states import MAX_AMBIGUOUS_SENDS, Step, move
from runner.errors import ConfigError, InputError
from runner.jobs import request_body
from runner.store import RenderRow, now_iso

if TYPE_CHECKING:
    from runner.engine.run import Run
    from runner.engine.work import Work


async def submit_new(run: Run, work: Work) -> Step:
    """Create the task of a new attempt (a new key)."""
    return await _submit(run, work, new_attempt=True)


async def submit_same(run: Run, work: Work) -> Step:
    """Send the create of the current attempt again under its key: its answer never came."""
    if work.render.state == "failed":
        # Retried on purpose (--retry-failed): one more round of sends under the key.
        work.render.key_sends = 0
    return await _submit(run, work, new_attempt=False)


async def _submit(run: Run, work: Work, *, new_attempt: bool) -> Step:
    render = work.render
    if not (new_attempt or render.attempt == 0):
        # A create whose answer never arrived (found at start): it may exist and be billed.
        render.possible_duplicate = True
        return await _send(run, work, ambiguous=True)
    if not run.may_create(work):
        return Step.END
    render.attempt += 1
    render.key_sends = 0
    sent_before = render.creates_sent
    try:
        return await _send(run, work, ambiguous=False)
    finally:
        # Every send of this create refused or never sent (``_unsent``): nothing to pay.
        if render.creates_sent == sent_before:
            run.created_nothing(work)


async def _send(run: Run, work: Work, *, ambiguous: bool) -> Step:
    """Send the create until a task id comes back, or the render ends or waits.
    ``ambiguous``: a create under this key may have reached the service unanswered."""
    render = work.render
    last_error = "a run stopped before its answer came"
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
        if run.stopping.is_set():
            return Step.END
        if ambiguous and render.key_sends >= MAX_AMBIGUOUS_SENDS:
            return run.fail(
                work,
                f"no task id came back for {render.key_sends} creates sent under one key "
                f"({last_error}); possible duplicate: {render.creates_sent} creates sent, "
                "each may have been billed; not sent again (--retry-failed sends the same "
                "key once more)",
                "unanswered",
            )
        try:
            # Built just before the call and dropped after it: with data URIs a body can
            # weigh megabytes, and only the creates on the wire should hold one. Built
            # before "submitting" is recorded, so reading images stays out of the window.
            body = request_body(work.job.shot)
        except InputError as error:
            return run.fail(work, error.message, "input")
        # The same create again after one that created nothing: recorded, not shown again.
        again = withdrawn
        if withdrawn:
            render.attempt += 1
            withdrawn = False
        move(render, "submitting")
        render.submitted_at = now_iso()
        render.api_base = run.context.render_base
        provider = run.client_for(work).profile
        render.provider = None if provider.name == "gateway" else provider.name
        render.provider_cost_unit = provider.cost_unit
        if provider.name in run.provider_bases and not run.context.simulated:
            render.api_base = run.provider_bases[provider.name]
        render.creates_sent += 1
        render.key_sends += 1
        run.record(work, f"attempt {render.attempt}", show=not again)
        run.creating.add(current)
        try:
            task = await run.client_for(work).create(body, render.idempotency_key)
        except RateLimited as error:
            run.heard()
            _unsent(render)
            # Refused, not created: nothing under this key to look for after a crash.
            withdrawn = _withdraw(render, ambiguous)
            run.record(work, "rate limited (429): waiting", event=False)
            run.view.retry(work.label, f"create: {error.message}; waiting for room")
            await _on_rate_limited(run, work, error)
            continue
        except TransientError as error:
            failures += 1
            last_error = error.message
            if error.sent:
                run.heard()
                ambiguous = True
            else:
                # Never reached the service: nothing to pay for, so no job fails of it;
                # only a long outage stops the run.
                _unsent(render)
                if _withdraw(render, ambiguous):
                    withdrawn = True
                    # Shown once for the whole run (``check_reachable``), not once per job.
                    run.record(work, f"not sent ({error.message}); waiting", show=False)
                if run.check_reachable(work, error):
                    delay = run.not_sent_delay(run.connect_backoff.delay(failures))
                    await run.sleep(run.retrying(work, "create", error, delay))
                    continue
                return Step.END
            if error.sent and not render.possible_duplicate:
                # Sent, but no task id came back (a lost answer, or a 5xx after which the
                # gateway may have created it on another channel): it may be billed.
                render.possible_duplicate = True
                run.record(work, f"no usable answer ({error.message}); same key again")
            await run.sleep(run.retrying(work, "create", error, run.create_backoff.delay(failures)))
            continue
        except AuthError:
            # 401/403: refused; the next run sends this attempt again under the same key.
            _unsent(render)
            _not_sent(run, work, ambiguous, "key refused")
            raise
        except NotFound as error:
            _unsent(render)
            if (error.code or "").lower() != "task_not_exist":
                # The route itself is missing: the API base is wrong, not this job.
                _not_sent(run, work, ambiguous, "the API base has no such route")
                profile = run.client_for(work).profile
                raise ConfigError(
                    f"the {profile.name} API at {run.base_of(profile.name)} has no route for "
                    f"creating a task ({error.message}); {profile.base_advice()}"
                ) from None
            # A replay of a task the service has forgotten (docs/running.md): a new attempt.
            reason = f"the service forgot the task of attempt {render.attempt}"
            if run.again(work, reason) is not Step.SUBMIT_NEW:
                return Step.END
            render.attempt += 1
            render.key_sends = 0
            ambiguous = False
            continue
        except Rejected as error:
            _unsent(render)
            return run.fail(work, f"rejected by the service: {error.message}", error.code)
        except UnusableAnswer as error:
            # Answered, so the task may exist and be billed, but it cannot be followed:
            # sending again could pay twice.
            run.heard()
            return run.fail(
                work,
                f"the service answered the create without a usable task id ({error.message}); "
                "it may have been billed; not sent again",
                "unusable_answer",
            )
        except ApiError as error:
            return run.fail(work, error.message, error.code)
        finally:
            run.creating.discard(current)
            del body
        break
    # The task id is written before anything else happens (docs/running.md): from here on a crash
    # leaves a task to poll, not a create to send again.
    run.heard()
    render.task_id = task.id
    render.provider_estimated_cost = task.estimated_cost
    move(render, "queued")
    run.record(work, f"task {task.id}")
    run.rate_limited_in_a_row = 0
    run.limit.on_accepted()
    work.deadline = time.time() + run.options.task_timeout
    work.task = task
    return Step.POLL


def _unsent(render: RenderRow) -> None:
    """A create answered in a way that proves it created nothing: not counted as sent."""
    render.creates_sent -= 1
    render.key_sends -= 1


def _withdraw(render: RenderRow, ambiguous: bool) -> bool:
    """After a create that created nothing: back to ``pending`` under the attempt number
    before, so the next send (this run's or the next run's) uses the same key. Unless an
    earlier send under this key may have created the task: it stays ``submitting``."""
    if ambiguous:
        return False
    move(render, "pending")
    render.attempt -= 1
    return True


def _not_sent(run: Run, work: Work, ambiguous: bool, detail: str) -> None:
    """A create refused before it could create anything, and the run stops."""
    _withdraw(work.render, ambiguous)
    run.record(work, detail)


async def _on_rate_limited(run: Run, work: Work, error: RateLimited) -> None:
    """A 429 on create: give the slot back, shrink the limit, wait for room again."""
    run.rate_limited_in_a_row += 1
    work.holds_slot = False
    await run.limit.release()
    # With tasks in flight, the smaller limit alone makes the wait (for one to finish);
    # with none, back off so a saturated service is not asked again at once.
    in_a_row = run.rate_limited_in_a_row
    wait = 0.0
    if error.retry_after is not None or run.limit.active == 0:
        wait = run.create_backoff.delay(in_a_row, error.retry_after)
        if in_a_row > 1:
            # A "Retry-After: 0" answered again and again must not become a tight loop.
            wait = max(wait, run.create_backoff.delay(in_a_row))
    run.limit.on_rate_limited(wait)
    await run.limit.acquire()
    work.holds_slot = True
