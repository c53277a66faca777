"""The run: bounded fan-out, earlier renders, the outage limit, stopping."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from runner.api.client import ApiClient, Downloaded
from runner.engine import StopSwitch, check_max_new
from runner.errors import ConfigError, Interrupted, Unreachable
from runner.jobs import expand_jobs
from runner.model import Shot
from runner.plan import PlanOptions, make_plan
from runner.sim import RunningSim
from runner.store import Store
from runner.view import View
from tests.engine.runs import (
    CreatesRaise,
    cannot_connect,
    left_in_flight,
    make_run,
    manifest_of,
    run_once,
)
from tests.plugins.sim_fixtures import StartSim


class _CountsTasks(ApiClient):
    """A client that notes how many coroutines the run has alive at each download."""

    most_tasks = 0

    async def download(self, url: str, part_path: Path, **kwargs: Any) -> Downloaded:
        self.most_tasks = max(self.most_tasks, len(asyncio.all_tasks()))
        return await super().download(url, part_path, **kwargs)


async def test_fetching_many_clips_keeps_a_few_coroutines(
    start_sim: StartSim, store: Store, out_dir: Path
) -> None:
    """30 deleted clips are fetched by a few workers, not 30 coroutines at once."""
    sim = start_sim(job_seconds=0.0)
    manifest = manifest_of(out_dir, *(f"prompt {i}" for i in range(30)))
    async with ApiClient(sim.base_url, "k") as client:
        assert (await run_once(manifest, store, client, concurrency=30)).done == 30
    for clip in out_dir.glob("*/take-1.mp4"):
        clip.unlink()
    async with _CountsTasks(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client, download_concurrency=2)
    assert result.delivered == 30
    assert client.most_tasks <= 6, client.most_tasks
    assert sim.recorder.tasks_created == 30


async def test_a_shot_edited_while_its_task_is_in_flight_still_collects_the_paid_clip(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """The old render of an edited shot is followed to its end and kept in .history/."""
    old = await left_in_flight(sim, store, manifest_of(out_dir, "waves"))
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest_of(out_dir, "an edited prompt"), store, client)
    assert (result.done, result.failed, result.earlier_collected) == (1, [], 1)
    assert store.renders()[old.key].state == "done"
    (kept,) = (out_dir / "s00" / ".history").glob("*.mp4")
    assert kept.name == f"take-1.{old.fingerprint[:12]}-g1.mp4"
    sidecar = json.loads(kept.with_suffix(".json").read_text())
    assert (sidecar["task_id"], sidecar["sha256"]) == (old.task_id, store.renders()[old.key].sha256)
    assert sim.recorder.tasks_created == 2


async def test_a_removed_shots_create_without_answer_is_not_sent_again(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A removed shot left 'submitting' is reported as possibly billed, never resent."""
    (job,) = expand_jobs(manifest_of(out_dir, "waves"))
    store.bind_jobs(None, [(job.shot.id, 1, job.fingerprint, 1)])
    render = store.renders()[(job.fingerprint, 1)]
    render.state, render.attempt = "submitting", 1
    store.update_render(None, render)
    shots = (Shot(id="s09", index=0, prompt="other", seconds=4),)
    manifest = dataclasses.replace(manifest_of(out_dir, "other"), shots=shots)
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    assert result.possibly_billed == ["s00/1 (earlier render)"]
    assert [c.json["prompt"] for c in sim.recorder.creates()] == ["other"]
    assert store.renders()[render.key].state == "submitting"


class _Lines(View):
    """A view that keeps what it is told."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def state(self, label: str, state: str, detail: str = "") -> None:
        self.lines.append(f"{label} {state}: {detail}")


async def test_an_api_never_reached_stops_the_run_early_leaving_jobs_pending(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Nothing of the run reached the API (a refused port, a wrong base): the run stops early
    (exit 2) naming the base and the cause, jobs still pending, the failure shown once."""
    manifest = manifest_of(out_dir, "waves", "dunes", "gulls")
    view = _Lines()
    async with CreatesRaise(sim.base_url, cannot_connect) as client:
        run = make_run(manifest, store, client, unreachable_at_start=0.5)
        run.view = view
        result = await run.execute()
    assert isinstance(result.stopped_by, ConfigError) and not result.interrupted
    message = result.stopped_by.message
    assert message.startswith("cannot reach the API at http://sim/v1 (ConnectError")
    assert "nothing was billed" in message and "--api-base" in message
    assert {(r.state, r.attempt, r.error_code) for r in store.renders().values()} == {
        ("pending", 0, None)
    }
    assert len([line for line in view.lines if "not sent" in line]) == 1, view.lines


async def test_a_request_never_sent_waits_no_longer_than_the_run_may_stay_unanswered(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """The back-off before trying a request that never reached the API again ends when the
    run would stop for the API's silence: 20 s at the start (a wrong base), not the 31 s of
    the next back-off; once the API has answered, the long outage limit applies."""
    manifest = manifest_of(out_dir, "waves")
    async with ApiClient(sim.base_url, "k") as client:
        run = make_run(manifest, store, client, unreachable_at_start=20.0, unreachable_after=600)
        assert 19.0 < run.not_sent_delay(60.0) <= 20.0
        assert run.not_sent_delay(2.0) == 2.0
        run.heard()
        assert run.not_sent_delay(60.0) == 60.0


class _CreatesOnceThenCannotConnect(ApiClient):
    """A client whose first create reaches the service and whose later ones never leave."""

    calls = 0

    async def create(self, body: dict[str, Any], idempotency_key: str) -> Any:
        self.calls += 1
        if self.calls == 1:
            return await super().create(body, idempotency_key)
        await asyncio.sleep(0)
        raise cannot_connect()


async def test_an_api_that_answered_once_gets_the_outage_tolerance(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Once the API answered in this run, connect errors fail no job until the outage limit
    (exit 1, run again to continue), however short the limit at the start."""
    manifest = manifest_of(out_dir, "waves", "dunes")
    async with _CreatesOnceThenCannotConnect(sim.base_url, "k") as client:
        # One at a time: the second create is tried only after the first was answered.
        result = await run_once(
            manifest, store, client, concurrency=1, unreachable_at_start=0.01, unreachable_after=0.5
        )
    assert isinstance(result.stopped_by, Unreachable) and not result.interrupted
    assert result.stopped_by.message.startswith("the API at http://sim/v1 is unreachable")
    assert result.stopped_by.message.endswith("run again to continue")
    assert {(r.state, r.attempt) for r in store.renders().values()} == {("done", 1), ("pending", 0)}


def test_max_new_does_not_count_a_timed_out_render_whose_task_is_asked_first(
    store: Store, out_dir: Path
) -> None:
    """--retry-failed --max-new 0: a timed-out render with its task is a resume, not a create."""
    manifest = manifest_of(out_dir, "waves")
    (job,) = expand_jobs(manifest)
    store.bind_jobs(None, [(job.shot.id, 1, job.fingerprint, 1)])
    render = store.renders()[(job.fingerprint, 1)]
    render.state, render.attempt, render.task_id = "failed", 1, "task-1"
    render.error, render.error_code = "timed out", "timeout"
    store.update_render(None, render)
    plan = make_plan(expand_jobs(manifest), store, PlanOptions(retry_failed=True))
    check_max_new(plan, 0)
    assert (plan.summary.tasks_to_submit, plan.summary.renders["resume"]) == (0, 1)


async def test_a_sleep_wakes_at_once_when_the_run_stops(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A coroutine sleeping between polls wakes (cancelled) as soon as the run stops, and a
    sleep that runs its course returns and leaves nothing behind."""
    async with ApiClient(sim.base_url, "k") as client:
        engine = make_run(manifest_of(out_dir, "waves"), store, client)
        await engine.sleep(0.01)
        sleeping = asyncio.ensure_future(engine.sleep(60))
        await asyncio.sleep(0.05)
        assert not sleeping.done() and len(engine._sleepers) == 1
        engine.stop()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(sleeping, 1)
        assert not engine._sleepers
        with pytest.raises(asyncio.CancelledError):
            await engine.sleep(60)


async def test_a_stop_asked_before_the_run_sends_nothing_and_says_so(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A stop asked for (a signal) before the run starts: nothing is sent, and the message
    claims no task is left rendering."""
    switch = StopSwitch()
    assert switch.request() is False  # no run yet: the caller interrupts by itself
    async with ApiClient(sim.base_url, "k") as client:
        run = make_run(manifest_of(out_dir, "waves", "dunes"), store, client)
        run.stop_switch = switch
        result = await run.execute()
    assert result.interrupted and isinstance(result.stopped_by, Interrupted)
    assert result.stopped_by.message.startswith("interrupted before any task was submitted")
    assert sim.recorder.creates() == []
    assert {r.state for r in store.renders().values()} == {"pending"}
