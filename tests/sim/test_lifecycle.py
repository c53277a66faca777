"""Tasks move queued, in_progress, then completed or failed, by time since creation."""

from __future__ import annotations

import math

import pytest

from runner.sim import RunningSim
from runner.sim.state import Outcome, Task
from tests.plugins.sim_fixtures import StartSim
from tests.sim.conftest import Connect, create, finished, poll


def _task(outcome: Outcome = "completed", duration: float = 10.0) -> Task:
    return Task(id="video_t", created_at=1000.0, duration=duration, outcome=outcome, model="m")


def test_a_task_is_queued_first_then_in_progress_with_rising_progress() -> None:
    """Status follows the clock: queued, then in_progress with progress that only rises."""
    task = _task()
    assert task.phase(1000.5) == ("queued", 0)
    seen = [task.phase(1000.0 + t) for t in (1.5, 4.0, 7.0, 9.9)]
    assert all(status == "in_progress" for status, _ in seen)
    progress = [p for _, p in seen]
    assert progress == sorted(progress) and progress[0] < progress[-1] <= 99


def test_a_task_completes_at_its_duration_with_progress_100() -> None:
    """Once its duration has passed, a task is completed at 100."""
    assert _task().phase(1010.0) == ("completed", 100)


def test_a_hung_task_stays_in_progress_forever() -> None:
    """A task destined to hang never finishes and counts as active forever."""
    task = _task("hang")
    assert task.phase(1_000_000.0)[0] == "in_progress"
    assert task.finishes_at == math.inf


def test_a_lost_task_is_gone_once_its_job_time_has_passed() -> None:
    """A lost task looks normal while it runs, then the server no longer knows it."""
    task = _task("lost")
    assert task.phase(1005.0)[0] == "in_progress"
    assert task.phase(1010.0)[0] == "gone"


def test_a_refused_task_fails_as_soon_as_it_leaves_the_queue() -> None:
    """A policy refusal comes before rendering, so it fails at the end of the queued phase."""
    task = _task("refused")
    assert task.phase(1001.0)[0] == "failed"


def test_a_zero_second_job_is_done_at_once() -> None:
    """job_seconds 0 makes tasks finish immediately (a first poll sees them done)."""
    assert _task(duration=0.0).phase(1000.0) == ("completed", 100)


def test_create_answers_a_queued_task_in_the_documented_shape(
    sim: RunningSim, connect: Connect
) -> None:
    """The create answer is the task object of docs/api.md, queued at progress 0."""
    body = create(connect(sim), seconds="8").json()
    assert body["status"] == "queued" and body["progress"] == 0
    assert body["id"] == body["task_id"] and body["id"].startswith("video_")
    assert body["object"] == "video" and body["model"] == "omni-fast"
    assert body["video_url"] == "" and isinstance(body["created_at"], int)


def test_a_task_completes_over_http_with_a_video_url(sim: RunningSim, connect: Connect) -> None:
    """Polling a task sees it completed with a video_url on the file host."""
    client = connect(sim)
    task_id = create(client).json()["id"]
    task = poll(client, task_id, finished).json()
    assert task["status"] == "completed" and task["progress"] == 100
    assert task["video_url"].startswith(sim.file_base_url + "/files/")


def test_fail_rate_makes_tasks_fail_with_an_upstream_error(
    start_sim: StartSim, connect: Connect
) -> None:
    """With fail_rate 1, every task ends failed with code upstream_error."""
    sim = start_sim(fail_rate=1.0, job_seconds=0.05)
    client = connect(sim)
    task = poll(client, create(client).json()["id"], finished).json()
    assert task["status"] == "failed"
    assert task["error"]["code"] == "upstream_error" and task["error"]["message"]


def test_refuse_rate_makes_tasks_fail_with_a_policy_code(
    start_sim: StartSim, connect: Connect
) -> None:
    """With refuse_rate 1, every task fails with a policy-like code."""
    sim = start_sim(refuse_rate=1.0, job_seconds=0.05)
    client = connect(sim)
    task = poll(client, create(client).json()["id"], finished).json()
    assert task["status"] == "failed"
    assert "policy" in task["error"]["code"]


def test_hang_rate_keeps_tasks_in_progress_past_their_job_time(
    start_sim: StartSim, connect: Connect
) -> None:
    """With hang_rate 1, a task is still in_progress well after job_seconds."""
    sim = start_sim(hang_rate=1.0, job_seconds=0.0)
    client = connect(sim)
    task = client.get(f"/videos/{create(client).json()['id']}").json()
    assert task["status"] == "in_progress"


def test_lose_rate_makes_later_retrieves_answer_not_found(
    start_sim: StartSim, connect: Connect
) -> None:
    """With lose_rate 1, the server forgets a finished task: 404 task_not_found."""
    sim = start_sim(lose_rate=1.0, job_seconds=0.0)
    client = connect(sim)
    response = client.get(f"/videos/{create(client).json()['id']}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "task_not_found"


def test_an_unknown_task_id_answers_404(sim: RunningSim, connect: Connect) -> None:
    """Retrieving an id the server never made answers 404 with an error object."""
    response = connect(sim).get("/videos/video_nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "task_not_found"


@pytest.mark.parametrize("seed", [7, 8])
def test_the_same_seed_draws_the_same_outcomes(
    start_sim: StartSim, connect: Connect, seed: int
) -> None:
    """Two simulators with one seed give the same sequence of task outcomes."""
    runs = []
    for _ in range(2):
        sim = start_sim(fail_rate=0.5, seed=seed, job_seconds=0.0)
        client = connect(sim)
        ids = [create(client).json()["id"] for _ in range(12)]
        runs.append([client.get(f"/videos/{i}").json()["status"] for i in ids])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {"completed", "failed"}
