"""The simulator starts in-process and answers a create, a poll and a download."""

from __future__ import annotations

import time

import httpx

from runner.sim import RunningSim


def test_a_task_completes_and_its_clip_downloads(sim: RunningSim) -> None:
    """A created task completes within its job time and its video_url serves an MP4."""
    with httpx.Client(base_url=sim.base_url) as client:
        created = client.post("/videos", json={"model": "omni-fast", "prompt": "waves"})
        assert created.status_code == 200
        task_id = created.json()["id"]
        deadline = time.monotonic() + 5
        while (task := client.get(f"/videos/{task_id}").json())["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        clip = client.get(task["video_url"])
    assert clip.status_code == 200
    assert clip.content[4:8] == b"ftyp"
