"""The recorder: what the simulator received, on which listener, and what it answered."""

from __future__ import annotations

import httpx

from runner.sim import RunningSim
from tests.plugins.sim_fixtures import StartSim
from tests.plugins.waiting import wait_until
from tests.sim.conftest import BODY, Connect, create


def test_a_create_is_recorded_with_lower_case_headers_and_its_body(
    sim: RunningSim, connect: Connect
) -> None:
    """The recorded create holds the parsed JSON, headers by lower-case name, and its status."""
    create(connect(sim, headers={"Authorization": "Bearer k"}), key="fp-g1-a1")
    (recorded,) = sim.recorder.requests
    assert (recorded.listener, recorded.method, recorded.path) == ("api", "POST", "/v1/videos")
    assert recorded.json == BODY and recorded.status == 200
    assert recorded.headers["authorization"] == "Bearer k"
    assert recorded.headers["idempotency-key"] == "fp-g1-a1"


def test_creates_lists_only_requests_that_made_a_new_task(
    sim: RunningSim, connect: Connect
) -> None:
    """Replays and refused creates are recorded but are not in creates()."""
    client = connect(sim)
    made = create(client, key="k").json()["id"]
    create(client, key="k")
    client.post("/videos", json={"prompt": "no model"})
    assert [r.task_id for r in sim.recorder.creates()] == [made]
    assert sim.recorder.tasks_created == 1
    assert len(sim.recorder.requests) == 3


def test_downloads_are_recorded_on_the_files_listener(
    instant: RunningSim, connect: Connect
) -> None:
    """A download appears under listener "files" with its query and no Authorization."""
    client = connect(instant, headers={"Authorization": "Bearer k"})
    task_id = create(client).json()["id"]
    url = client.get(f"/videos/{task_id}").json()["video_url"]
    httpx.get(url)
    # The server records a download once it has written the last byte, which may be just
    # after the client has read it.
    wait_until(lambda: instant.recorder.on("files"), what="the download recorded")
    (download,) = instant.recorder.on("files")
    assert download.path == f"/files/{task_id}.mp4" and download.status == 200
    assert {"exp", "sig"} <= set(download.query)
    assert "authorization" not in download.headers


def test_retrieves_name_the_task_they_asked_about(sim: RunningSim, connect: Connect) -> None:
    """A retrieve's record carries the task id from its path."""
    connect(sim).get("/videos/video_abc")
    assert sim.recorder.requests[0].task_id == "video_abc"
    assert sim.recorder.requests[0].status == 404


def test_record_false_keeps_no_requests_but_counts_tasks(
    start_sim: StartSim, connect: Connect
) -> None:
    """A simulator started with record=False logs nothing yet still counts created tasks."""
    sim = start_sim(record=False)
    client = connect(sim)
    create(client)
    create(client)
    assert sim.recorder.requests == []
    assert sim.recorder.tasks_created == 2
