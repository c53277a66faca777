"""``shotrunner run`` against every fault knob of the simulator."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import ClassVar

import httpx
import pytest

from runner.sim import RunningSim
from tests.e2e.conftest import INSTANT, Batch, RunBatch, run_retrying_failed
from tests.plugins.sim_fixtures import StartSim


def test_remote_failures_are_resubmitted_up_to_max_attempts(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Tasks that fail upstream are tried --max-attempts times in all, then the job fails."""
    sim = start_sim(fail_rate=1.0)
    result = run_batch(sim.base_url, "--max-attempts", "3")
    assert result.returncode == 1
    keys = sorted(r.headers["idempotency-key"][-3:] for r in sim.recorder.creates())
    assert keys == ["-a1"] * 4 + ["-a2"] * 4 + ["-a3"] * 4
    assert "failed: 4" in result.stdout
    assert "upstream" in result.stdout.lower()
    assert batch.clips() == []


def test_policy_refusals_are_never_resubmitted(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A moderation refusal fails its job after one task; a second run holds it."""
    sim = start_sim(refuse_rate=1.0)
    assert run_batch(sim.base_url).returncode == 1
    assert sim.recorder.tasks_created == 4
    assert run_batch(sim.base_url).returncode == 1
    assert sim.recorder.tasks_created == 4
    errors = {job["error"] for job in batch.status()["jobs"]}
    assert all("policy" in error for error in errors)


def test_server_errors_are_retried_without_extra_tasks(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """5xx answers are retried with the same key (3 sends a run at most; a job that meets
    three in a row fails, flagged, until --retry-failed): every clip arrives, one task per job."""
    sim = start_sim(error_rate=0.4, seed=3)
    result = run_retrying_failed(run_batch, sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(batch.clips()) == 4
    assert sim.recorder.tasks_created == 4
    assert any(r.status and r.status >= 500 for r in sim.recorder.requests)


def test_rate_limits_are_waited_out(start_sim: StartSim, batch: Batch, run_batch: RunBatch) -> None:
    """429 answers on any request are waited out: every clip arrives, one task per job."""
    sim = start_sim(rate_limit_rate=0.4, seed=5)
    result = run_batch(sim.base_url, env=INSTANT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(batch.clips()) == 4
    assert sim.recorder.tasks_created == 4
    assert any(r.status == 429 for r in sim.recorder.requests)


def test_concurrency_limit_of_the_service_is_respected(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Against max_active=2 with --concurrency 8, few creates meet a 429 and all clips arrive."""
    sim = start_sim(max_active=2)
    batch.write({f"s{i:02d}": f"prompt {i}" for i in range(10)})
    result = run_batch(sim.base_url, "--concurrency", "8")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(batch.clips()) == 10
    answered_429 = [r for r in sim.recorder.on("api") if r.method == "POST" and r.status == 429]
    assert len(answered_429) <= 5


def test_dropped_answers_are_retried_with_the_same_key_and_flagged(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A create whose answer is lost is retried under the same key (no extra task), flagged."""
    sim = start_sim(drop_rate=0.5, seed=7)
    result = run_batch(sim.base_url, env=INSTANT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(batch.clips()) == 4
    assert sim.recorder.tasks_created == 4
    flagged = [job for job in batch.status()["jobs"] if job["possible_duplicate"]]
    assert flagged
    assert "possible duplicates" in result.stdout


def test_without_idempotency_every_extra_task_is_flagged(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """When the service ignores the key, every fingerprint with an extra task is flagged."""
    sim = start_sim(drop_rate=0.5, seed=7, ignore_idempotency=True)
    assert run_batch(sim.base_url, env=INSTANT).returncode == 0
    per_fingerprint = Counter(
        r.headers["idempotency-key"].split("-g")[0] for r in sim.recorder.creates()
    )
    assert sum(per_fingerprint.values()) > 4
    flagged = {r["fingerprint"] for r in batch.renders() if r["possible_duplicate"]}
    assert {fp for fp, count in per_fingerprint.items() if count > 1} <= flagged


def test_expired_links_are_refreshed(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Each task's first link answers 403 (expired): the run asks the task again for a fresh
    link and every clip arrives whole, with no second create."""
    sim = start_sim(expire_first_url=True, clip_bytes=64_000)
    result = run_batch(sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sim.recorder.tasks_created == 4
    assert len([r for r in sim.recorder.on("api") if r.method == "POST"]) == 4
    for task_id in {r.task_id for r in sim.recorder.creates()}:
        asked = [r for r in sim.recorder.requests if r.task_id == task_id and r.method == "GET"]
        downloads = [r for r in asked if r.listener == "files"]
        assert [r.status for r in downloads] == [403, 200], task_id
        expired_at = downloads[0].at
        polls = [r for r in asked if r.listener == "api" and r.status == 200]
        # The URL of the final download came from a retrieve after the 403, not before it.
        assert any(expired_at < r.at < downloads[1].at for r in polls), task_id
        assert downloads[1].query["exp"] != downloads[0].query["exp"], task_id
    clips = batch.clips()
    assert len(clips) == 4
    for clip in clips:
        sidecar = json.loads(clip.with_suffix(".json").read_text())
        assert sidecar["bytes"] == clip.stat().st_size == 64_000
        assert sidecar["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()


def test_gateway_quirks_are_understood(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Odd statuses, progress strings, URLs in metadata or only at /content: all delivered."""
    sim = start_sim(quirks=True, seed=11)
    batch.write({f"s{i:02d}": f"prompt {i}" for i in range(8)})
    result = run_batch(sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(batch.clips()) == 8


def test_padded_clips_arrive_whole(start_sim: StartSim, batch: Batch, run_batch: RunBatch) -> None:
    """Large clips stream to .part and arrive with exactly the served size."""
    sim = start_sim(clip_bytes=300_000)
    assert run_batch(sim.base_url).returncode == 0
    assert {clip.stat().st_size for clip in batch.clips()} == {300_000}


def test_lost_tasks_are_resubmitted_then_failed(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Tasks the service forgets are submitted again, up to --max-attempts in all."""
    sim = start_sim(lose_rate=1.0)
    result = run_batch(sim.base_url, "--max-attempts", "2")
    assert result.returncode == 1
    assert sim.recorder.tasks_created == 8
    assert all("lost" in job["error"] for job in batch.status()["jobs"])


def test_hanging_tasks_time_out_and_keep_their_task(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A task past --task-timeout fails as timed out, its task id kept for --retry-failed."""
    sim = start_sim(hang_rate=1.0)
    result = run_batch(sim.base_url, "--task-timeout", "0.5")
    assert result.returncode == 1
    jobs = batch.status()["jobs"]
    assert all(job["task_id"] and "timed out" in job["error"] for job in jobs)
    assert sim.recorder.tasks_created == 4


def test_retry_failed_collects_a_late_finish_without_paying_again(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A task that finished after its timeout is collected by --retry-failed: no new task."""
    sim = start_sim(job_seconds=1.5)
    assert run_batch(sim.base_url, "--task-timeout", "0.3").returncode == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _all_finished(sim):
        time.sleep(0.1)
    result = run_batch(sim.base_url, "--retry-failed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sim.recorder.tasks_created == 4
    assert len(batch.clips()) == 4


def _all_finished(sim: object) -> bool:
    import httpx

    base = sim.base_url  # type: ignore[attr-defined]
    ids = {r.task_id for r in sim.recorder.creates()}  # type: ignore[attr-defined]
    return all(
        httpx.get(f"{base}/videos/{task_id}").json()["status"] == "completed" for task_id in ids
    )


class _HostileGateway(http.server.BaseHTTPRequestHandler):
    """A gateway in front of the simulator that passes everything on, but answers the create
    of one prompt ("hostile") with a task id carrying a terminal sequence: that task exists
    upstream (and would be billed), yet cannot be followed."""

    upstream = ""
    creates: ClassVar[list[bytes]] = []

    def _forward(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {
            name: value
            for name in ("Authorization", "Content-Type", "Idempotency-Key")
            if (value := self.headers.get(name)) is not None
        }
        answer = httpx.request(method, self.upstream + self.path, content=body, headers=headers)
        content = answer.content
        if method == "POST":
            self.creates.append(body)
            if b"hostile" in body and answer.status_code == 200:
                task = answer.json()
                task["id"] = "task\x1b]0;owned\x07"
                content = json.dumps(task).encode()
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def do_GET(self) -> None:
        self._forward("GET")

    def do_POST(self) -> None:
        self._forward("POST")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile_gateway(sim: RunningSim) -> Iterator[tuple[str, list[bytes]]]:
    origin = sim.base_url.removesuffix("/v1")
    handler = type("Gateway", (_HostileGateway,), {"upstream": origin, "creates": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler.creates
    server.shutdown()
    server.server_close()


def test_a_create_answered_with_an_unusable_task_id_fails_that_job_only(
    hostile_gateway: tuple[str, list[bytes]], batch: Batch, run_batch: RunBatch
) -> None:
    """A gateway answers one create with a task id that cannot be kept: that job fails with a
    short message saying it may be billed, its create is never sent again (nor by the next
    run), the terminal sequence is never printed, and the other jobs are delivered."""
    base, creates = hostile_gateway
    batch.write({"s01": "waves", "s02": "hostile", "s03": "dunes"})
    result = run_batch(base)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert "s02/1: the service answered the create without a usable task id" in result.stdout
    assert "may have been billed; not sent again" in result.stdout
    assert len(batch.clips()) == 2
    assert sum(b"hostile" in body for body in creates) == 1
    again = run_batch(base)
    assert again.returncode == 1
    assert sum(b"hostile" in body for body in creates) == 1
    (hostile,) = [job for job in batch.status()["jobs"] if job["shot"] == "s02"]
    assert (hostile["state"], hostile["task_id"]) == ("failed", None)
