"""The deliver step: clips into every job's folder, sidecars, .history/, from disk first."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from runner.api.client import ApiClient
from runner.delivery import clip_relpath, part_of
from runner.jobs import expand_jobs
from runner.sim import RunningSim
from runner.store import Store
from tests.engine.runs import (
    delivered_once,
    left_in_flight,
    manifest_of,
    run_once,
)


async def test_downloaded_part_found_at_start_is_delivered_without_network(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A crash after the download was recorded but before the rename: the part is put in place."""
    manifest = manifest_of(out_dir, "waves")
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
        result = await run_once(manifest, store, client)
    assert final.read_bytes() == content
    assert result.delivered == 1
    assert sim.recorder.requests == []


async def test_unknown_file_at_a_final_path_moves_to_history(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A file the store does not know, where a clip goes, is kept in .history/, never deleted."""
    manifest = manifest_of(out_dir, "waves")
    stranger = out_dir / "s00" / "take-1.mp4"
    stranger.parent.mkdir(parents=True)
    stranger.write_bytes(b"someone else's clip")
    async with ApiClient(sim.base_url, "k") as client:
        await run_once(manifest, store, client)
    (kept,) = (out_dir / "s00" / ".history").glob("*.mp4")
    assert kept.read_bytes() == b"someone else's clip"
    assert stranger.read_bytes() != b"someone else's clip"


async def test_a_delivered_jobs_leftover_part_is_removed(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A part another render left beside a job's clip goes once the clip is delivered there."""
    manifest = manifest_of(out_dir, "waves", "waves")
    second = out_dir / clip_relpath("s01", 1)
    second.parent.mkdir(parents=True)
    relative = part_of(second).relative_to(out_dir).as_posix()
    part_of(second).write_bytes(b"half of another clip")
    store.set_part_owner(relative, "task-of-another-render")
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    assert result.delivered == 2
    assert not part_of(second).exists()
    assert store.part_owner(relative) is None


async def test_delivered_clips_leave_no_part_owner_records(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Once a clip is renamed into place, no part file and no owner record of it remain."""
    manifest = manifest_of(out_dir, "waves", "waves")
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    assert result.delivered == 2
    assert not list(out_dir.rglob("*.part"))
    assert list(store.db.query("select * from parts")) == []


async def test_a_crash_mid_sidecar_write_is_finished_without_network(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """Killed after the rename, while writing the sidecar: the next run writes it and records."""
    manifest = manifest_of(out_dir, "waves")
    final, content = await delivered_once(sim, store, manifest)
    sidecar = final.with_suffix(".json")
    part_of(sidecar).write_text(sidecar.read_text()[:10])
    sidecar.unlink()
    (row,) = store.jobs().values()
    store.record_file_moved(None, row, "test: crash before the record")
    sim.recorder.clear()
    async with ApiClient(sim.base_url, "k") as client:
        result = await run_once(manifest, store, client)
    assert result.delivered == 1
    assert final.read_bytes() == content
    assert json.loads(sidecar.read_text())["sha256"] == hashlib.sha256(content).hexdigest()
    assert not part_of(sidecar).exists()
    assert sim.recorder.requests == []


async def test_an_earlier_renders_sidecar_has_every_field_of_a_delivered_one(
    sim: RunningSim, store: Store, out_dir: Path
) -> None:
    """A clip kept in .history/ has a delivered clip's sidecar fields, the manifest's empty."""
    await left_in_flight(sim, store, manifest_of(out_dir, "waves"))
    async with ApiClient(sim.base_url, "k") as client:
        await run_once(manifest_of(out_dir, "an edited prompt"), store, client)
    delivered = json.loads((out_dir / "s00" / "take-1.json").read_text())
    (kept_sidecar,) = (out_dir / "s00" / ".history").glob("*.json")
    kept = json.loads(kept_sidecar.read_text())
    assert set(kept) == set(delivered) | {"earlier_render"}
    assert (kept["shot"], kept["take"], kept["model"], kept["request"]) == ("s00", 1, None, None)
    assert kept["earlier_render"] is True
    assert list(store.db.query("select * from parts")) == []
