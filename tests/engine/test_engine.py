"""The engine in-process against the simulator: the windows a crash or a slow link opens."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.api.client import ApiClient, Downloaded
from runner.api.errors import (
    ApiError,
    AuthError,
    NotFound,
    RateLimited,
    Rejected,
    TransientError,
)
from runner.delivery import clip_relpath, part_of
from runner.engine import Run, RunContext, RunOptions, check_max_new
from runner.errors import ConfigError, Interrupted, ShotrunnerError, Unreachable
from runner.jobs import expand_jobs, provenance_request, request_body
from runner.model import Manifest, RunResult, Shot
from runner.plan import PlanOptions, make_plan
from runner.retry import instant_retries
from runner.sim import RunningSim
from runner.store import RenderRow, Store
from tests.plugins.sim_fixtures import StartSim


def _manifest(out_dir: Path, *prompts: str) -> Manifest:
    shots = tuple(
        Shot(id=f"s{i:02d}", index=i, prompt=prompt, seconds=4) for i, prompt in enumerate(prompts)
    )
    return Manifest(
        path=out_dir.parent / "m.yaml",
        display_path="m.yaml",
        name="m",
        output_dir=out_dir,
        sha256="0" * 64,
        shots=shots,
    )


def _engine(manifest: Manifest, store: Store, client: ApiClient, **options: Any) -> Run:
    """A run over the whole manifest, polling fast, as a simulated run."""
    return Run(
        store=store,
        client=client,
        plan=make_plan(expand_jobs(manifest), store),
        options=RunOptions(poll_interval=0.05, **options),
        context=RunContext(manifest=manifest, api_base="http://sim/v1", simulated=True),
        request_body=request_body,
        provenance_request=provenance_request,
    )


async def _run(manifest: Manifest, store: Store, client: ApiClient, **options: Any) -> RunResult:
    return await _engine(manifest, store, client, **options).execute()


async def test_submitting_row_at_start_is_sent_again_with_the_same_key(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A crash between 'submitting' and the answer: same key again, flagged possible duplicate."""
    manifest = _manifest(out_dir, "waves")
    (job,) = expand_jobs(manifest)
    store.bind_jobs(None, [(job.shot.id, 1, job.fingerprint, 1)])
    render = store.renders()[(job.fingerprint, 1)]
    render.state, render.attempt = "submitting", 1
    store.update_render(None, render)
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    (create,) = sim.recorder.creates()
    assert create.headers["idempotency-key"] == f"{job.fingerprint}-g1-a1"
    assert result.possible_duplicates == ["s00/1 (1 creates sent)"]
    assert store.renders()[(job.fingerprint, 1)].state == "done"


async def test_downloaded_part_found_at_start_is_delivered_without_network(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A crash after the download was recorded but before the rename: the part is put in place."""
    manifest = _manifest(out_dir, "waves")
    (job,) = expand_jobs(manifest)
    content = b"a whole clip"
    store.bind_jobs(None, [(job.shot.id, 1, job.fingerprint, 1)])
    render = store.renders()[(job.fingerprint, 1)]
    render.state, render.attempt, render.task_id = "done", 1, "video_x"
    render.sha256, render.bytes = hashlib.sha256(content).hexdigest(), len(content)
    store.update_render(None, render)
    final = out_dir / clip_relpath(job.shot.id, 1)
    final.parent.mkdir(parents=True)
    part_of(final).write_bytes(content)
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert final.read_bytes() == content
    assert result.delivered == 1
    assert sim.recorder.requests == []


async def test_unknown_file_at_a_final_path_moves_to_history(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A file the store does not know, where a clip goes, is kept in .history/, never deleted."""
    manifest = _manifest(out_dir, "waves")
    stranger = out_dir / "s00" / "take-1.mp4"
    stranger.parent.mkdir(parents=True)
    stranger.write_bytes(b"someone else's clip")
    async with ApiClient(sim.base_url, "k") as client:
        await _run(manifest, store, client)
    (kept,) = (out_dir / "s00" / ".history").glob("*.mp4")
    assert kept.read_bytes() == b"someone else's clip"
    assert stranger.read_bytes() != b"someone else's clip"


class _SlowFirstDownload(ApiClient):
    """A client whose first download starts late, after its link has expired."""

    delayed = False

    async def download(self, url: str, part_path: Path, **kwargs: Any) -> Downloaded:
        if not self.delayed:
            self.delayed = True
            await asyncio.sleep(0.4)
        return await super().download(url, part_path, **kwargs)


async def test_expired_link_is_replaced_by_a_fresh_one(
    start_sim: StartSim, store: Store, out_dir: Path
) -> None:
    """A download link that expired (403) makes the engine ask the task again, then succeed."""
    sim = start_sim(url_ttl=0.2)
    manifest = _manifest(out_dir, "waves")
    async with _SlowFirstDownload(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert result.delivered == 1
    # The server records a download once its last byte is written, maybe just after the client
    # read it: give the record a moment.
    for _ in range(100):
        statuses = [r.status for r in sim.recorder.on("files")]
        if statuses and statuses[-1] == 200:
            break
        await asyncio.sleep(0.02)
    assert statuses[0] == 403 and statuses[-1] == 200
    assert sim.recorder.tasks_created == 1


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
    manifest = _manifest(out_dir, "waves")
    engine = _engine(manifest, store, _LostThenRateLimited(sim.base_url, "k"))
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
        result = await _run(manifest, store, client)
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
    manifest = _manifest(out_dir, "waves", "refused", "dunes")
    async with _RejectsOnePrompt(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert result.done == 2
    ((key, reason),) = result.failed
    assert key == "s01/1"
    assert "'seconds' is out of range." in reason
    assert sim.recorder.tasks_created == 2


async def _delivered_once(sim: RunningSim, store: Store, manifest: Manifest) -> tuple[Path, bytes]:
    async with ApiClient(sim.base_url, "k") as client:
        await _run(manifest, store, client)
    # The simulator records a download after its last byte, maybe after the run ended: wait,
    # so that a test clearing the recorder next does not get this download's record later.
    deadline = asyncio.get_running_loop().time() + 5
    while not _downloads(sim):
        assert asyncio.get_running_loop().time() < deadline, "the download was never recorded"
        await asyncio.sleep(0.01)
    (job,) = expand_jobs(manifest)
    final = manifest.output_dir / clip_relpath(job.shot.id, job.take)
    return final, final.read_bytes()


async def test_a_crash_mid_download_resumes_the_part_from_the_same_task(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Killed while downloading: the half-written part is completed; no new task, no new key."""
    manifest = _manifest(out_dir, "waves")
    final, content = await _delivered_once(sim, store, manifest)
    (render,) = store.renders().values()
    render.state, render.sha256, render.bytes = "downloading", None, None
    store.update_render(None, render)
    (row,) = store.jobs().values()
    store.record_file_moved(None, row, "test: back to mid-download")
    final.unlink()
    final.with_suffix(".json").unlink()
    part_of(final).write_bytes(content[: len(content) // 2])
    assert render.task_id is not None
    store.set_part_owner(part_of(final).relative_to(out_dir).as_posix(), render.task_id)
    created = sim.recorder.tasks_created
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert result.delivered == 1
    assert final.read_bytes() == content
    assert not part_of(final).exists()
    assert sim.recorder.tasks_created == created
    assert any("range" in r.headers for r in _downloads(sim))


def _downloads(sim: RunningSim) -> list[Any]:
    return [
        r
        for r in sim.recorder.requests
        if r.method == "GET" and (r.listener == "files" or r.path.endswith("/content"))
    ]


async def test_a_part_left_by_an_edited_shots_earlier_task_is_not_resumed(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A part written by another task is deleted, not continued with Range onto its bytes."""
    final, content = await _delivered_once(sim, store, _manifest(out_dir, "waves"))
    (old,) = store.renders().values()
    assert old.task_id is not None
    part = part_of(final)
    part.write_bytes(content[: len(content) // 2])
    store.set_part_owner(part.relative_to(out_dir).as_posix(), old.task_id)
    sim.recorder.clear()
    edited = _manifest(out_dir, "storm")
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(edited, store, client)
    assert result.delivered == 1
    assert all("range" not in r.headers for r in _downloads(sim))
    (row,) = store.jobs().values()
    assert row.file_sha256 == hashlib.sha256(final.read_bytes()).hexdigest()
    assert final.stat().st_size == store.renders()[row.render_key].bytes
    assert not part.exists()


async def test_a_part_of_unknown_origin_is_not_resumed(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A part with no recorded owner (swapped shot ids, a lost record) is downloaded afresh."""
    manifest = _manifest(out_dir, "waves")
    (job,) = expand_jobs(manifest)
    final = out_dir / clip_relpath(job.shot.id, job.take)
    final.parent.mkdir(parents=True)
    part_of(final).write_bytes(b"bytes of some other clip")
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert result.delivered == 1
    assert all("range" not in r.headers for r in _downloads(sim))
    assert not final.read_bytes().startswith(b"bytes of some other clip")


async def test_a_delivered_jobs_leftover_part_is_removed(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A part another render left beside a job's clip goes once the clip is delivered there."""
    manifest = _manifest(out_dir, "waves", "waves")
    second = out_dir / clip_relpath("s01", 1)
    second.parent.mkdir(parents=True)
    relative = part_of(second).relative_to(out_dir).as_posix()
    part_of(second).write_bytes(b"half of another clip")
    store.set_part_owner(relative, "task-of-another-render")
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert result.delivered == 2
    assert not part_of(second).exists()
    assert store.part_owner(relative) is None


async def test_delivered_clips_leave_no_part_owner_records(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Once a clip is renamed into place, no part file and no owner record of it remain."""
    manifest = _manifest(out_dir, "waves", "waves")
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert result.delivered == 2
    assert not list(out_dir.rglob("*.part"))
    assert list(store.db.query("select * from parts")) == []


async def test_a_crash_mid_sidecar_write_is_finished_without_network(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Killed after the rename, while writing the sidecar: the next run writes it and records."""
    manifest = _manifest(out_dir, "waves")
    final, content = await _delivered_once(sim, store, manifest)
    sidecar = final.with_suffix(".json")
    part_of(sidecar).write_text(sidecar.read_text()[:10])
    sidecar.unlink()
    (row,) = store.jobs().values()
    store.record_file_moved(None, row, "test: crash before the record")
    sim.recorder.clear()
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert result.delivered == 1
    assert final.read_bytes() == content
    assert json.loads(sidecar.read_text())["sha256"] == hashlib.sha256(content).hexdigest()
    assert not part_of(sidecar).exists()
    assert sim.recorder.requests == []


class _PollsFail(ApiClient):
    """A client whose polls all fail (a gateway outage after the create)."""

    async def retrieve(self, task_id: str) -> Any:
        await asyncio.sleep(0)
        raise TransientError("502 Bad Gateway", status=502)


async def test_a_task_that_cannot_be_polled_stays_in_flight_for_the_next_run(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Polls failing all run long: exit 1 with the task kept in flight; the next run collects it."""
    manifest = _manifest(out_dir, "waves")
    with instant_retries():
        async with _PollsFail(sim.base_url, "k") as client:
            first = await _run(manifest, store, client)
    ((_, reason),) = first.failed
    assert "the next run asks it again" in reason
    (render,) = store.renders().values()
    assert render.state in ("queued", "running") and render.task_id is not None
    assert make_plan(expand_jobs(manifest), store).jobs[0].action == "resume"
    async with ApiClient(sim.base_url, "k") as client:
        second = await _run(manifest, store, client)
    assert (second.done, second.failed) == (1, [])
    assert sim.recorder.tasks_created == 1
    assert store.renders()[render.key].error is None


async def test_polls_wait_for_the_finish_seen_on_earlier_tasks_of_the_kind(
    start_sim: StartSim, store: Store, out_dir: Path
) -> None:
    """Once tasks of a kind were seen to take ~0.6 s, later ones are not asked every 0.05 s."""
    sim = start_sim(job_seconds=0.6)
    manifest = _manifest(out_dir, *(f"prompt {i}" for i in range(5)))
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(manifest, store, client, concurrency=1)
    assert result.done == 5
    polls: dict[str, int] = {}
    for request in sim.recorder.requests:
        if request.method == "GET" and request.path.startswith("/v1/videos/") and request.task_id:
            polls[request.task_id] = polls.get(request.task_id, 0) + 1
    per_task = list(polls.values())  # in submission order (one task at a time)
    assert per_task[0] >= 6, per_task  # the first is asked at the interval
    assert per_task[-1] <= per_task[0] // 2, per_task


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
    manifest = _manifest(out_dir, *(f"prompt {i}" for i in range(30)))
    async with ApiClient(sim.base_url, "k") as client:
        assert (await _run(manifest, store, client, concurrency=30)).done == 30
    for clip in out_dir.glob("*/take-1.mp4"):
        clip.unlink()
    async with _CountsTasks(sim.base_url, "k") as client:
        result = await _run(manifest, store, client, download_concurrency=2)
    assert result.delivered == 30
    assert client.most_tasks <= 6, client.most_tasks
    assert sim.recorder.tasks_created == 30


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
    manifest = _manifest(out_dir, "waves")
    async with _FirstPollNotFound(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert result.done == 1
    assert sim.recorder.tasks_created == 1
    assert [c.headers["idempotency-key"][-3:] for c in sim.recorder.creates()] == ["-a1"]


async def _left_in_flight(sim: RunningSim, store: Store, manifest: Manifest) -> RenderRow:
    """The manifest's one job submitted by an earlier run that stopped while it rendered."""
    (job,) = expand_jobs(manifest)
    store.bind_jobs(None, [(job.shot.id, job.take, job.fingerprint, 1)])
    render = store.renders()[(job.fingerprint, 1)]
    async with ApiClient(sim.base_url, "k") as client:
        task = await client.create(request_body(job.shot), render.idempotency_key)
    render.state, render.attempt, render.task_id = "queued", 1, task.id
    store.update_render(None, render)
    return render


async def test_a_shot_edited_while_its_task_is_in_flight_still_collects_the_paid_clip(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """The old render of an edited shot is followed to its end and kept in .history/."""
    old = await _left_in_flight(sim, store, _manifest(out_dir, "waves"))
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(_manifest(out_dir, "an edited prompt"), store, client)
    assert (result.done, result.failed, result.earlier_collected) == (1, [], 1)
    assert store.renders()[old.key].state == "done"
    (kept,) = (out_dir / "s00" / ".history").glob("*.mp4")
    assert kept.name == f"take-1.{old.fingerprint[:12]}-g1.mp4"
    sidecar = json.loads(kept.with_suffix(".json").read_text())
    assert (sidecar["task_id"], sidecar["sha256"]) == (old.task_id, store.renders()[old.key].sha256)
    assert sim.recorder.tasks_created == 2


async def test_an_earlier_renders_sidecar_has_every_field_of_a_delivered_one(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A clip kept in .history/ has a delivered clip's sidecar fields, the manifest's empty."""
    await _left_in_flight(sim, store, _manifest(out_dir, "waves"))
    async with ApiClient(sim.base_url, "k") as client:
        await _run(_manifest(out_dir, "an edited prompt"), store, client)
    delivered = json.loads((out_dir / "s00" / "take-1.json").read_text())
    (kept_sidecar,) = (out_dir / "s00" / ".history").glob("*.json")
    kept = json.loads(kept_sidecar.read_text())
    assert set(kept) == set(delivered) | {"earlier_render"}
    assert (kept["shot"], kept["take"], kept["model"], kept["request"]) == ("s00", 1, None, None)
    assert kept["earlier_render"] is True
    assert list(store.db.query("select * from parts")) == []


async def test_a_removed_shots_create_without_answer_is_not_sent_again(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A removed shot left 'submitting' is reported as possibly billed, never resent."""
    (job,) = expand_jobs(_manifest(out_dir, "waves"))
    store.bind_jobs(None, [(job.shot.id, 1, job.fingerprint, 1)])
    render = store.renders()[(job.fingerprint, 1)]
    render.state, render.attempt = "submitting", 1
    store.update_render(None, render)
    shots = (Shot(id="s09", index=0, prompt="other", seconds=4),)
    manifest = dataclasses.replace(_manifest(out_dir, "other"), shots=shots)
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert result.possibly_billed == ["s00/1 (earlier render)"]
    assert [c.json["prompt"] for c in sim.recorder.creates()] == ["other"]
    assert store.renders()[render.key].state == "submitting"


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
    manifest = _manifest(out_dir, "waves")
    async with _ForgetsFirstCreate(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert (result.done, result.failed) == (1, [])
    (create,) = sim.recorder.creates()
    assert create.headers["idempotency-key"].endswith("-g1-a2")


class _CreatesRaise(ApiClient):
    """A client whose every create fails with a fresh ``error()`` before reaching a service."""

    def __init__(self, base_url: str, error: Callable[[], ApiError]) -> None:
        super().__init__(base_url, "k")
        self.error = error
        self.tried = asyncio.Event()

    async def create(self, body: dict[str, Any], idempotency_key: str) -> Any:
        await asyncio.sleep(0)  # a real create waits for the network
        self.tried.set()
        raise self.error()


def _no_such_route() -> ApiError:
    """What a base without the version prefix answers every create: a plain 404."""
    return NotFound("POST http://x/videos: HTTP 404 Not Found: empty body", status=404)


def _cannot_connect() -> ApiError:
    """A create that never left the machine (connection refused)."""
    return TransientError("ConnectError: connection refused (not sent)", sent=False)


def _key_refused() -> ApiError:
    """A create answered 401, as the client words it."""
    return AuthError("the API refused the key: POST http://x/v1/videos: HTTP 401", status=401)


async def test_a_404_on_create_stops_the_run_about_the_api_base_failing_nothing(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A route that does not exist: exit 2 about --api-base; every job stays pending."""
    manifest = _manifest(out_dir, "waves", "dunes")
    async with _CreatesRaise(sim.base_url, _no_such_route) as client:
        result = await _run(manifest, store, client)
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
    manifest = _manifest(out_dir, "waves")
    with instant_retries():
        async with _AnswersLost(sim.base_url, "k") as client:
            result = await _run(manifest, store, client)
    assert sim.recorder.tasks_created == 3
    (render,) = store.renders().values()
    assert (render.state, render.possible_duplicate, render.creates_sent) == ("failed", True, 3)
    assert "possible duplicate: 3 creates sent" in (render.error or "")
    assert result.possible_duplicates == ["s00/1 (3 creates sent)"]


async def test_a_stop_while_a_create_could_not_connect_leaves_it_pending(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Ctrl-C in the back-off after a connect error: pending, so no false possible duplicate."""
    manifest = _manifest(out_dir, "waves")
    engine = _engine(manifest, store, _CreatesRaise(sim.base_url, _cannot_connect))
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
        result = await _run(manifest, store, client)
    assert (result.done, result.possible_duplicates) == (1, [])
    (create,) = sim.recorder.creates()
    assert create.headers["idempotency-key"].endswith("-g1-a1")


async def test_an_unreachable_api_stops_the_run_leaving_jobs_pending(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Connect errors fail no job: after the outage limit the run stops, jobs still pending."""
    manifest = _manifest(out_dir, "waves", "dunes")
    async with _CreatesRaise(sim.base_url, _cannot_connect) as client:
        result = await _run(manifest, store, client, unreachable_after=0.5)
    assert isinstance(result.stopped_by, Unreachable) and not result.interrupted
    assert result.stopped_by.message.startswith("the API at http://sim/v1 is unreachable")
    assert result.stopped_by.message.endswith("run again to continue")
    assert {(r.state, r.attempt, r.error_code) for r in store.renders().values()} == {
        ("pending", 0, None)
    }


async def test_a_refused_key_is_reported_once_with_what_to_check(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """401: exit 2 with one 'refused the key' and the variable to check, not the phrase twice."""
    async with _CreatesRaise(sim.base_url, _key_refused) as client:
        result = await _run(_manifest(out_dir, "waves"), store, client)
    assert isinstance(result.stopped_by, ConfigError)
    assert result.stopped_by.message.count("refused the key") == 1
    assert "SHOTRUNNER_API_KEY" in result.stopped_by.message


class _PollsCannotConnect(ApiClient):
    """A client whose polls never leave the machine (the API went away after the create)."""

    async def retrieve(self, task_id: str) -> Any:
        await asyncio.sleep(0)
        raise TransientError("ConnectError: connection refused (not sent)", sent=False)


async def test_polls_that_cannot_connect_keep_the_task_until_the_outage_limit(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Connect errors on polls are not counted as the task's failures: the outage limit ends it."""
    manifest = _manifest(out_dir, "waves")
    with instant_retries():
        async with _PollsCannotConnect(sim.base_url, "k") as client:
            result = await _run(manifest, store, client, unreachable_after=0.3)
    assert isinstance(result.stopped_by, ShotrunnerError)
    assert "is unreachable" in result.stopped_by.message
    (render,) = store.renders().values()
    assert (render.state, render.error_code) == ("queued", None)


async def test_a_resumed_run_collects_a_task_that_finished_past_its_deadline(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Resumed hours later: the task is asked before the deadline is judged, and collected."""
    manifest = _manifest(out_dir, "waves")
    final, content = await _delivered_once(sim, store, manifest)
    (render,) = store.renders().values()
    render.state, render.sha256, render.bytes = "running", None, None
    render.submitted_at = "2026-01-01T00:00:00.000000+00:00"
    store.update_render(None, render)
    (row,) = store.jobs().values()
    store.record_file_moved(None, row, "test: back to running")
    final.unlink()
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(manifest, store, client)
    assert result.failed == []
    assert result.delivered == 1
    assert final.read_bytes() == content


def test_max_new_does_not_count_a_timed_out_render_whose_task_is_asked_first(
    store: Store, out_dir: Path
) -> None:
    """--retry-failed --max-new 0: a timed-out render with its task is a resume, not a create."""
    manifest = _manifest(out_dir, "waves")
    (job,) = expand_jobs(manifest)
    store.bind_jobs(None, [(job.shot.id, 1, job.fingerprint, 1)])
    render = store.renders()[(job.fingerprint, 1)]
    render.state, render.attempt, render.task_id = "failed", 1, "task-1"
    render.error, render.error_code = "timed out", "timeout"
    store.update_render(None, render)
    plan = make_plan(expand_jobs(manifest), store, PlanOptions(retry_failed=True))
    check_max_new(plan, 0)
    assert (plan.summary.to_submit, plan.summary.to_resume) == (0, 1)


async def test_max_new_caps_resubmissions_during_the_run(
    start_sim: StartSim, store: Store, out_dir: Path
) -> None:
    """--max-new 1: a task that fails remotely is not sent again; the job fails saying why."""
    sim = start_sim(fail_rate=1.0)
    manifest = _manifest(out_dir, "waves")
    async with ApiClient(sim.base_url, "k") as client:
        result = await _run(manifest, store, client, max_new=1, max_attempts=3)
    assert sim.recorder.tasks_created == 1
    ((_, reason),) = result.failed
    assert reason == "not submitted: --max-new 1 reached"


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
    manifest = _manifest(out_dir, "waves")
    writes = _progress_writes(store, monkeypatch)
    async with ApiClient(sim.base_url, "k") as client:
        await _run(manifest, store, client)
    polls = [r for r in sim.recorder.requests if r.method == "GET" and r.listener == "api"]
    assert len(polls) >= 8
    if every:
        assert len(writes) == 1
    else:
        assert len(writes) >= 5
    (render,) = store.renders().values()
    assert (render.state, render.progress) == ("done", 100.0)


async def test_a_sleep_wakes_at_once_when_the_run_stops(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A coroutine sleeping between polls wakes (cancelled) as soon as the run stops, and a
    sleep that runs its course returns and leaves nothing behind."""
    async with ApiClient(sim.base_url, "k") as client:
        engine = _engine(_manifest(out_dir, "waves"), store, client)
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


async def test_tasks_found_done_on_resume_teach_the_planner_nothing(
    start_sim: StartSim, store: Store, out_dir: Path
) -> None:
    """Tasks submitted hours ago and found done at the first poll of a resumed run did not take
    hours: new tasks of the kind are still asked at the interval, not hours later."""
    sim = start_sim(job_seconds=0.0)
    manifest = _manifest(out_dir, *(f"prompt {i}" for i in range(4)))
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
        result = await asyncio.wait_for(_run(manifest, store, client), 20)
    assert result.done == 4
