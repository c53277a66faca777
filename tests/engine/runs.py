"""Helpers for the engine tests: a manifest, a run over it, and states left by earlier runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.api.client import ApiClient
from runner.api.errors import (
    ApiError,
    AuthError,
    NotFound,
    TransientError,
)
from runner.delivery import clip_relpath
from runner.engine import Run, RunContext, RunOptions
from runner.jobs import expand_jobs, request_body
from runner.model import Manifest, RunResult, Shot
from runner.plan import make_plan
from runner.sim import RunningSim
from runner.store import RenderRow, Store


def manifest_of(out_dir: Path, *prompts: str) -> Manifest:
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


def make_run(manifest: Manifest, store: Store, client: ApiClient, **options: Any) -> Run:
    """A run over the whole manifest, polling fast, as a simulated run."""
    return Run(
        store=store,
        client=client,
        plan=make_plan(expand_jobs(manifest), store),
        options=RunOptions(poll_interval=0.05, **options),
        context=RunContext(manifest=manifest, api_base="http://sim/v1", simulated=True),
    )


async def run_once(
    manifest: Manifest, store: Store, client: ApiClient, **options: Any
) -> RunResult:
    return await make_run(manifest, store, client, **options).execute()


async def delivered_once(sim: RunningSim, store: Store, manifest: Manifest) -> tuple[Path, bytes]:
    async with ApiClient(sim.base_url, "k") as client:
        await run_once(manifest, store, client)
    # The simulator records a download after its last byte, maybe after the run ended: wait,
    # so that a test clearing the recorder next does not get this download's record later.
    deadline = asyncio.get_running_loop().time() + 5
    while not downloads(sim):
        assert asyncio.get_running_loop().time() < deadline, "the download was never recorded"
        await asyncio.sleep(0.01)
    (job,) = expand_jobs(manifest)
    final = manifest.output_dir / clip_relpath(job.shot.id, job.take)
    return final, final.read_bytes()


def downloads(sim: RunningSim) -> list[Any]:
    return [
        r
        for r in sim.recorder.requests
        if r.method == "GET" and (r.listener == "files" or r.path.endswith("/content"))
    ]


async def left_in_flight(sim: RunningSim, store: Store, manifest: Manifest) -> RenderRow:
    """The manifest's one job submitted by an earlier run that stopped while it rendered."""
    (job,) = expand_jobs(manifest)
    store.bind_jobs(None, [(job.shot.id, job.take, job.fingerprint, 1)])
    render = store.renders()[(job.fingerprint, 1)]
    async with ApiClient(sim.base_url, "k") as client:
        task = await client.create(request_body(job.shot), render.idempotency_key)
    render.state, render.attempt, render.task_id = "queued", 1, task.id
    store.update_render(None, render)
    return render


class CreatesRaise(ApiClient):
    """A client whose every create fails with a fresh ``error()`` before reaching a service."""

    def __init__(self, base_url: str, error: Callable[[], ApiError]) -> None:
        super().__init__(base_url, "k")
        self.error = error
        self.tried = asyncio.Event()

    async def create(self, body: dict[str, Any], idempotency_key: str) -> Any:
        await asyncio.sleep(0)  # a real create waits for the network
        self.tried.set()
        raise self.error()


def no_such_route() -> ApiError:
    """What a base without the version prefix answers every create: a plain 404."""
    return NotFound("POST http://x/videos: HTTP 404 Not Found: empty body", status=404)


def cannot_connect() -> ApiError:
    """A create that never left the machine (connection refused)."""
    return TransientError("ConnectError: connection refused (not sent)", sent=False)


def key_refused() -> ApiError:
    """A create answered 401, as the client words it."""
    return AuthError("the API refused the key: POST http://x/v1/videos: HTTP 401", status=401)
