"""The poll step: following a task until it finishes, in-process against the simulator."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.api.client import ApiClient
from runner.api.errors import (
    NotFound,
    RateLimited,
    TransientError,
)
from runner.errors import ShotrunnerError
from runner.jobs import expand_jobs, request_body
from runner.plan import make_plan
from runner.retry import instant_retries
from runner.sim import RunningSim
from runner.store import RenderRow, Store
from tests.engine.runs import (
    delivered_once,
    manifest_of,
    run_once,
)
from tests.plugins.sim_fixtures import StartSim


class _PollsFail(ApiClient):
    """A client whose polls all fail (a gateway outage after the create)."""

    async def retrieve(self, task_id: str) -> Any:
        await asyncio.sleep(0)
        raise TransientError("502 Bad Gateway", status=502)


async def test_a_task_that_cannot_be_polled_stays_in_flight_for_the_next_run(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Polls failing all run long: exit 1 with the task kept in flight; the next run collects it."""
    manifest = manifest_of(out_dir, "waves")
    with instant_retries():
        async with _PollsFail(sim.base_url, "k") as client:
            first = await run_once(manifest, store, client)
    ((_, reason),) = first.failed
    assert "the next run asks it again" in reason
    (render,) = store.renders().values()
    assert render.state in ("queued", "running") and render.task_id is not None
    assert make_plan(expand_jobs(manifest), store).jobs[0].action == "resume"
    async with ApiClient(sim.base_url, "k") as client:
        second = await run_once(manifest, store, client)
    assert (second.done, second.failed) == (1, [])
    assert sim.recorder.tasks_created == 1
    assert store.renders()[render.key].error is None


class _PollsRateLimitedForAges(ApiClient):
    """A client whose polls are all answered 429 with a Retry-After of years."""

    async def retrieve(self, task_id: str) -> Any:
        await asyncio.sleep(0)
        raise RateLimited("429 Too Many Requests", retry_after=1e9)


async def test_no_wait_for_a_poll_outlasts_the_task_s_deadline(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A Retry-After of years on every poll: the waits end at --task-timeout (1 s here), and
    the task times out then, kept, not minutes later after a capped back-off."""
    manifest = manifest_of(out_dir, "waves")
    async with _PollsRateLimitedForAges(sim.base_url, "k") as client:
        result = await asyncio.wait_for(run_once(manifest, store, client, task_timeout=1.0), 30)
    ((_, reason),) = result.failed
    assert "timed out after 1 s" in reason
    assert sim.recorder.tasks_created == 1


async def test_polls_wait_for_the_finish_seen_on_earlier_tasks_of_the_kind(
    start_sim: StartSim, store: Store, out_dir: Path
) -> None:
    """Once tasks of a kind were seen to take ~0.6 s, later ones are not asked every 0.05 s."""
    sim = start_sim(job_seconds=0.6)
    manifest = manifest_of(out_dir, *(f"prompt {i}" for i in range(5)))
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client, concurrency=1)
    assert result.done == 5
    polls: dict[str, int] = {}
    for request in sim.recorder.requests:
        if request.method == "GET" and request.path.startswith("/v1/videos/") and request.task_id:
            polls[request.task_id] = polls.get(request.task_id, 0) + 1
    per_task = list(polls.values())  # in submission order (one task at a time)
    assert per_task[0] >= 6, per_task  # the first is asked at the interval
    assert per_task[-1] <= per_task[0] // 2, per_task


class _FirstPollNotFound(ApiClient):
    """A client whose first poll of each task answers 404 (a replica not yet aware of it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: set[str] = set()

    async def retrieve(self, task_id: str) -> Any:
        if task_id not in self.asked:
            self.asked.add(task_id)
            raise NotFound(f"task {task_id} does not exist", status=404, code="task_not_exist")
        return await super().retrieve(task_id)


async def test_a_single_404_on_a_new_task_is_asked_again_not_paid_again(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """One 404 right after the create is confirmed by a second poll before any resubmission."""
    manifest = manifest_of(out_dir, "waves")
    async with _FirstPollNotFound(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    assert result.done == 1
    assert sim.recorder.tasks_created == 1
    assert [c.headers["idempotency-key"][-3:] for c in sim.recorder.creates()] == ["-a1"]


class _PollsCannotConnect(ApiClient):
    """A client whose polls never leave the machine (the API went away after the create)."""

    async def retrieve(self, task_id: str) -> Any:
        await asyncio.sleep(0)
        raise TransientError("ConnectError: connection refused (not sent)", sent=False)


async def test_polls_that_cannot_connect_keep_the_task_until_the_outage_limit(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Connect errors on polls are not counted as the task's failures: the outage limit ends it."""
    manifest = manifest_of(out_dir, "waves")
    with instant_retries():
        async with _PollsCannotConnect(sim.base_url, "k") as client:
            result = await run_once(manifest, store, client, unreachable_after=0.3)
    assert isinstance(result.stopped_by, ShotrunnerError)
    assert "is unreachable" in result.stopped_by.message
    (render,) = store.renders().values()
    assert (render.state, render.error_code) == ("queued", None)


async def test_a_resumed_run_collects_a_task_that_finished_past_its_deadline(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Resumed hours later: the task is asked before the deadline is judged, and collected."""
    manifest = manifest_of(out_dir, "waves")
    final, content = await delivered_once(sim, store, manifest)
    (render,) = store.renders().values()
    render.state, render.sha256, render.bytes = "running", None, None
    render.submitted_at = "2026-01-01T00:00:00.000000+00:00"
    store.update_render(None, render)
    (row,) = store.jobs().values()
    store.record_file_moved(None, row, "test: back to running")
    final.unlink()
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    assert result.failed == []
    assert result.delivered == 1
    assert final.read_bytes() == content


def _progress_writes(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """Record the progress of every store write that is not a change of state."""
    writes: list[float | None] = []
    update = store.update_render

    def spy(run_id: str | None, render: RenderRow, **kwargs: Any) -> None:
        if kwargs.get("event") is False:
            writes.append(render.progress)
        update(run_id, render, **kwargs)

    monkeypatch.setattr(store, "update_render", spy)
    return writes


@pytest.mark.parametrize("every", [5.0, 0.0])
async def test_progress_alone_is_written_at_most_every_few_seconds(
    start_sim: StartSim,
    store: Store,
    out_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    every: float,
) -> None:
    """A task polled twenty times in a second writes its progress alone once (every 5 s), not on
    every poll; the finished render is written whole all the same."""
    monkeypatch.setattr("runner.engine.poll.PROGRESS_SAVE_SECONDS", every)
    sim = start_sim(job_seconds=1.0)
    manifest = manifest_of(out_dir, "waves")
    writes = _progress_writes(store, monkeypatch)
    async with ApiClient(sim.base_url, "k") as client:
        await run_once(manifest, store, client)
    polls = [r for r in sim.recorder.requests if r.method == "GET" and r.listener == "api"]
    assert len(polls) >= 8
    if every:
        assert len(writes) == 1
    else:
        assert len(writes) >= 5
    (render,) = store.renders().values()
    assert (render.state, render.progress) == ("done", 100.0)


async def test_tasks_found_done_on_resume_teach_the_planner_nothing(
    start_sim: StartSim, store: Store, out_dir: Path
) -> None:
    """Tasks submitted hours ago and found done at the first poll of a resumed run did not take
    hours: new tasks of the kind are still asked at the interval, not hours later."""
    sim = start_sim(job_seconds=0.0)
    manifest = manifest_of(out_dir, *(f"prompt {i}" for i in range(4)))
    jobs = expand_jobs(manifest)
    store.bind_jobs(None, [(job.shot.id, job.take, job.fingerprint, 1) for job in jobs[:3]])
    hours_ago = datetime.fromtimestamp(time.time() - 3 * 3600, tz=UTC).isoformat()
    async with ApiClient(sim.base_url, "k") as client:
        for job in jobs[:3]:
            render = store.renders()[(job.fingerprint, 1)]
            task = await client.create(request_body(job.shot), render.idempotency_key)
            render.state, render.attempt, render.task_id = "queued", 1, task.id
            render.submitted_at = hours_ago
            store.update_render(None, render)
        # Learning "three hours" from them would hold the new task's first poll for hours.
        result = await asyncio.wait_for(run_once(manifest, store, client), 20)
    assert result.done == 4
