"""The real CLI against a hostile fake of the API on loopback: answers the simulator never
gives (an id that cannot be kept, a "clip" of zeros) end as one job's failure, never as a
crash, a wedged batch or a delivered clip."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from runner.sim.clip import base_clip
from tests.e2e.conftest import INSTANT, Batch, RunBatch

#: The prompt word that makes the fake answer a create with an id of this many characters.
HUGE_ID = 100_000


@dataclass
class Hostile:
    """A fake API whose every task completes at once; ``clip`` says what its file route sends."""

    clip: str = "mp4"
    base_url: str = ""
    creates: list[str] = field(default_factory=list)
    downloads: int = 0
    #: Retrieves answered: each gives the file a new URL (``?url=N``).
    retrieves: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/videos", self.create)
        app.router.add_get("/v1/videos/{id}", self.retrieve)
        app.router.add_get("/files/{id}", self.file)
        return app

    async def create(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        number = len(self.creates)
        self.creates.append(str(body.get("prompt", "")))
        if "refuse" in self.creates[-1]:
            # A 900 kB refusal: under the client's answer cap, far over what is kept.
            return web.json_response({"error": {"message": "no " * 300_000}}, status=400)
        if "deep" in self.creates[-1]:
            # JSON nested deeper than the interpreter recurses: unreadable, not a crash.
            return web.Response(body=b"[" * 500_000, content_type="application/json")
        if "big numbers" in self.creates[-1]:
            # Integers no float holds, where a progress and a time belong.
            huge = 10**400
            task = {"id": f"task_{number}", "status": "queued", "progress": huge}
            return web.json_response({**task, "created_at": huge})
        task_id = "v" * HUGE_ID if "huge id" in self.creates[-1] else f"task_{number}"
        if "fail" in self.creates[-1]:
            task_id = f"fail_{number}"
        return web.json_response({"id": task_id, "status": "queued", "progress": 0})

    async def retrieve(self, request: web.Request) -> web.Response:
        task_id = request.match_info["id"]
        if task_id.startswith("fail_"):
            # A failed task whose 900 kB message would be stored and printed whole.
            error = {"code": "upstream_error", "message": "no " * 300_000}
            return web.json_response({"id": task_id, "status": "failed", "error": error})
        self.retrieves += 1
        return web.json_response(
            {
                "id": task_id,
                "status": "completed",
                "progress": 100,
                "video_url": f"{self.base_url}/files/{task_id}?url={self.retrieves}",
            }
        )

    async def file(self, request: web.Request) -> web.StreamResponse:
        self.downloads += 1
        first_url = request.query.get("url") == "1"
        if self.clip == "mp4" or (self.clip == "zeros at the first url" and not first_url):
            return web.Response(body=base_clip(), content_type="video/mp4")
        # Zeros with no Content-Length: nothing but the stream's end says how long it is.
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(64):
            await response.write(bytes(64 * 1024))
        await response.write_eof()
        return response


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    """A ``Hostile`` fake serving on a free loopback port from its own thread."""
    fake = Hostile()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        runner = web.AppRunner(fake.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        fake.base_url = f"http://127.0.0.1:{port}"
        stop = asyncio.Event()
        state.update(loop=asyncio.get_running_loop(), stop=stop)
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(10)
    yield fake
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(10)


def test_an_id_that_cannot_be_kept_fails_one_job_and_never_wedges_the_batch(
    hostile: Hostile, batch: Batch, run_batch: RunBatch
) -> None:
    """A create answered with a 100,000-character id fails that job with a short message; the
    other job is delivered; the next run neither crashes nor sends that job again, and
    ``status`` stays short."""
    batch.write({"s01": "a huge id please", "s02": "waves at dusk"})
    first = run_batch(f"{hostile.base_url}/v1", env=INSTANT)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "Traceback" not in first.stderr
    assert [clip.parent.name for clip in batch.clips()] == ["s02"]
    assert all(len(str(render["task_id"] or "")) <= 256 for render in batch.renders())
    second = run_batch(f"{hostile.base_url}/v1", env=INSTANT)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "Traceback" not in second.stderr
    assert hostile.creates.count("a huge id please") == 1
    assert len(str(batch.status())) < 20_000


def test_zeros_are_never_delivered_as_a_clip(
    hostile: Hostile, batch: Batch, run_batch: RunBatch
) -> None:
    """A file route that answers 4 MiB of zeros with no Content-Length: the download fails as a
    server fault (tried again), and no take is delivered."""
    hostile.clip = "zeros"
    batch.write({"s01": "waves at dusk"})
    result = run_batch(f"{hostile.base_url}/v1", env=INSTANT)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert batch.clips() == []
    assert hostile.downloads > 1


def test_a_body_that_is_not_a_clip_is_fetched_again_from_a_fresh_url(
    hostile: Hostile, batch: Batch, run_batch: RunBatch
) -> None:
    """The first URL of a task serves zeros: a server fault. The task is asked for a fresh
    URL, whose clip is delivered in the same run; nothing is submitted again."""
    hostile.clip = "zeros at the first url"
    batch.write({"s01": "waves at dusk"})
    result = run_batch(f"{hostile.base_url}/v1", "-v", env=INSTANT)
    assert result.returncode == 0, result.stdout + result.stderr
    (clip,) = batch.clips()
    assert clip.read_bytes() == base_clip()
    assert (len(hostile.creates), hostile.downloads) == (1, 2)
    assert "s01/1 retry: download: " in result.stderr
    assert "asking for a fresh URL" in result.stderr


def test_a_clip_over_max_clip_size_is_never_delivered(
    hostile: Hostile, batch: Batch, run_batch: RunBatch
) -> None:
    """``--max-clip-size 1K`` against a 5 kB clip: each download is refused as over the cap
    (a fresh URL each time, within the usual bounds), the task kept for the next run, no clip
    delivered; the next run with the default cap delivers it without a new create."""
    batch.write({"s01": "waves at dusk"})
    first = run_batch(f"{hostile.base_url}/v1", "--max-clip-size", "1K", env=INSTANT)
    assert first.returncode == 1, first.stdout + first.stderr
    assert batch.clips() == []
    assert "over the cap of 1,024" in first.stdout
    assert hostile.downloads > 1
    (render,) = batch.renders()
    assert render["state"] == "downloading"
    second = run_batch(f"{hostile.base_url}/v1", env=INSTANT)
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(batch.clips()) == 1
    assert len(hostile.creates) == 1


@pytest.mark.parametrize("size", ["0", "-5", "4X", "lots"])
def test_an_unusable_max_clip_size_is_refused(
    hostile: Hostile, batch: Batch, run_batch: RunBatch, size: str
) -> None:
    """A size that is not one: exit 2, the option named, nothing sent."""
    result = run_batch(f"{hostile.base_url}/v1", "--max-clip-size", size)
    assert result.returncode == 2
    assert "--max-clip-size" in result.stderr and "is not a size above 0" in result.stderr
    assert hostile.creates == []


@pytest.mark.parametrize("prompt", ["refuse this one", "fail this one"])
def test_a_huge_server_message_is_kept_and_shown_short(
    hostile: Hostile, batch: Batch, run_batch: RunBatch, prompt: str
) -> None:
    """A create refused, or a task failed, with a 900 kB message: the job fails, and what is
    stored and printed is the message's first 2,000 characters with a note of its length."""
    batch.write({"s01": prompt})
    result = run_batch(f"{hostile.base_url}/v1", env=INSTANT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(result.stdout + result.stderr) < 20_000
    (render,) = batch.renders()
    assert 0 < len(str(render["error"])) < 2_500
    assert "899,999 characters" in str(render["error"])
    # The contact sheet shows what is stored: the sheet stays small too.
    assert (batch.out / "index.html").stat().st_size < 100_000


def test_an_answer_no_reader_can_hold_is_unreadable_not_a_crash(
    hostile: Hostile, batch: Batch, run_batch: RunBatch
) -> None:
    """A create answered with JSON nested 500,000 deep is an answer without a task id: sent
    again under the same key, then failed as a possible duplicate; one with integers of 400
    digits is read (they are no progress). No traceback, and the next run sends neither
    again (a crash left a create to send once more, paid twice)."""
    batch.write({"s01": "deep answer", "s02": "big numbers"})
    first = run_batch(f"{hostile.base_url}/v1", env=INSTANT)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "Traceback" not in first.stderr
    assert [clip.parent.name for clip in batch.clips()] == ["s02"]
    assert "possible duplicate: 3 creates sent" in first.stdout
    sent = len(hostile.creates)
    second = run_batch(f"{hostile.base_url}/v1", env=INSTANT)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "Traceback" not in second.stderr and len(hostile.creates) == sent
