"""Request-level faults: 5xx, 429, a concurrency limit, and the dropped answer to a create."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.plugins.sim_fixtures import StartSim
from tests.sim.conftest import Connect, create


def test_error_rate_answers_5xx_and_creates_nothing(start_sim: StartSim, connect: Connect) -> None:
    """With error_rate 1 every API request answers 500, 502 or 503 and no task is made."""
    sim = start_sim(error_rate=1.0, seed=1)
    client = connect(sim)
    statuses = {create(client).status_code for _ in range(20)}
    assert statuses <= {500, 502, 503} and len(statuses) > 1
    assert sim.recorder.tasks_created == 0


def test_error_rate_bodies_are_sometimes_html_or_empty(
    start_sim: StartSim, connect: Connect
) -> None:
    """5xx bodies vary as behind a proxy: a JSON error, an HTML page, or nothing."""
    sim = start_sim(error_rate=1.0, seed=2)
    client = connect(sim)
    kinds = set()
    for _ in range(40):
        response = client.get("/videos/video_x")
        kinds.add(response.headers.get("content-type", "").split(";")[0] or "empty")
    assert {"application/json", "text/html"} <= kinds


def test_rate_limit_rate_answers_429(start_sim: StartSim, connect: Connect) -> None:
    """With rate_limit_rate 1 every API request answers 429 and no task is made."""
    sim = start_sim(rate_limit_rate=1.0)
    response = create(connect(sim))
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert sim.recorder.tasks_created == 0


def test_429_mostly_comes_without_retry_after(start_sim: StartSim, connect: Connect) -> None:
    """Retry-After is usually absent from a 429, as on the real gateway."""
    sim = start_sim(rate_limit_rate=1.0, seed=3)
    client = connect(sim)
    with_header = sum("retry-after" in create(client).headers for _ in range(30))
    assert with_header < 15


def test_max_active_answers_429_once_that_many_tasks_are_unfinished(
    start_sim: StartSim, connect: Connect
) -> None:
    """With max_active 2, the third create while two tasks run answers 429."""
    sim = start_sim(max_active=2, job_seconds=30)
    client = connect(sim)
    assert [create(client).status_code for _ in range(3)] == [200, 200, 429]
    assert sim.recorder.tasks_created == 2


def test_max_active_frees_a_slot_when_a_task_finishes(
    start_sim: StartSim, connect: Connect
) -> None:
    """Finished tasks do not count against max_active."""
    sim = start_sim(max_active=1, job_seconds=0.0)
    client = connect(sim)
    assert [create(client).status_code for _ in range(3)] == [200, 200, 200]


def test_drop_rate_creates_the_task_then_drops_the_connection(
    start_sim: StartSim, connect: Connect
) -> None:
    """With drop_rate 1 the client gets no answer, yet the task exists (the ambiguous create)."""
    sim = start_sim(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        create(connect(sim))
    assert sim.recorder.tasks_created == 1
    recorded = sim.recorder.creates()[0]
    assert recorded.status is None and recorded.task_id is not None


def test_a_dropped_create_can_be_found_again_by_its_idempotency_key(
    start_sim: StartSim, connect: Connect
) -> None:
    """Retrying a dropped create with the same key reaches the task it made."""
    sim = start_sim(drop_rate=0.5, seed=4)
    client = connect(sim)
    answers = []
    for _ in range(10):
        try:
            answers.append(create(client, key="same").json()["id"])
        except httpx.RemoteProtocolError:
            continue
    assert answers and set(answers) == {sim.recorder.creates()[0].task_id}
    assert sim.recorder.tasks_created == 1


@pytest.mark.parametrize("status", [401, 403])
def test_deny_polls_refuses_retrieves_but_takes_creates(
    start_sim: StartSim, connect: Connect, status: int
) -> None:
    """With deny_polls, creates make tasks and every retrieve answers that status."""
    sim = start_sim(deny_polls=status)
    client = connect(sim)
    created = create(client)
    assert created.status_code == 200
    assert client.get(f"/videos/{created.json()['id']}").status_code == status
    assert client.get("/videos/video_unknown").status_code == status


def test_create_delay_holds_each_create_before_answering(
    start_sim: StartSim, connect: Connect
) -> None:
    """With create_delay 0.3, a create is answered no sooner than 0.3 s after it is sent."""
    sim = start_sim(create_delay=0.3)
    client = connect(sim)
    began = time.monotonic()
    assert create(client).status_code == 200
    assert time.monotonic() - began >= 0.3
    began = time.monotonic()
    assert client.get("/videos/video_unknown").status_code == 404
    assert time.monotonic() - began < 0.3
