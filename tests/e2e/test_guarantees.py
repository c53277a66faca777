"""The documented guarantees of ``run``, ``status`` and the sidecars, proved with the real CLI
against the real simulator on loopback: a key refused mid-run, a download resumed with
``Range``, the sidecar's values, image provenance, what is left to pay, edits kept in
``.history/``, and which exit code wins."""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from runner.sim import RunningSim
from runner.sim.clip import clip_bytes_of
from tests.e2e.conftest import INSTANT, Batch, RunBatch, cli_env, run_cli, start_run, wait_for_line
from tests.plugins.images import tiny_png
from tests.plugins.sim_fixtures import StartSim
from tests.plugins.waiting import wait_until


def _sidecar(batch: Batch, file: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((batch.out / file).with_suffix(".json").read_text())
    return data


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----- 401/403 on a poll ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_poll_stops_the_run_with_exit_2_and_no_create_after_it(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch, status: int
) -> None:
    """401/403 on a retrieve: exit 2 naming the key, no traceback, no create sent after it."""
    sim = start_sim(deny_polls=status)
    result = run_batch(sim.base_url, "--concurrency", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "SHOTRUNNER_API_KEY" in result.stderr and f"HTTP {status}" in result.stderr
    assert "Traceback" not in result.stderr
    refused = [r for r in sim.recorder.on("api") if r.method == "GET" and r.status == status]
    assert refused, "the run never polled: the test proves nothing"
    posts = [r for r in sim.recorder.on("api") if r.method == "POST"]
    assert posts and all(r.at <= refused[0].at for r in posts)
    assert sim.recorder.tasks_created == 1


# ----- Range resume --------------------------------------------------------------------------


def test_a_download_cut_mid_file_resumes_with_range_to_the_whole_clip(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Connection closed after 100 kB of 250 kB: the rest comes as a 206 to ``Range:
    bytes=100000-`` from the same task, and the clip's sha256 is the simulator's clip's."""
    sim = start_sim(clip_bytes=250_000, cut_after=100_000)
    batch.write({"s01": "waves"})
    result = run_batch(sim.base_url, env=INSTANT)
    assert result.returncode == 0, result.stdout + result.stderr
    (task_id,) = [r.task_id for r in sim.recorder.creates()]
    downloads = [r for r in sim.recorder.on("files") if r.method == "GET"]
    assert [(r.headers.get("range"), r.status) for r in downloads] == [
        (None, 200),
        ("bytes=100000-", 206),
    ]
    assert {r.task_id for r in downloads} == {task_id}
    (clip,) = batch.clips()
    expected = hashlib.sha256(clip_bytes_of(task_id, 250_000)).hexdigest()
    assert _sha256(clip) == expected == _sidecar(batch, "s01/take-1.mp4")["sha256"]
    assert not list(batch.out.rglob("*.part"))


# ----- sidecar values ------------------------------------------------------------------------


def test_sidecar_task_id_and_fingerprint_match_status(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Each sidecar names the task id and fingerprint that ``status --json`` shows for its job."""
    assert run_batch(sim.base_url).returncode == 0
    jobs = batch.status()["jobs"]
    assert len(jobs) == 4
    task_ids = {r.task_id for r in sim.recorder.creates()}
    for job in jobs:
        sidecar = _sidecar(batch, job["file"])
        assert (sidecar["task_id"], sidecar["fingerprint"]) == (job["task_id"], job["fingerprint"])
        assert (sidecar["shot"], sidecar["take"]) == (job["shot"], job["take"])
    assert {job["task_id"] for job in jobs} == task_ids


def test_sidecar_generation_is_2_after_force(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """``run --force s01``: s01's sidecar says generation 2 (the others stay 1), as status does."""
    assert run_batch(sim.base_url).returncode == 0
    assert run_batch(sim.base_url, "--force", "s01").returncode == 0
    generations = {job["shot"]: job["generation"] for job in batch.status()["jobs"]}
    assert generations == {"s01": 2, "s02": 1, "s03": 1, "s04": 1}
    for shot, generation in generations.items():
        assert _sidecar(batch, f"{shot}/take-1.mp4")["generation"] == generation
    (old,) = (batch.out / "s01/.history").glob("*.json")
    assert json.loads(old.read_text())["generation"] == 1


def test_sidecar_says_simulated_under_simulate(batch: Batch) -> None:
    """A clip rendered with ``--simulate`` has ``simulated: true`` in its sidecar."""
    batch.write({"s01": "waves"})
    result = run_cli(
        "run", str(batch.manifest), "--out", str(batch.out), "--simulate", env=cli_env(None)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert _sidecar(batch, "s01/take-1.mp4")["simulated"] is True


def test_sidecar_says_not_simulated_against_an_api(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A clip rendered through ``--api-base`` has ``simulated: false`` in its sidecar."""
    batch.write({"s01": "waves"})
    assert run_batch(sim.base_url).returncode == 0
    assert _sidecar(batch, "s01/take-1.mp4")["simulated"] is False


# ----- local image provenance ----------------------------------------------------------------


def test_a_local_image_is_recorded_by_path_and_sha256_never_base64(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """The service gets the image as a data URI; the sidecar keeps its path and sha256 only."""
    image = tiny_png(4, 4)
    (batch.manifest.parent / "frames").mkdir()
    (batch.manifest.parent / "frames/start.png").write_bytes(image)
    batch.manifest.write_text(
        "version: 1\nshots:\n  - id: s01\n    mode: first_frame\n"
        "    images: [frames/start.png]\n    prompt: a surfer walks in\n    seconds: 4\n"
    )
    assert run_batch(sim.base_url).returncode == 0
    encoded = base64.b64encode(image).decode()
    (create,) = sim.recorder.creates()
    assert create.json["first_image_url"] == f"data:image/png;base64,{encoded}"
    text = (batch.out / "s01/take-1.json").read_text()
    assert encoded not in text and "base64" not in text
    sidecar = json.loads(text)
    images = [
        value
        for value in _walk(sidecar["request"])
        if isinstance(value, dict) and "sha256" in value
    ]
    assert len(images) == 1
    assert images[0]["sha256"] == hashlib.sha256(image).hexdigest()
    assert images[0]["source"].endswith("frames/start.png")


def _walk(value: Any) -> list[Any]:
    """Every value nested in a JSON document, itself included."""
    found = [value]
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict | list):
        for child in children:
            found += _walk(child)
    return found


# ----- seconds to pay ------------------------------------------------------------------------

_COSTED = """\
version: 1
shots:
  - {id: a, prompt: four seconds twice, seconds: 4, takes: 2}
  - {id: b, prompt: six seconds, seconds: 6}
  - {id: c, prompt: the same six seconds, seconds: 6}
  - {id: d, prompt: the same six seconds, seconds: 6}
  - {id: e, prompt: no seconds set}
"""


def _seconds_to_pay(batch: Batch, command: str) -> int:
    result = run_cli(command, str(batch.manifest), "--out", str(batch.out), "--json")
    assert result.returncode == 0, result.stderr
    seconds: int = json.loads(result.stdout)["summary"]["seconds_to_pay"]
    return seconds


def test_seconds_to_pay_counts_each_render_once_before_a_run(batch: Batch) -> None:
    """Before any run: 2 takes x 4 s + 6 s + 6 s (c and d share one render) + 8 s (unset)."""
    batch.manifest.write_text(_COSTED)
    assert _seconds_to_pay(batch, "status") == 28
    assert _seconds_to_pay(batch, "plan") == 28


def test_seconds_to_pay_counts_only_what_is_left_after_a_run_and_an_edit(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """After a run nothing is left to pay; after editing b (6 s) only b is."""
    batch.manifest.write_text(_COSTED)
    assert run_batch(sim.base_url).returncode == 0
    assert _seconds_to_pay(batch, "status") == 0
    batch.manifest.write_text(_COSTED.replace("prompt: six seconds", "prompt: six edited seconds"))
    assert _seconds_to_pay(batch, "status") == 6
    assert _seconds_to_pay(batch, "plan") == 6


# ----- two edits, two clips in .history/ -----------------------------------------------------


def test_two_edits_of_a_shot_keep_both_replaced_clips_in_history(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Run, edit, run, edit, run: .history/ holds the two replaced clips, distinct, each with
    its sidecar, and the current clip is a third."""
    batch.write({"s01": "first prompt", "s02": "unchanged"})
    assert run_batch(sim.base_url).returncode == 0
    first = _sha256(batch.out / "s01/take-1.mp4")
    batch.write({"s01": "second prompt", "s02": "unchanged"})
    assert run_batch(sim.base_url).returncode == 0
    second = _sha256(batch.out / "s01/take-1.mp4")
    batch.write({"s01": "third prompt", "s02": "unchanged"})
    assert run_batch(sim.base_url).returncode == 0
    current = _sha256(batch.out / "s01/take-1.mp4")
    history = batch.out / "s01/.history"
    kept = sorted(history.glob("*.mp4"))
    assert sorted(_sha256(p) for p in kept) == sorted([first, second])
    assert len({first, second, current}) == 3
    for clip in kept:
        assert json.loads(clip.with_suffix(".json").read_text())["sha256"] == _sha256(clip)
    assert not (batch.out / "s02/.history").exists()
    assert sim.recorder.tasks_created == 4


# ----- 130 wins over 2 -----------------------------------------------------------------------


def test_an_interruption_wins_over_a_refused_key(start_sim: StartSim, batch: Batch) -> None:
    """Ctrl-C while a create is on the wire, whose answer is then a 401: exit 130, not 2."""
    sim = start_sim(token="another-key", create_delay=0.8)
    batch.write({"s01": "waves"})
    process = start_run(batch, sim.base_url)
    wait_for_line(process, " submitting")
    interrupted_at = time.time()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    # The server records a request once it has answered it, which may be after the client left.
    refused = wait_until(
        lambda: [r for r in sim.recorder.requests if r.method == "POST" and r.status == 401],
        what="the create answered 401 (without it the test proves nothing)",
    )
    assert refused[0].at > interrupted_at, "the 401 came before the Ctrl-C"
    assert process.returncode == 130, stderr
    # What the refusal said is not lost behind the interruption.
    assert "interrupted" in stderr and "refused the key" in stderr
