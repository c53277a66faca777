"""Signals and crashes: SIGINT saves and exits 130; SIGKILL at any moment loses nothing."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.sim import RecordedRequest, RunningSim
from tests.e2e.conftest import (
    INSTANT,
    Batch,
    RunBatch,
    run_retrying_failed,
    start_run,
    wait_for_line,
)
from tests.plugins.sim_fixtures import StartSim
from tests.plugins.waiting import wait_until

SimProcess = Callable[..., tuple[str, Path]]


def test_sigint_exits_130_quickly_and_the_next_run_resumes(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Ctrl-C: exit 130 within a few seconds; the same command again collects the same tasks."""
    sim = start_sim(job_seconds=2.0)
    process = start_run(batch, sim.base_url)
    wait_for_line(process, " queued")
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    stdout, stderr = process.communicate(timeout=10)
    assert time.monotonic() - started < 3
    assert process.returncode == 130, stderr
    # One message, on stderr after the progress lines: what is kept on the service, and
    # what to do next.
    (message,) = [line for line in stderr.splitlines() if not line.startswith("[")]
    assert message.startswith("interrupted: ") and "task(s) already submitted are kept" in message
    assert message.endswith("run the same command again to collect them")
    assert "interrupted" not in stdout and "stopped early, so far done: " in stdout
    created = sim.recorder.tasks_created
    assert created >= 1
    result = run_batch(sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(batch.clips()) == 4
    assert sim.recorder.tasks_created == 4


def test_sigterm_is_an_interruption_too(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """SIGTERM stops a run like Ctrl-C: exit 130 within seconds, state saved, and the next run
    collects the same tasks."""
    sim = start_sim(job_seconds=2.0)
    process = start_run(batch, sim.base_url)
    wait_for_line(process, " queued")
    process.terminate()
    started = time.monotonic()
    process.communicate(timeout=10)
    assert time.monotonic() - started < 3
    assert process.returncode == 130
    states = {r["state"] for r in batch.renders()}
    assert states and states <= {"pending", "submitting", "queued", "running"}
    created = sim.recorder.tasks_created
    result = run_batch(sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(batch.clips()) == 4
    assert sim.recorder.tasks_created == 4 >= created


@pytest.fixture
def silent_api() -> Iterator[str]:
    """An API base whose server takes connections and never answers: creates stay on the wire."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"


def test_ctrl_c_before_anything_was_sent_says_so_once(batch: Batch) -> None:
    """Ctrl-C while every create is still refused at the door: one message, on stderr, that
    nothing was submitted (no claim that tasks keep rendering); exit 130; nothing sent."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refusing = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    process = start_run(batch, refusing)
    wait_for_line(process, "not sent")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    (message,) = [line for line in stderr.splitlines() if not line.startswith("[")]
    assert message.startswith("interrupted before any task was submitted"), stderr
    assert "run the same command again" in message
    assert "keep" not in message and "error" not in message
    assert "interrupted" not in stdout
    assert {(r["state"], r["creates_sent"]) for r in batch.renders()} == {("pending", 0)}


def test_a_second_ctrl_c_exits_at_once(batch: Batch, silent_api: str) -> None:
    """The first Ctrl-C waits for creates on the wire; a second one leaves at once with 130."""
    process = start_run(batch, silent_api)
    wait_for_line(process, " submitting")
    process.send_signal(signal.SIGINT)
    wait_for_line(process, "stopping")
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=10)
    # The first alone would wait CREATE_GRACE (1.5 s) for the unanswered creates.
    assert time.monotonic() - started < 1.0
    assert process.returncode == 130, stderr
    # Left mid-create: the next run sends the same key again, so nothing is paid twice.
    assert {r["state"] for r in batch.renders()} <= {"submitting", "pending"}
    assert "submitting" in {r["state"] for r in batch.renders()}


def _check_batch_whole(batch: Batch) -> None:
    """Every clip present once, whole (hash as recorded), nothing partial, nothing replaced."""
    document = batch.status()
    assert {job["state"] for job in document["jobs"]} == {"done"}
    for job in document["jobs"]:
        clip = batch.out / job["file"]
        sidecar = json.loads(clip.with_suffix(".json").read_text())
        assert sidecar["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
        assert sidecar["fingerprint"] == job["fingerprint"]
    assert not list(batch.out.rglob("*.part"))
    assert not list(batch.out.rglob(".history"))


def _tasks_per_fingerprint(state: Path) -> Counter[str]:
    with sqlite3.connect(state) as conn:
        keys = [row[0] for row in conn.execute("select idempotency_key from tasks")]
    return Counter(key.split("-g")[0] for key in keys)


def _kill_repeatedly(batch: Batch, base_url: str, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(kills):
        process = start_run(batch, base_url)
        time.sleep(rng.uniform(0.3, 1.2))
        process.kill()
        process.communicate()


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_pays_once(
    sim_process: SimProcess, batch: Batch, run_batch: RunBatch
) -> None:
    """~10 kill -9s, then a run: every clip whole exactly once, one task per fingerprint."""
    base_url, state = sim_process("--job-seconds", "0.6", "--drop-rate", "0.2", "--seed", "1")
    batch.write({f"s{i:02d}": f"prompt {i}" for i in range(4)}, takes=3)
    _kill_repeatedly(batch, base_url, kills=10, seed=42)
    result = run_batch(base_url, env=INSTANT)
    assert result.returncode == 0, result.stdout + result.stderr
    _check_batch_whole(batch)
    per_fingerprint = _tasks_per_fingerprint(state)
    assert len(per_fingerprint) == 12
    assert set(per_fingerprint.values()) == {1}


@pytest.mark.slow
def test_sigkill_without_idempotency_flags_every_extra_task(
    sim_process: SimProcess, batch: Batch, run_batch: RunBatch
) -> None:
    """When the service ignores the key, each fingerprint with an extra task is flagged."""
    base_url, state = sim_process(
        "--job-seconds", "0.6", "--drop-rate", "0.2", "--seed", "2", "--ignore-idempotency"
    )
    batch.write({f"s{i:02d}": f"prompt {i}" for i in range(4)}, takes=3)
    _kill_repeatedly(batch, base_url, kills=10, seed=43)
    result = run_retrying_failed(run_batch, base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    _check_batch_whole(batch)
    per_fingerprint = _tasks_per_fingerprint(state)
    extra = {fp for fp, count in per_fingerprint.items() if count > 1}
    assert extra, "the faults never produced an extra task: the test proves nothing"
    flagged = {r["fingerprint"] for r in batch.renders() if r["possible_duplicate"]}
    assert extra <= flagged


def test_a_second_run_of_the_same_batch_is_refused_while_one_runs(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Two runs of one batch at once could pay twice: the second exits 2, sending nothing."""
    sim = start_sim(job_seconds=2.0)
    first = start_run(batch, sim.base_url)
    try:
        wait_for_line(first, " queued")
        second = run_batch(sim.base_url)
        assert second.returncode == 2
        assert "another run" in second.stderr
        assert "plan:" not in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=10)


def _wait_for_part(batch: Batch) -> Path:
    """A part file with some bytes in it, once the run has written one."""
    return wait_until(
        lambda: next((p for p in batch.out.rglob("*.part") if p.stat().st_size > 0), None),
        timeout=15,
        what="a part file written",
    )


def _downloads(sim: RunningSim, count: int) -> list[RecordedRequest]:
    """The clip downloads the simulator recorded, once there are ``count`` of them.

    The simulator records a request when its handler returns, which can be a moment after the
    client has read the last byte and the run has exited.
    """

    def recorded() -> list[RecordedRequest] | None:
        gets = [r for r in sim.recorder.requests if r.method == "GET" and r.listener == "files"]
        return gets if len(gets) >= count else None

    return wait_until(recorded, what=f"{count} download(s) recorded")


def test_a_part_left_by_ctrl_c_is_not_resumed_for_an_edited_shot(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Ctrl-C mid-download, shot edited: the new task's clip is fetched whole, no Range."""
    sim = start_sim(job_seconds=0.2, file_rate=50000, clip_bytes=100000)
    batch.write({"s01": "waves"})
    process = start_run(batch, sim.base_url)
    part = _wait_for_part(batch)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 130, stderr
    assert part.exists()
    batch.write({"s01": "an edited prompt"})
    sim.recorder.clear()
    result = run_batch(sim.base_url, "--max-new", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    gets = _downloads(sim, 1)
    assert all("range" not in r.headers for r in gets)
    (clip,) = batch.clips()
    sidecar = json.loads(clip.with_suffix(".json").read_text())
    assert sidecar["bytes"] == clip.stat().st_size == 100000
    assert not part.exists()


def test_parts_left_by_ctrl_c_are_not_resumed_after_shot_ids_are_swapped(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Ctrl-C mid-download, two shot ids swapped: each clip is its own task's, fetched whole."""
    sim = start_sim(job_seconds=0.2, file_rate=50000, clip_bytes=100000)
    batch.write({"s01": "waves", "s02": "dunes"})
    process = start_run(batch, sim.base_url)
    _wait_for_part(batch)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 130, stderr
    batch.write({"s01": "dunes", "s02": "waves"})
    sim.recorder.clear()
    result = run_batch(sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    gets = _downloads(sim, 2)
    assert all("range" not in r.headers for r in gets)
    for clip in batch.clips():
        sidecar = json.loads(clip.with_suffix(".json").read_text())
        assert sidecar["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
        assert clip.stat().st_size == 100000
    assert not list(batch.out.rglob("*.part"))
