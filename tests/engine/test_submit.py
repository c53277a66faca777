"""The submit step: the money path of a create, in-process against the simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from runner.api.client import ApiClient
from runner.api.errors import (
    NotFound,
    RateLimited,
    Rejected,
    TransientError,
    UnusableAnswer,
)
from runner.errors import ConfigError, Interrupted
from runner.jobs import expand_jobs
from runner.retry import instant_retries
from runner.sim import RunningSim
from runner.store import Store
from tests.engine.runs import (
    CreatesRaise,
    cannot_connect,
    key_refused,
    make_run,
    manifest_of,
    no_such_route,
    run_once,
)
from tests.plugins.sim_fixtures import StartSim


async def test_submitting_row_at_start_is_sent_again_with_the_same_key(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A crash between 'submitting' and the answer: same key again, flagged possible duplicate."""
    manifest = manifest_of(out_dir, "waves")
    (job,) = expand_jobs(manifest)
    store.bind_jobs(None, [(job.shot.id, 1, job.fingerprint, 1)])
    render = store.renders()[(job.fingerprint, 1)]
    render.state, render.attempt = "submitting", 1
    store.update_render(None, render)
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    (create,) = sim.recorder.creates()
    assert create.headers["idempotency-key"] == f"{job.fingerprint}-g1-a1"
    assert result.possible_duplicates == ["s00/1 (1 creates sent)"]
    assert store.renders()[(job.fingerprint, 1)].state == "done"


class _LostThenRateLimited(ApiClient):
    """A client whose first create loses its answer and whose second is answered 429."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rate_limited = asyncio.Event()
        self.calls = 0

    async def create(self, body: dict[str, Any], idempotency_key: str) -> Any:
        self.calls += 1
        await asyncio.sleep(0)  # a real create waits for the network
        if self.calls == 1:
            raise TransientError("connection reset (sent; the answer was lost)", sent=True)
        self.rate_limited.set()
        raise RateLimited("upstream saturated", retry_after=30)


async def test_a_429_after_a_lost_answer_keeps_the_key_across_a_crash(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Lost answer, then 429, then kill -9: the next run sends the same key, not a new attempt."""
    manifest = manifest_of(out_dir, "waves")
    engine = make_run(manifest, store, _LostThenRateLimited(sim.base_url, "k"))
    running = asyncio.ensure_future(engine.execute())
    await asyncio.wait_for(engine.client.rate_limited.wait(), 10)  # type: ignore[attr-defined]
    await asyncio.sleep(0.05)
    for task in [running, *engine.tasks]:  # a crash: nothing more is written
        task.cancel()
    await asyncio.gather(running, *engine.tasks, return_exceptions=True)
    await engine.client.aclose()
    (render,) = store.renders().values()
    assert (render.state, render.attempt, render.possible_duplicate) == ("submitting", 1, True)
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    (create,) = sim.recorder.creates()
    assert create.headers["idempotency-key"] == f"{render.fingerprint}-g1-a1"
    assert result.done == 1


class _RejectsOnePrompt(ApiClient):
    """A client whose service refuses one prompt with 400, as it would an invalid field."""

    async def create(self, body: dict[str, Any], idempotency_key: str) -> Any:
        if body["prompt"] == "refused":
            raise Rejected("'seconds' is out of range.", status=400, code="invalid_request")
        return await super().create(body, idempotency_key)


async def test_a_400_on_create_fails_that_job_and_the_others_go_on(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """400/422 on create: that job fails with the server's message, the rest are delivered."""
    manifest = manifest_of(out_dir, "waves", "refused", "dunes")
    async with _RejectsOnePrompt(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    assert result.done == 2
    ((key, reason),) = result.failed
    assert key == "s01/1"
    assert "'seconds' is out of range." in reason
    assert sim.recorder.tasks_created == 2


class _UnkeepableIdForOnePrompt(ApiClient):
    """A client whose service creates every task, but answers one prompt's create with a task
    id that cannot be kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keys: list[str] = []

    async def create(self, body: dict[str, Any], idempotency_key: str) -> Any:
        self.keys.append(idempotency_key)
        task = await super().create(body, idempotency_key)
        if body["prompt"] == "hostile":
            raise UnusableAnswer("a task id with control characters", status=200)
        return task


async def test_a_create_answered_with_an_unusable_task_id_fails_once_and_is_not_resent(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """An answer without a task id this client can keep: that job fails, said to be possibly
    billed, its create never sent again; the other jobs are delivered."""
    manifest = manifest_of(out_dir, "waves", "hostile", "dunes")
    async with _UnkeepableIdForOnePrompt(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    assert result.done == 2
    ((key, reason),) = result.failed
    assert key == "s01/1"
    assert "without a usable task id" in reason and "may have been billed" in reason
    assert len(client.keys) == 3 and len(set(client.keys)) == 3
    hostile = next(r for r in store.renders().values() if r.task_id is None)
    assert (hostile.state, hostile.error_code, hostile.creates_sent) == (
        "failed",
        "unusable_answer",
        1,
    )


class _ForgetsFirstCreate(ApiClient):
    """A client whose first create is a replay of a task the service has forgotten."""

    calls = 0

    async def create(self, body: dict[str, Any], idempotency_key: str) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise NotFound("no such task", status=400, code="task_not_exist")
        return await super().create(body, idempotency_key)


async def test_a_create_answered_task_not_exist_is_a_new_attempt(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """task_not_exist on create: the task was forgotten; a new attempt (new key) renders it."""
    manifest = manifest_of(out_dir, "waves")
    async with _ForgetsFirstCreate(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    assert (result.done, result.failed) == (1, [])
    (create,) = sim.recorder.creates()
    assert create.headers["idempotency-key"].endswith("-g1-a2")


async def test_a_404_on_create_stops_the_run_about_the_api_base_failing_nothing(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A route that does not exist: exit 2 about --api-base; every job stays pending."""
    manifest = manifest_of(out_dir, "waves", "dunes")
    async with CreatesRaise(sim.base_url, no_such_route) as client:
        result = await run_once(manifest, store, client)
    assert isinstance(result.stopped_by, ConfigError)
    assert "--api-base" in result.stopped_by.message and "/v1" in result.stopped_by.message
    assert {(r.state, r.attempt) for r in store.renders().values()} == {("pending", 0)}


class _AnswersLost(ApiClient):
    """A client whose creates all reach the service but whose answers are all lost."""

    async def create(self, body: dict[str, Any], idempotency_key: str) -> Any:
        await super().create(body, idempotency_key)
        raise TransientError("read timeout (sent; the answer was lost)", sent=True)


async def test_a_create_whose_answers_keep_getting_lost_is_sent_three_times_in_all(
    start_sim: StartSim, store: Store, out_dir: Path
) -> None:
    """A gateway that ignores the key may bill each resend: 3 sends, then failed and flagged."""
    sim = start_sim(ignore_idempotency=True)
    manifest = manifest_of(out_dir, "waves")
    with instant_retries():
        async with _AnswersLost(sim.base_url, "k") as client:
            result = await run_once(manifest, store, client)
    assert sim.recorder.tasks_created == 3
    (render,) = store.renders().values()
    assert (render.state, render.possible_duplicate, render.creates_sent) == ("failed", True, 3)
    assert "possible duplicate: 3 creates sent" in (render.error or "")
    assert result.possible_duplicates == ["s00/1 (3 creates sent)"]


async def test_a_stop_while_a_create_could_not_connect_leaves_it_pending(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Ctrl-C in the back-off after a connect error: pending, so no false possible duplicate."""
    manifest = manifest_of(out_dir, "waves")
    engine = make_run(manifest, store, CreatesRaise(sim.base_url, cannot_connect))
    running = asyncio.ensure_future(engine.execute())
    await asyncio.wait_for(engine.client.tried.wait(), 10)  # type: ignore[attr-defined]
    await asyncio.sleep(0.05)
    engine.stop()
    stopped = await running
    assert isinstance(stopped.stopped_by, Interrupted) and stopped.interrupted
    await engine.client.aclose()
    (render,) = store.renders().values()
    assert (render.state, render.attempt, render.possible_duplicate) == ("pending", 0, False)
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    assert (result.done, result.possible_duplicates) == (1, [])
    (create,) = sim.recorder.creates()
    assert create.headers["idempotency-key"].endswith("-g1-a1")


async def test_a_refused_key_is_reported_once_with_what_to_check(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """401: exit 2 with one 'refused the key' and the variable to check, not the phrase twice."""
    async with CreatesRaise(sim.base_url, key_refused) as client:
        result = await run_once(manifest_of(out_dir, "waves"), store, client)
    assert isinstance(result.stopped_by, ConfigError)
    assert result.stopped_by.message.count("refused the key") == 1
    assert "SHOTRUNNER_API_KEY" in result.stopped_by.message


async def test_max_new_caps_resubmissions_during_the_run(
    start_sim: StartSim, store: Store, out_dir: Path
) -> None:
    """--max-new 1: a task that fails remotely is not sent again; the job fails saying why."""
    sim = start_sim(fail_rate=1.0)
    manifest = manifest_of(out_dir, "waves")
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client, max_new=1, max_attempts=3)
    assert sim.recorder.tasks_created == 1
    ((_, reason),) = result.failed
    assert reason == "not submitted: --max-new 1 reached"
