"""The client against the real simulator over loopback: each knob that concerns the client."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from runner.api.client import ApiClient
from runner.api.errors import (
    AuthError,
    DownloadError,
    LinkExpired,
    NotFound,
    RateLimited,
    Rejected,
    TransientError,
)
from runner.api.task import Task
from runner.sim import RecordedRequest, RunningSim
from runner.sim.clip import clip_bytes_of
from tests.plugins.sim_fixtures import StartSim

KEY = "sk-loopback-Secret-1a2b3c"
BODY = {"model": "omni-fast", "prompt": "Ocean waves", "seconds": "4"}
DEADLINE = 10.0


@pytest.fixture
async def client_on() -> AsyncIterator[Callable[..., ApiClient]]:
    """Build real-HTTP clients on a simulator's base URL; all are closed at the end."""
    clients: list[ApiClient] = []

    def make(sim: RunningSim, key: str = KEY, read_timeout: float = 10) -> ApiClient:
        client = ApiClient(sim.base_url, key, connect_timeout=5, read_timeout=read_timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def finished(client: ApiClient, task_id: str) -> Task:
    """Poll until the task is no longer pending, within a deadline."""
    deadline = time.monotonic() + DEADLINE
    while True:
        task = await client.retrieve(task_id)
        if task.status != "pending":
            return task
        assert time.monotonic() < deadline, f"task {task_id} still {task.raw_status}"
        await asyncio.sleep(0.05)


async def rendered(client: ApiClient) -> tuple[Task, str]:
    """A new task, polled until it completed, and its clip's URL."""
    task = await finished(client, (await client.create(BODY, "k")).id)
    assert task.status == "completed" and task.video_url is not None, task
    return task, task.video_url


async def recorded(sim: RunningSim, count: int) -> list[RecordedRequest]:
    """The simulator's requests once ``count`` are recorded: it records a download only after
    its last byte is written, which may be just after the client has it."""
    deadline = time.monotonic() + DEADLINE
    while len(requests := sim.recorder.requests) < count:
        assert time.monotonic() < deadline, f"only {len(requests)} requests recorded"
        await asyncio.sleep(0.01)
    return requests


async def test_create_poll_download(
    start_sim: StartSim, client_on: Callable[..., ApiClient], tmp_path: Path
) -> None:
    """A task goes from create to a downloaded, hashed MP4 through the real simulator."""
    sim = start_sim(token=KEY)
    client = client_on(sim)
    created = await client.create(BODY, "fp-g1-a1")
    done = await finished(client, created.id)
    assert (done.status, done.progress) == ("completed", 100.0)
    assert done.video_url is not None
    part = tmp_path / "take-1.mp4.part"
    result = await client.download(done.video_url, part)
    data = part.read_bytes()
    assert data[4:8] == b"ftyp"
    assert (result.sha256, result.bytes) == (hashlib.sha256(data).hexdigest(), len(data))


async def test_key_never_reaches_the_file_host(
    start_sim: StartSim, client_on: Callable[..., ApiClient], tmp_path: Path
) -> None:
    """The simulator's file listener records no Authorization; its API listener records the key."""
    sim = start_sim(token=KEY)
    client = client_on(sim)
    _, url = await rendered(client)
    api_requests = sim.recorder.on("api")
    assert api_requests
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in api_requests)
    sim.recorder.clear()
    await client.download(url, tmp_path / "a.part")
    [download] = await recorded(sim, 1)
    assert download.listener == "files"
    assert "authorization" not in download.headers
    assert KEY not in str(download.headers)


async def test_content_route_download_carries_the_key(
    start_sim: StartSim, client_on: Callable[..., ApiClient], tmp_path: Path
) -> None:
    """/content on the API origin needs the key, gets it, and serves the same clip."""
    sim = start_sim(token=KEY)
    client = client_on(sim)
    task, url = await rendered(client)
    direct = await client.download(url, tmp_path / "direct.part")
    via_api = await client.download(client.content_url(task.id), tmp_path / "content.part")
    assert via_api.sha256 == direct.sha256


async def test_resume_against_the_file_host(
    sim: RunningSim, client_on: Callable[..., ApiClient], tmp_path: Path
) -> None:
    """A part file is continued with a 206 and ends identical to a fresh download."""
    client = client_on(sim)
    _, url = await rendered(client)
    whole = await client.download(url, tmp_path / "whole.part")
    part = tmp_path / "resumed.part"
    part.write_bytes((tmp_path / "whole.part").read_bytes()[: whole.bytes // 2])
    resumed = await client.download(url, part)
    assert resumed == whole
    # A download is recorded after its last byte, maybe after the client moved on: wait for
    # the ranged one rather than clear the recorder in between (the first might land after).
    deadline = time.monotonic() + DEADLINE
    while not (ranged := [r for r in sim.recorder.requests if "range" in r.headers]):
        assert time.monotonic() < deadline, "the resumed download was never recorded"
        await asyncio.sleep(0.01)
    assert [(r.headers["range"], r.status) for r in ranged] == [(f"bytes={whole.bytes // 2}-", 206)]


async def test_quirks_dialect_normalises(
    start_sim: StartSim, client_on: Callable[..., ApiClient], tmp_path: Path
) -> None:
    """In the gateway's odd dialect every task still completes, and every clip downloads from
    video_url, metadata.url or /content."""
    sim = start_sim(quirks=True, seed=7, job_seconds=0.2)
    client = client_on(sim)
    created = [await client.create(BODY, f"k{n}") for n in range(6)]
    tasks = [await finished(client, task.id) for task in created]
    assert {task.status for task in tasks} == {"completed"}
    assert any(task.raw_status != "completed" for task in tasks)
    assert any(task.video_url is None for task in tasks)
    for task in tasks:
        url = task.video_url or client.content_url(task.id)
        result = await client.download(url, tmp_path / f"{task.id}.part")
        assert result.bytes > 0


async def test_quirks_unknown_task_is_not_found(
    start_sim: StartSim, client_on: Callable[..., ApiClient]
) -> None:
    """The quirky 400 task_not_exist for an unknown id is NotFound."""
    client = client_on(start_sim(quirks=True))
    with pytest.raises(NotFound) as caught:
        await client.retrieve("video_nope")
    assert (caught.value.status, caught.value.code) == (400, "task_not_exist")


async def test_unknown_task_is_not_found(
    sim: RunningSim, client_on: Callable[..., ApiClient]
) -> None:
    """The documented 404 for an unknown id is NotFound."""
    with pytest.raises(NotFound):
        await client_on(sim).retrieve("video_nope")


@pytest.mark.parametrize("quirks", [False, True], ids=["nested", "flat"])
async def test_validation_error_is_rejected_with_the_message(
    start_sim: StartSim, client_on: Callable[..., ApiClient], quirks: bool
) -> None:
    """A create the service refuses is Rejected, carrying its message, in both error shapes."""
    client = client_on(start_sim(quirks=quirks))
    with pytest.raises(Rejected) as caught:
        await client.create({"model": "omni-fast"}, "k")
    assert caught.value.status == 400
    assert "prompt" in caught.value.message.lower()


async def test_policy_refusal_is_recognised(
    start_sim: StartSim, client_on: Callable[..., ApiClient]
) -> None:
    """A task refused by the simulator's policy check reads as a policy refusal."""
    client = client_on(start_sim(refuse_rate=1.0, job_seconds=0.1))
    task = await finished(client, (await client.create(BODY, "k")).id)
    assert task.status == "failed"
    assert task.is_policy_refusal


async def test_upstream_failure_is_not_a_refusal(
    start_sim: StartSim, client_on: Callable[..., ApiClient]
) -> None:
    """An upstream failure fails the task without looking like a policy refusal."""
    client = client_on(start_sim(fail_rate=1.0, job_seconds=0.1))
    task = await finished(client, (await client.create(BODY, "k")).id)
    assert task.status == "failed"
    assert task.error_message
    assert not task.is_policy_refusal


async def test_rate_limit_is_rate_limited(
    start_sim: StartSim, client_on: Callable[..., ApiClient]
) -> None:
    """The 429 knob gives RateLimited, and no task is created."""
    sim = start_sim(rate_limit_rate=1.0)
    with pytest.raises(RateLimited):
        await client_on(sim).create(BODY, "k")
    assert sim.recorder.tasks_created == 0


async def test_concurrency_limit_is_rate_limited(
    start_sim: StartSim, client_on: Callable[..., ApiClient]
) -> None:
    """Past --max-active, a create is answered 429: RateLimited."""
    client = client_on(start_sim(max_active=1, job_seconds=30))
    await client.create(BODY, "k1")
    with pytest.raises(RateLimited):
        await client.create(BODY, "k2")


async def test_server_errors_are_transient(
    start_sim: StartSim, client_on: Callable[..., ApiClient]
) -> None:
    """The 5xx knob (JSON, HTML or empty bodies) gives TransientError(sent=True) every time."""
    client = client_on(start_sim(error_rate=1.0, seed=3))
    for _ in range(6):
        with pytest.raises(TransientError) as caught:
            await client.retrieve("video_x")
        assert caught.value.sent is True
        assert caught.value.status in (500, 502, 503)
        assert str(caught.value.status) in caught.value.message


async def test_dropped_create_is_sent_and_exists(
    start_sim: StartSim, client_on: Callable[..., ApiClient]
) -> None:
    """A create whose answer is dropped is TransientError(sent=True), and the task does exist."""
    sim = start_sim(drop_rate=1.0)
    with pytest.raises(TransientError) as caught:
        await client_on(sim).create(BODY, "k")
    assert caught.value.sent is True
    assert sim.recorder.tasks_created == 1


async def test_same_idempotency_key_replays_the_task(
    sim: RunningSim, client_on: Callable[..., ApiClient]
) -> None:
    """Two creates with one Idempotency-Key give one task where the server honours it."""
    client = client_on(sim)
    first = await client.create(BODY, "fp-g1-a1")
    second = await client.create(BODY, "fp-g1-a1")
    assert first.id == second.id
    assert sim.recorder.tasks_created == 1


async def test_wrong_key_is_auth_error(
    start_sim: StartSim, client_on: Callable[..., ApiClient]
) -> None:
    """With --token set, a wrong key is a 401: AuthError, and the key is not in the message."""
    wrong = "sk-wrong-Key-000"
    with pytest.raises(AuthError) as caught:
        await client_on(start_sim(token=KEY), key=wrong).create(BODY, "k")
    assert caught.value.status == 401
    assert wrong not in f"{caught.value!r}{caught.value}"


async def test_expired_url_is_link_expired(
    start_sim: StartSim, client_on: Callable[..., ApiClient], tmp_path: Path
) -> None:
    """Past --url-ttl the file host answers 403: LinkExpired; a fresh retrieve works again."""
    sim = start_sim(url_ttl=0.3, job_seconds=0.1)
    client = client_on(sim)
    task, url = await rendered(client)
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            await client.download(url, tmp_path / "a.part")
        except LinkExpired as error:
            assert error.status == 403
            break
        (tmp_path / "a.part").unlink()
        assert time.monotonic() < deadline, "the URL never expired"
        await asyncio.sleep(0.05)
    fresh = await client.retrieve(task.id)
    assert fresh.video_url is not None
    await client.download(fresh.video_url, tmp_path / "a.part")


async def test_nothing_listening_is_not_sent() -> None:
    """A refused connection is TransientError(sent=False): safe to retry a create."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ApiClient(f"http://127.0.0.1:{port}/v1", KEY, connect_timeout=2)
    try:
        with pytest.raises(TransientError) as caught:
            await client.create(BODY, "k")
    finally:
        await client.aclose()
    assert caught.value.sent is False


async def test_slow_but_moving_download_outlasts_the_read_timeout(
    start_sim: StartSim, client_on: Callable[..., ApiClient], tmp_path: Path
) -> None:
    """A body that keeps arriving succeeds although the whole takes several read timeouts."""
    sim = start_sim(job_seconds=0.0, clip_bytes=40_000, file_rate=40_000)
    client = client_on(sim, read_timeout=0.3)
    task, url = await rendered(client)
    began = time.monotonic()
    result = await client.download(url, tmp_path / "a.part")
    assert time.monotonic() - began > 0.6
    assert result.sha256 == hashlib.sha256(clip_bytes_of(task.id, 40_000)).hexdigest()


async def test_stalled_download_fails_after_the_read_timeout(
    start_sim: StartSim, client_on: Callable[..., ApiClient], tmp_path: Path
) -> None:
    """A body that stops arriving is a DownloadError about one read timeout later, keeping
    the bytes that did arrive."""
    sim = start_sim(job_seconds=0.0, stall_after=2_000)
    client = client_on(sim, read_timeout=0.3)
    _, url = await rendered(client)
    part = tmp_path / "a.part"
    began = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        await client.download(url, part)
    assert 0.3 <= time.monotonic() - began < 5
    assert "ReadTimeout" in caught.value.message
    assert part.stat().st_size == 2_000


async def test_stalled_downloads_resume_to_the_whole_clip(
    start_sim: StartSim, client_on: Callable[..., ApiClient], tmp_path: Path
) -> None:
    """Each try after a stall resumes where the last one stopped, until the clip is whole."""
    sim = start_sim(job_seconds=0.0, stall_after=2_000)
    client = client_on(sim, read_timeout=0.2)
    task, url = await rendered(client)
    whole = clip_bytes_of(task.id, None)
    part = tmp_path / "a.part"
    sizes = []
    for _ in range(len(whole) // 2_000 + 1):
        try:
            result = await client.download(url, part)
            break
        except DownloadError:
            sizes.append(part.stat().st_size)
    else:
        pytest.fail("the download never finished")
    assert sizes == list(range(2_000, len(whole), 2_000))
    assert result.sha256 == hashlib.sha256(whole).hexdigest()


async def test_clip_bytes_download_is_that_big_and_hashed(
    start_sim: StartSim, client_on: Callable[..., ApiClient], tmp_path: Path
) -> None:
    """A clip padded by --clip-bytes downloads to exactly that size with the right hash."""
    sim = start_sim(job_seconds=0.0, clip_bytes=3_000_000)
    client = client_on(sim)
    task, url = await rendered(client)
    result = await client.download(url, tmp_path / "a.part")
    assert result.bytes == 3_000_000
    assert result.sha256 == hashlib.sha256(clip_bytes_of(task.id, 3_000_000)).hexdigest()


async def test_ignored_idempotency_key_makes_a_second_task(
    start_sim: StartSim, client_on: Callable[..., ApiClient]
) -> None:
    """With --ignore-idempotency, as on the real gateway, the same key makes two tasks."""
    sim = start_sim(ignore_idempotency=True)
    client = client_on(sim)
    first = await client.create(BODY, "fp-g1-a1")
    second = await client.create(BODY, "fp-g1-a1")
    assert first.id != second.id
    assert sim.recorder.tasks_created == 2


async def test_lost_task_becomes_not_found(
    start_sim: StartSim, client_on: Callable[..., ApiClient]
) -> None:
    """A task the server forgets (--lose-rate) is NotFound once its job would have ended."""
    client = client_on(start_sim(lose_rate=1.0, job_seconds=0.1))
    task = await client.create(BODY, "k")
    deadline = time.monotonic() + DEADLINE
    with pytest.raises(NotFound):
        while time.monotonic() < deadline:
            await client.retrieve(task.id)
            await asyncio.sleep(0.05)


async def test_hung_task_stays_pending(
    start_sim: StartSim, client_on: Callable[..., ApiClient]
) -> None:
    """A hung task (--hang-rate) still reads as pending well after its job should have ended."""
    client = client_on(start_sim(hang_rate=1.0, job_seconds=0.05))
    task = await client.create(BODY, "k")
    await asyncio.sleep(0.3)
    again = await client.retrieve(task.id)
    assert (again.status, again.raw_status) == ("pending", "in_progress")


async def test_content_redirect_keeps_the_key_on_the_api_hop(
    start_sim: StartSim, client_on: Callable[..., ApiClient], tmp_path: Path
) -> None:
    """/content answering 302 to the file host: the API hop has the key, the file hop none."""
    sim = start_sim(token=KEY, redirect_content=True, job_seconds=0.0)
    client = client_on(sim)
    task = await finished(client, (await client.create(BODY, "k")).id)
    sim.recorder.clear()
    result = await client.download(client.content_url(task.id), tmp_path / "a.part")
    api_hop, file_hop = await recorded(sim, 2)
    assert (api_hop.listener, api_hop.status) == ("api", 302)
    assert api_hop.headers["authorization"] == f"Bearer {KEY}"
    assert (file_hop.listener, file_hop.status) == ("files", 200)
    assert "authorization" not in file_hop.headers
    assert result.sha256 == hashlib.sha256(clip_bytes_of(task.id, None)).hexdigest()
