"""Creating tasks, the money path: ``submitting`` recorded before a create is sent, the task
id the moment its answer arrives, the same idempotency key for a lost answer (a possible
duplicate, at most ``MAX_AMBIGUOUS_SENDS`` sends), ``pending`` again after a create that
created nothing; and whether another attempt is allowed at all."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from runner.api.errors import (
    ApiError,
    AuthError,
    NotFound,
    RateLimited,
    Rejected,
    TransientError,
)
from runner.engine.base import EngineBase
from runner.engine.work import Work
from runner.errors import ConfigError, InputError
from runner.store import RenderRow, now_iso

if TYPE_CHECKING:
    from runner.api.task import Task

#: Creates sent in all under one key whose answers were lost: a gateway that ignores the key
#: may bill each one, so after these the render fails (flagged) instead of sending again.
MAX_AMBIGUOUS_SENDS = 3


class SubmitMixin(EngineBase):
    """Sending creates for a render, and deciding on another attempt."""

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
            if not self._may_create(work):
                return None
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
