"""The download step: a finished task's clip fetched once, its part file never a hybrid."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from runner.api.client import ApiClient, Downloaded
from runner.delivery import clip_relpath, part_of
from runner.jobs import expand_jobs
from runner.model import Shot
from runner.providers import PROFILES
from runner.sim import RunningSim
from runner.store import Store
from tests.engine.runs import (
    delivered_once,
    downloads,
    manifest_of,
    run_once,
)
from tests.plugins.sim_fixtures import StartSim


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
    manifest = manifest_of(out_dir, "waves")
    async with _SlowFirstDownload(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
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


async def test_a_crash_mid_download_resumes_the_part_from_the_same_task(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Killed while downloading: the half-written part is completed; no new task, no new key."""
    manifest = manifest_of(out_dir, "waves")
    final, content = await delivered_once(sim, store, manifest)
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
        result = await run_once(manifest, store, client)
    assert result.delivered == 1
    assert final.read_bytes() == content
    assert not part_of(final).exists()
    assert sim.recorder.tasks_created == created
    assert any("range" in r.headers for r in downloads(sim))


async def test_a_part_left_by_an_edited_shots_earlier_task_is_not_resumed(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A part written by another task is deleted, not continued with Range onto its bytes."""
    final, content = await delivered_once(sim, store, manifest_of(out_dir, "waves"))
    (old,) = store.renders().values()
    assert old.task_id is not None
    part = part_of(final)
    part.write_bytes(content[: len(content) // 2])
    store.set_part_owner(part.relative_to(out_dir).as_posix(), old.task_id)
    sim.recorder.clear()
    edited = manifest_of(out_dir, "storm")
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(edited, store, client)
    assert result.delivered == 1
    assert all("range" not in r.headers for r in downloads(sim))
    (row,) = store.jobs().values()
    assert row.file_sha256 == hashlib.sha256(final.read_bytes()).hexdigest()
    assert final.stat().st_size == store.renders()[row.render_key].bytes
    assert not part.exists()


async def test_a_part_of_unknown_origin_is_not_resumed(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A part with no recorded owner (swapped shot ids, a lost record) is downloaded afresh."""
    manifest = manifest_of(out_dir, "waves")
    (job,) = expand_jobs(manifest)
    final = out_dir / clip_relpath(job.shot.id, job.take)
    final.parent.mkdir(parents=True)
    part_of(final).write_bytes(b"bytes of some other clip")
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    assert result.delivered == 1
    assert all("range" not in r.headers for r in downloads(sim))
    assert not final.read_bytes().startswith(b"bytes of some other clip")


class _RunwayWithoutOutput(ApiClient):
    """A Runway client whose finished tasks name no video (``output`` empty)."""

    async def retrieve(self, task_id: str) -> Any:
        task = await super().retrieve(task_id)
        return dataclasses.replace(task, video_url=None)


async def test_a_task_finished_without_a_video_url_is_kept_not_paid_again(
    start_sim: StartSim, store: Store, out_dir: Path
) -> None:
    """A Runway task that succeeds without output: nothing is fetched from a route Runway
    does not have, nothing is submitted again, and the task is kept for the next run."""
    sim = start_sim(dialect="runway", token="rw", job_seconds=0.0)
    shot = Shot(id="s01", index=0, prompt="waves", seconds=5, model="gen4.5", provider="runway")
    manifest = dataclasses.replace(manifest_of(out_dir, "waves"), shots=(shot,))
    async with _RunwayWithoutOutput(sim.base_url, "rw", profile=PROFILES["runway"]) as client:
        result = await run_once(manifest, store, client)
    assert result.delivered == 0
    task_id = sim.recorder.creates()[0].task_id
    kept = f"task {task_id} kept, the next run fetches it again"
    assert result.failed == [("s01/1", f"the task completed without a video URL; {kept}")]
    assert sim.recorder.tasks_created == 1
    assert not [r for r in sim.recorder.requests if r.path.endswith("/content")]
    (render,) = store.renders().values()
    assert (render.state, render.error_code) == ("downloading", "download")
