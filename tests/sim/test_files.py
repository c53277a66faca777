"""The file host: signed, expiring URLs on a second origin, Range, and /content."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest

from runner.sim import RunningSim
from runner.sim.clip import base_clip, clip_bytes_of
from tests.plugins.sim_fixtures import StartSim
from tests.sim.conftest import Connect, create, finished, poll


def _done(client: httpx.Client) -> dict[str, Any]:
    task: dict[str, Any] = poll(client, create(client).json()["id"], finished).json()
    return task


def test_video_url_is_on_another_origin_than_the_api(instant: RunningSim, connect: Connect) -> None:
    """The file host listens on its own port, so video_url is a different origin."""
    url = httpx.URL(_done(connect(instant))["video_url"])
    api = httpx.URL(instant.base_url)
    assert (url.host, url.port) != (api.host, api.port)


def test_the_clip_downloads_without_a_key(start_sim: StartSim, connect: Connect) -> None:
    """The file host needs no Authorization even when the API has a token."""
    sim = start_sim(token="sekrit", job_seconds=0.0)
    task = _done(connect(sim, headers={"Authorization": "Bearer sekrit"}))
    with httpx.Client() as plain:
        response = plain.get(task["video_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content)


def test_each_task_clip_is_the_shipped_clip_plus_a_box_naming_it(
    instant: RunningSim, connect: Connect
) -> None:
    """Two tasks' clips differ, and each names its task after the shipped MP4."""
    client = connect(instant)
    clips = {}
    for _ in range(2):
        task = _done(client)
        clips[task["id"]] = client.get(task["video_url"]).content
    for task_id, clip in clips.items():
        assert clip.startswith(base_clip())
        assert clip[len(base_clip()) + 4 : len(base_clip()) + 8] == b"free"
        assert task_id.encode() in clip[len(base_clip()) :]
    assert len(set(clips.values())) == 2


def test_clip_bytes_makes_every_clip_exactly_that_big(
    start_sim: StartSim, connect: Connect
) -> None:
    """With clip_bytes set, Content-Length and the body have exactly that size."""
    sim = start_sim(clip_bytes=300_000, job_seconds=0.0)
    client = connect(sim)
    response = client.get(_done(client)["video_url"])
    assert response.headers["content-length"] == "300000"
    assert len(response.content) == 300_000


def test_each_retrieve_of_a_completed_task_signs_a_fresh_url(
    instant: RunningSim, connect: Connect
) -> None:
    """A later retrieve hands out a new signature with a later expiry."""
    client = connect(instant)
    task = _done(client)
    again = poll(client, task["id"], lambda r: r.json()["video_url"] != task["video_url"])
    assert httpx.get(again.json()["video_url"]).status_code == 200


def test_an_expired_url_answers_403(start_sim: StartSim, connect: Connect) -> None:
    """Once url_ttl has passed, the signed URL answers 403; a fresh retrieve works again."""
    sim = start_sim(url_ttl=0.2, job_seconds=0.0)
    client = connect(sim)
    task_id = create(client).json()["id"]
    url = client.get(f"/videos/{task_id}").json()["video_url"]
    with httpx.Client() as files:
        poll(client, task_id, lambda _: files.get(url).status_code == 403)
        fresh = client.get(f"/videos/{task_id}").json()["video_url"]
        assert files.get(fresh).status_code == 200


def test_a_tampered_signature_answers_403(instant: RunningSim, connect: Connect) -> None:
    """A URL whose signature does not match answers 403."""
    url = httpx.URL(_done(connect(instant))["video_url"])
    forged = url.copy_merge_params({"sig": "0" * 32})
    assert httpx.get(forged).status_code == 403


def test_a_signature_for_another_task_answers_403(instant: RunningSim, connect: Connect) -> None:
    """A signature is bound to its task: reusing it for another id answers 403."""
    client = connect(instant)
    url = _done(client)["video_url"]
    other = _done(client)["id"]
    forged = url.replace(url.split("/files/")[1].split(".mp4")[0], other)
    assert httpx.get(forged).status_code == 403


def test_a_range_request_answers_206_with_content_range(
    instant: RunningSim, connect: Connect
) -> None:
    """Range bytes=10-19 answers 206 with those ten bytes and Content-Range."""
    client = connect(instant)
    url = _done(client)["video_url"]
    whole = httpx.get(url).content
    part = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == whole[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(whole)}"
    assert part.headers["content-length"] == "10"


def test_an_open_range_resumes_to_the_end(instant: RunningSim, connect: Connect) -> None:
    """Range bytes=N- (how a download resumes) answers the rest of the file."""
    client = connect(instant)
    url = _done(client)["video_url"]
    whole = httpx.get(url).content
    rest = httpx.get(url, headers={"Range": "bytes=1000-"})
    assert rest.status_code == 206 and rest.content == whole[1000:]


def test_a_range_past_the_end_answers_416(instant: RunningSim, connect: Connect) -> None:
    """A Range starting beyond the file answers 416 with the file's size."""
    client = connect(instant)
    url = _done(client)["video_url"]
    size = len(httpx.get(url).content)
    response = httpx.get(url, headers={"Range": f"bytes={size}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"


def test_content_answers_400_while_the_task_is_not_finished(
    start_sim: StartSim, connect: Connect
) -> None:
    """GET /videos/{id}/content on a running task answers 400."""
    sim = start_sim(job_seconds=30)
    client = connect(sim)
    response = client.get(f"/videos/{create(client).json()['id']}/content")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "task_not_completed"


def test_content_streams_the_clip_of_a_completed_task(
    instant: RunningSim, connect: Connect
) -> None:
    """GET /videos/{id}/content serves the same bytes as video_url."""
    client = connect(instant)
    task = _done(client)
    through_api = client.get(f"/videos/{task['id']}/content")
    assert through_api.status_code == 200
    assert through_api.content == httpx.get(task["video_url"]).content


def test_content_needs_the_key_when_a_token_is_set(start_sim: StartSim, connect: Connect) -> None:
    """/content is on the API, so it answers 401 without the key."""
    sim = start_sim(token="sekrit", job_seconds=0.0)
    client = connect(sim, headers={"Authorization": "Bearer sekrit"})
    task_id = create(client).json()["id"]
    assert connect(sim).get(f"/videos/{task_id}/content").status_code == 401


def test_a_head_request_gives_the_size_without_the_body(
    instant: RunningSim, connect: Connect
) -> None:
    """HEAD on a file URL answers its Content-Length and no bytes."""
    url = _done(connect(instant))["video_url"]
    response = httpx.head(url)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(httpx.get(url).content)
    assert response.content == b""


def test_a_download_abandoned_midway_is_taken_quietly(
    start_sim: StartSim, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that hangs up mid-download leaves no error logged and the server serving."""
    sim = start_sim(job_seconds=0.0, clip_bytes=50_000_000)
    client = connect(sim)
    url = _done(client)["video_url"]
    with caplog.at_level(logging.ERROR), httpx.stream("GET", url) as response:
        next(response.iter_bytes())
    poll(client, "video_x", lambda _: len(sim.recorder.on("files")) == 1)
    assert httpx.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
    assert [r.message for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_redirect_content_sends_content_to_the_file_host(
    start_sim: StartSim, connect: Connect
) -> None:
    """With redirect_content, /content answers 302 to a signed URL on the other origin."""
    sim = start_sim(redirect_content=True, job_seconds=0.0, token="sekrit")
    client = connect(sim, headers={"Authorization": "Bearer sekrit"})
    task_id = create(client).json()["id"]
    response = client.get(f"/videos/{task_id}/content")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(sim.file_base_url + f"/files/{task_id}.mp4?")
    assert httpx.get(location).status_code == 200


def test_file_rate_paces_the_body(start_sim: StartSim, connect: Connect) -> None:
    """With file_rate, a 20 kB clip at 50 kB/s takes about 0.4 s and arrives whole."""
    sim = start_sim(job_seconds=0.0, clip_bytes=20_000, file_rate=50_000)
    url = _done(connect(sim))["video_url"]
    began = time.monotonic()
    response = httpx.get(url)
    elapsed = time.monotonic() - began
    assert len(response.content) == 20_000
    assert 0.3 < elapsed < 3


def _read_until_silent(url: str, headers: dict[str, str] | None = None) -> bytes:
    """Whatever a body sends before going quiet for 0.3 s."""
    received = b""
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("GET", url, headers=headers, timeout=0.3) as response,
    ):
        for chunk in response.iter_bytes():
            received += chunk
    return received


def test_stall_after_sends_that_many_bytes_then_goes_silent(
    start_sim: StartSim, connect: Connect
) -> None:
    """With stall_after, a file response stops after that many body bytes and stays open."""
    sim = start_sim(job_seconds=0.0, stall_after=1_000)
    client = connect(sim)
    task = _done(client)
    received = _read_until_silent(task["video_url"])
    assert received == clip_bytes_of(task["id"], None)[:1_000]


def test_stall_after_counts_from_the_start_of_a_range(
    start_sim: StartSim, connect: Connect
) -> None:
    """A resumed download gets the next stall_after bytes, so resuming makes progress."""
    sim = start_sim(job_seconds=0.0, stall_after=1_000)
    task = _done(connect(sim))
    received = _read_until_silent(task["video_url"], {"Range": "bytes=1000-"})
    assert received == clip_bytes_of(task["id"], None)[1_000:2_000]


def test_a_range_shorter_than_stall_after_is_not_stalled(
    start_sim: StartSim, connect: Connect
) -> None:
    """A response whose body fits under stall_after ends normally."""
    sim = start_sim(job_seconds=0.0, stall_after=1_000)
    url = _done(connect(sim))["video_url"]
    response = httpx.get(url, headers={"Range": "bytes=0-499"}, timeout=2)
    assert (response.status_code, len(response.content)) == (206, 500)


def test_cut_after_closes_the_first_response_short_then_serves_whole(
    start_sim: StartSim, connect: Connect
) -> None:
    """With cut_after, a task's first body ends after that many bytes; the next is whole."""
    sim = start_sim(job_seconds=0.0, clip_bytes=50_000, cut_after=1_000)
    task = _done(connect(sim))
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("GET", task["video_url"], timeout=5) as response,
    ):
        for chunk in response.iter_bytes():
            received += chunk
    assert received == clip_bytes_of(task["id"], 50_000)[:1_000]
    assert len(httpx.get(task["video_url"], timeout=5).content) == 50_000


def test_cut_after_counts_from_the_start_of_a_range(start_sim: StartSim, connect: Connect) -> None:
    """A first response that is a range is cut that many bytes past its start."""
    sim = start_sim(job_seconds=0.0, clip_bytes=50_000, cut_after=1_000)
    task = _done(connect(sim))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(task["video_url"], headers={"Range": "bytes=2000-"}, timeout=5)
    whole = httpx.get(task["video_url"], headers={"Range": "bytes=2000-"}, timeout=5)
    assert (whole.status_code, len(whole.content)) == (206, 48_000)


def test_expire_first_url_refuses_each_tasks_first_download_only(
    start_sim: StartSim, connect: Connect
) -> None:
    """With expire_first_url, a task's first download answers 403; the same URL then works."""
    sim = start_sim(job_seconds=0.0, expire_first_url=True)
    client = connect(sim)
    first, second = _done(client), _done(client)
    assert httpx.get(first["video_url"]).status_code == 403
    assert httpx.get(first["video_url"]).status_code == 200
    assert httpx.get(second["video_url"]).status_code == 403
