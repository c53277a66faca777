"""``shotrunner run`` and ``status`` end to end, against a well-behaved simulator."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from runner.sim import RunningSim
from tests.e2e.conftest import KEY, Batch, RunBatch, cli_env, run_cli
from tests.plugins.sim_fixtures import StartSim

SIDECAR_KEYS = {
    "shot",
    "take",
    "fingerprint",
    "generation",
    "task_id",
    "model",
    "request",
    "sha256",
    "bytes",
    "submitted_at",
    "completed_at",
    "downloaded_at",
    "manifest",
    "manifest_sha256",
    "provider",
    "api_base",
    "runner_version",
    "possible_duplicate",
    "simulated",
}


def test_run_delivers_every_clip_with_its_sidecar(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Each job's clip lands at <shot>/take-1.mp4 with a sidecar naming its task and hash."""
    result = run_batch(sim.base_url)
    assert result.returncode == 0, result.stderr
    assert [p.relative_to(batch.out).as_posix() for p in batch.clips()] == [
        f"{shot}/take-1.mp4" for shot in batch.shots
    ]
    for clip in batch.clips():
        sidecar = json.loads(clip.with_suffix(".json").read_text())
        assert set(sidecar) >= SIDECAR_KEYS
        assert (sidecar["provider"], sidecar["api_base"]) == ("gateway", sim.base_url)
        assert sidecar["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
        assert sidecar["bytes"] == clip.stat().st_size
    assert not list(batch.out.rglob("*.part"))
    assert "plan: 4 task(s) to submit (16 s of video)" in result.stderr
    assert "done: 4 job(s)" in result.stdout


def test_each_create_carries_the_idempotency_key(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Creates carry Idempotency-Key <fingerprint>-g1-a1 and the service makes one task each."""
    assert run_batch(sim.base_url).returncode == 0
    keys = sorted(r.headers["idempotency-key"] for r in sim.recorder.creates())
    fingerprints = sorted(r["fingerprint"] for r in batch.renders())
    assert keys == [f"{fp}-g1-a1" for fp in fingerprints]


def test_second_run_submits_nothing(sim: RunningSim, batch: Batch, run_batch: RunBatch) -> None:
    """A second run over a finished batch sends no request at all."""
    assert run_batch(sim.base_url).returncode == 0
    sent = len(sim.recorder.requests)
    second = run_batch(sim.base_url)
    assert second.returncode == 0
    assert "plan: 0 task(s) to submit" in second.stderr
    assert len(sim.recorder.requests) == sent


def test_editing_one_shot_renders_only_it_and_keeps_the_old_clip(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """An edited shot is rendered again alone; its old clip and sidecar move to .history/."""
    assert run_batch(sim.base_url).returncode == 0
    old = (batch.out / "s02/take-1.mp4").read_bytes()
    batch.write({**_prompts(), "s02": "an edited prompt"})
    before = sim.recorder.tasks_created
    assert run_batch(sim.base_url).returncode == 0
    assert sim.recorder.tasks_created == before + 1
    history = sorted((batch.out / "s02/.history").iterdir())
    assert [p.suffix for p in history] == [".json", ".mp4"]
    assert history[1].read_bytes() == old
    assert (batch.out / "s02/take-1.mp4").read_bytes() != old


def _prompts() -> dict[str, str]:
    return {f"s{i:02d}": f"shot number {i}, waves at dusk" for i in range(1, 5)}


def test_renamed_shot_is_not_rendered_again(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Renaming a shot keeps its fingerprint: its clip is copied, nothing is submitted."""
    assert run_batch(sim.base_url).returncode == 0
    prompts = _prompts()
    prompts["renamed"] = prompts.pop("s01")
    batch.write(prompts)
    sent = sim.recorder.tasks_created
    assert run_batch(sim.base_url).returncode == 0
    assert sim.recorder.tasks_created == sent
    assert (batch.out / "renamed/take-1.mp4").read_bytes() == (
        batch.out / "s01/take-1.mp4"
    ).read_bytes()


def test_identical_shots_share_one_task(sim: RunningSim, batch: Batch, run_batch: RunBatch) -> None:
    """Two shots with the same fingerprint make one task; the clip is copied into both."""
    batch.write({"a": "the same prompt", "b": "the same prompt"})
    assert run_batch(sim.base_url).returncode == 0
    assert sim.recorder.tasks_created == 1
    assert (batch.out / "a/take-1.mp4").read_bytes() == (batch.out / "b/take-1.mp4").read_bytes()


def test_deleted_clip_is_fetched_not_rendered(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A deleted clip comes back from its task; no new task is created."""
    assert run_batch(sim.base_url).returncode == 0
    clip = batch.out / "s03/take-1.mp4"
    content = clip.read_bytes()
    clip.unlink()
    sent = sim.recorder.tasks_created
    assert run_batch(sim.base_url).returncode == 0
    assert sim.recorder.tasks_created == sent
    assert clip.read_bytes() == content


def test_force_renders_a_done_shot_again(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """--force ID submits that shot under generation 2; the old clip moves to .history/."""
    assert run_batch(sim.base_url).returncode == 0
    assert run_batch(sim.base_url, "--force", "s01").returncode == 0
    keys = [r.headers["idempotency-key"] for r in sim.recorder.creates()]
    assert len(keys) == 5 and keys[-1].endswith("-g2-a1")
    assert len(list((batch.out / "s01/.history").glob("*.mp4"))) == 1


def test_only_runs_the_named_shots(sim: RunningSim, batch: Batch, run_batch: RunBatch) -> None:
    """--only ID submits that shot's jobs and nothing else."""
    assert run_batch(sim.base_url, "--only", "s02").returncode == 0
    assert [p.parent.name for p in batch.clips()] == ["s02"]


def test_max_new_refuses_and_sends_nothing(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """More new tasks than --max-new: exit 2, nothing sent to the service."""
    result = run_batch(sim.base_url, "--max-new", "3")
    assert result.returncode == 2
    assert "--max-new 3" in result.stderr
    assert sim.recorder.requests == []


def test_missing_key_is_exit_2_naming_the_variable(batch: Batch) -> None:
    """Without a key (and without --simulate): exit 2, the message names SHOTRUNNER_API_KEY."""
    result = run_cli("run", str(batch.manifest), env=cli_env(None))
    assert result.returncode == 2
    assert "SHOTRUNNER_API_KEY" in result.stderr
    assert not batch.out.exists()


def test_rejected_key_stops_after_a_few_requests(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A key the API refuses stops the run at once: exit 2, a handful of requests at most."""
    sim = start_sim(token="the-right-key")
    batch.write({f"s{i:02d}": f"prompt {i}" for i in range(20)})
    result = run_batch(sim.base_url)
    assert result.returncode == 2
    assert "SHOTRUNNER_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(sim.recorder.requests) <= 4


def test_key_appears_nowhere_on_disk_in_output_or_at_the_file_host(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """The API key is sent to the API only: not to the file host, not in any file or output."""
    sim = start_sim(token=KEY)
    result = run_batch(sim.base_url)
    assert result.returncode == 0, result.stderr
    assert KEY not in result.stdout + result.stderr
    for path in batch.out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    file_requests = sim.recorder.on("files")
    assert file_requests
    assert all("authorization" not in r.headers for r in file_requests)


def test_status_without_state_db_lists_pending(batch: Batch) -> None:
    """status before any run: every job pending, exit 0, no database created."""
    document = batch.status()
    assert {job["state"] for job in document["jobs"]} == {"pending"}
    assert not (batch.out / "state.db").exists()


def test_status_reports_done_jobs_with_their_files(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """status after a run: each job done, with task id and file, in the documented JSON shape."""
    assert run_batch(sim.base_url).returncode == 0
    document = batch.status()
    job = document["jobs"][0]
    assert set(job) == {
        "shot",
        "take",
        "fingerprint",
        "generation",
        "state",
        "attempts",
        "task_id",
        "progress",
        "file",
        "error",
        "possible_duplicate",
        "creates_sent",
        "waits_for",
        "verdict",
    }
    assert (job["state"], job["file"], job["verdict"]) == ("done", "s01/take-1.mp4", None)
    assert job["waits_for"] == []
    assert document["summary"]["done"] == 4
    assert (document["summary"]["picked"], document["summary"]["rejected"]) == (0, 0)


def test_run_json_is_one_document_on_stdout_and_progress_goes_to_stderr(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """``run --json``: stdout is one JSON document (the summary, each job's outcome and the
    paths of its clip and sidecar); the plan line, the progress and the summary are on
    stderr."""
    batch.write({"s01": "waves", "s02": "dunes"})
    result = run_batch(sim.base_url, "--json")
    document = json.loads(result.stdout)
    assert result.returncode == document["summary"]["exit_code"]
    outcomes = {job["shot"]: job["outcome"] for job in document["jobs"]}
    assert outcomes == {"s01": "done", "s02": "done"}
    clip = Path(document["jobs"][0]["clip"])
    assert clip == batch.out / "s01" / "take-1.mp4" and clip.is_file()
    assert Path(document["jobs"][0]["sidecar"]).is_file()
    assert (document["summary"]["delivered"], document["summary"]["stopped"]) == (2, None)
    assert "plan: 2 task(s) to submit" in result.stderr
    assert "s01/1 done" in result.stderr and "done: 2 job(s)" in result.stderr


def test_run_quiet_and_verbose(start_sim: StartSim, batch: Batch, run_batch: RunBatch) -> None:
    """``-q``: only failures and the summary (stdout); ``-v``: every retry with its reason.
    Progress never reaches stdout."""
    sim = start_sim(refuse_rate=1.0)
    batch.write({"s01": "waves"})
    quiet = run_batch(sim.base_url, "-q")
    assert quiet.returncode == 1
    (line,) = quiet.stderr.splitlines()
    assert "s01/1 failed: " in line
    assert quiet.stdout.splitlines()[0].startswith("done: 0 job(s)")
    flaky = start_sim(error_rate=0.5, seed=7)
    batch.write({f"s{i:02d}": f"shot {i}" for i in range(1, 7)})
    verbose = run_batch(flaky.base_url, "-v", "--out", str(batch.out.parent / "v"))
    assert " retry: " in verbose.stderr, verbose.stderr
    assert "again in " in verbose.stderr
    assert "[" not in verbose.stdout and "plan:" not in verbose.stdout
    both = run_batch(sim.base_url, "-q", "-v")
    assert both.returncode == 2 and "contradict" in both.stderr


def test_simulate_needs_no_key_and_keeps_its_tasks(tmp_path: Path, batch: Batch) -> None:
    """run --simulate works without a key and keeps the simulator's tasks in simulator.db."""
    result = run_cli(
        "run", str(batch.manifest), "--out", str(batch.out), "--simulate", env=cli_env(None)
    )
    assert result.returncode == 0, result.stderr
    assert len(batch.clips()) == 4
    assert (batch.out / "simulator.db").is_file()


def test_invalid_manifest_sends_nothing(sim: RunningSim, batch: Batch, run_batch: RunBatch) -> None:
    """A manifest with an error: exit 2 with a located diagnostic, no request, no batch folder."""
    batch.manifest.write_text("version: 1\nshots:\n  - id: s01\n    promt: typo\n")
    result = run_batch(sim.base_url)
    assert result.returncode == 2
    assert f"{batch.manifest}:4:" in result.stderr
    assert "Traceback" not in result.stderr
    assert sim.recorder.requests == []
    assert not batch.out.exists()


def test_unknown_only_id_is_exit_2(sim: RunningSim, batch: Batch, run_batch: RunBatch) -> None:
    """--only naming no shot of the manifest: exit 2, nothing sent."""
    result = run_batch(sim.base_url, "--only", "nope")
    assert result.returncode == 2
    assert "nope" in result.stderr
    assert sim.recorder.requests == []


def test_rejected_take_renders_again_once(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """--rerender-rejected: a rejected take renders under generation 2, old clip to .history/."""
    from runner.store import Store

    assert run_batch(sim.base_url).returncode == 0
    with Store.open(batch.out) as store:
        store.set_verdict("s03", 1, "rejected")
    assert run_batch(sim.base_url, "--rerender-rejected").returncode == 0
    assert run_batch(sim.base_url, "--rerender-rejected").returncode == 0
    keys = [r.headers["idempotency-key"] for r in sim.recorder.creates()]
    assert len(keys) == 5 and keys[-1].endswith("-g2-a1")
    assert len(list((batch.out / "s03/.history").glob("*.mp4"))) == 1


def test_a_rejection_does_not_outlive_an_edit_of_its_shot(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Rejected, then edited and rendered: --rerender-rejected pays for nothing more."""
    from runner.store import Store

    assert run_batch(sim.base_url).returncode == 0
    with Store.open(batch.out) as store:
        store.set_verdict("s03", 1, "rejected")
    batch.write({**_prompts(), "s03": "an edited prompt"})
    assert run_batch(sim.base_url).returncode == 0
    created = sim.recorder.tasks_created
    plan = run_cli(
        "plan", str(batch.manifest), "--out", str(batch.out), "--rerender-rejected", "--json"
    )
    actions = {job["shot"]: job["action"] for job in json.loads(plan.stdout)["jobs"]}
    assert actions["s03"] == "skip", plan.stdout
    assert run_batch(sim.base_url, "--rerender-rejected").returncode == 0
    assert sim.recorder.tasks_created == created
    with Store.open(batch.out) as store:
        assert store.verdicts() == {}


def test_plan_reads_the_store_without_writing_it(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """plan after a run: done jobs skip, a deleted clip is fetched; plan never creates state.db."""
    before = run_cli("plan", str(batch.manifest), "--out", str(batch.out), "--json")
    assert before.returncode == 0, before.stderr
    assert not (batch.out / "state.db").exists()
    assert run_batch(sim.base_url).returncode == 0
    (batch.out / "s02/take-1.mp4").unlink()
    after = run_cli("plan", str(batch.manifest), "--out", str(batch.out), "--json")
    actions = {job["shot"]: job["action"] for job in json.loads(after.stdout)["jobs"]}
    assert actions == {"s01": "skip", "s02": "fetch", "s03": "skip", "s04": "skip"}


def test_verify_refetches_a_clip_altered_behind_size_and_time(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Bytes changed, size and time kept: trusted without --verify, fetched again with it."""
    assert run_batch(sim.base_url).returncode == 0
    clip = batch.out / "s02/take-1.mp4"
    content = clip.read_bytes()
    stat = clip.stat()
    clip.write_bytes(bytes(len(content)))
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    sent = len(sim.recorder.requests)
    assert run_batch(sim.base_url).returncode == 0
    assert len(sim.recorder.requests) == sent
    assert run_batch(sim.base_url, "--verify").returncode == 0
    assert clip.read_bytes() == content
    assert sim.recorder.tasks_created == 4


def test_credentials_in_the_api_base_are_not_recorded(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A user:password in --api-base reaches neither the runs table nor a sidecar."""
    with_password = sim.base_url.replace("http://", "http://someone:hunter2@")
    assert run_batch(with_password).returncode == 0
    with batch.db() as conn:
        recorded = " ".join(str(v) for row in conn.execute("select * from runs") for v in row)
    assert "hunter2" not in recorded
    assert sim.base_url in recorded
    assert not any("hunter2" in p.read_text() for p in batch.out.rglob("*.json"))
