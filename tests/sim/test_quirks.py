"""quirks: the gateway's odder dialect, as listed in docs/api.md."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runner.sim import RunningSim
from tests.plugins.sim_fixtures import StartSim
from tests.sim.conftest import Connect, create

CANONICAL = {"queued", "in_progress", "completed", "failed"}


@pytest.fixture
def quirky(start_sim: StartSim) -> RunningSim:
    return start_sim(quirks=True, seed=11, job_seconds=0.0)


def _finished_tasks(sim: RunningSim, client: httpx.Client, count: int) -> list[dict[str, Any]]:
    ids = [create(client).json()["id"] for _ in range(count)]
    return [client.get(f"/videos/{task_id}").json() for task_id in ids]


def test_status_words_vary_in_case_and_spelling(quirky: RunningSim, connect: Connect) -> None:
    """Completed tasks say SUCCESS, succeeded, Completed...: not only the canonical word."""
    tasks = _finished_tasks(quirky, connect(quirky), 30)
    words = {task["status"] for task in tasks}
    assert len(words) > 2 and not words <= CANONICAL
    assert {word.lower() for word in words} <= {"success", "succeeded", "completed"}


def test_progress_comes_as_int_float_or_percent_string(
    quirky: RunningSim, connect: Connect
) -> None:
    """Progress appears in all three forms across tasks."""
    tasks = _finished_tasks(quirky, connect(quirky), 30)
    kinds = {type(task["progress"]) for task in tasks}
    assert kinds == {int, float, str}
    assert all(task["progress"] == "100%" for task in tasks if isinstance(task["progress"], str))


def test_the_url_is_in_video_url_metadata_or_only_behind_content(
    quirky: RunningSim, connect: Connect
) -> None:
    """Some tasks give video_url, some metadata.url, some neither (use /content)."""
    client = connect(quirky)
    places = set()
    for task in _finished_tasks(quirky, client, 30):
        if task["video_url"]:
            places.add("video_url")
        elif task["metadata"].get("url"):
            places.add("metadata")
            assert httpx.get(task["metadata"]["url"]).status_code == 200
        else:
            places.add("content_only")
            content = client.get(f"/videos/{task['id']}/content", follow_redirects=True)
            assert content.status_code == 200
    assert places == {"video_url", "metadata", "content_only"}


def test_tasks_carry_unknown_extra_fields(quirky: RunningSim, connect: Connect) -> None:
    """Quirky task objects hold fields docs/api.md does not list."""
    (task,) = _finished_tasks(quirky, connect(quirky), 1)
    assert {"metadata", "x_gateway_trace"} <= set(task)


def test_error_bodies_are_flat(quirky: RunningSim, connect: Connect) -> None:
    """A refused create answers {"code", "message", "data"} without the error wrapper."""
    response = connect(quirky).post("/videos", json={"model": "omni-fast"})
    assert response.status_code == 400
    assert set(response.json()) == {"code", "message", "data"}


def test_an_unknown_id_answers_400_task_not_exist(quirky: RunningSim, connect: Connect) -> None:
    """An unknown task id answers 400 with code task_not_exist."""
    response = connect(quirky).get("/videos/video_nope")
    assert response.status_code == 400
    assert response.json()["code"] == "task_not_exist"


def test_a_failed_task_keeps_an_error_object_and_an_odd_status(
    start_sim: StartSim, connect: Connect
) -> None:
    """A quirky failed task still carries error {message, code}, its status in any case."""
    sim = start_sim(quirks=True, fail_rate=1.0, job_seconds=0.0, seed=5)
    tasks = _finished_tasks(sim, connect(sim), 10)
    assert {task["status"].lower() for task in tasks} <= {"failed", "failure"}
    assert all(task["error"]["code"] == "upstream_error" for task in tasks)


def test_content_redirects_to_the_file_host_for_some_tasks(
    quirky: RunningSim, connect: Connect
) -> None:
    """In quirks mode /content answers the bytes for some tasks and a 302 for others."""
    client = connect(quirky)
    tasks = _finished_tasks(quirky, client, 30)
    statuses = {client.get(f"/videos/{task['id']}/content").status_code for task in tasks}
    assert statuses == {200, 302}
