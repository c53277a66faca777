"""plan shows what run would do now: the batch's states and run's options, read-only."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.jobs import expand_jobs
from runner.manifest import load_manifest
from runner.model import Job
from runner.plan import PlanOptions, check_shot_ids
from runner.store import Store
from tests.manifest.conftest import CliResult, WriteManifest

BATCH = """
version: 1
output_dir: batch
shots:
  - {id: done-shot, prompt: waves}
  - {id: failed-shot, prompt: storm}
  - {id: rejected-shot, prompt: gulls}
  - {id: altered-shot, prompt: dunes}
"""

TWO_SHOTS = """
version: 1
output_dir: batch
shots:
  - {id: one, prompt: waves}
  - {id: two, prompt: dunes}
"""

SHARED = """
version: 1
output_dir: batch
shots:
  - {id: one, prompt: the same waves, seconds: 6}
  - {id: two, prompt: the same waves, seconds: 6}
"""


def _deliver(store: Store, out: Path, job: Job, content: bytes) -> Path:
    """Record ``job`` as rendered and its clip as written into its folder."""
    store.bind_jobs(None, [(job.shot.id, job.take, job.fingerprint, 1)])
    render = store.renders()[(job.fingerprint, 1)]
    render.state, render.task_id = "done", f"task-{job.shot.id}"
    store.update_render(None, render)
    clip = out / job.shot.id / "take-1.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    clip.write_bytes(content)
    stat = clip.stat()
    store.record_delivery(
        None,
        store.jobs()[(job.shot.id, 1)],
        file=f"{job.shot.id}/take-1.mp4",
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=hashlib.sha256(content).hexdigest(),
    )
    return clip


@pytest.fixture
def batch(write_manifest: WriteManifest, workdir: Path) -> Path:
    """A batch folder whose state database holds one job in each interesting state.

    done-shot is done and intact; failed-shot failed; rejected-shot is done and rejected;
    altered-shot's clip was rewritten with the same size and modification time, so only
    ``--verify`` notices.
    """
    manifest = load_manifest(write_manifest(BATCH))
    jobs = {job.shot.id: job for job in expand_jobs(manifest)}
    out = manifest.output_dir
    with Store.open(out) as store:
        _deliver(store, out, jobs["done-shot"], b"clip one")
        _deliver(store, out, jobs["rejected-shot"], b"clip two")
        store.set_verdict("rejected-shot", 1, "rejected")
        clip = _deliver(store, out, jobs["altered-shot"], b"clip three")
        before = clip.stat()
        clip.write_bytes(b"clip THREE")
        os.utime(clip, ns=(before.st_atime_ns, before.st_mtime_ns))
        failed = jobs["failed-shot"]
        store.bind_jobs(None, [(failed.shot.id, 1, failed.fingerprint, 1)])
        render = store.renders()[(failed.fingerprint, 1)]
        render.state, render.error, render.attempt = "failed", "the service failed", 3
        store.update_render(None, render)
    return out


def _plan(run_cli: Callable[..., CliResult], *options: str) -> dict[str, dict[str, object]]:
    result = run_cli("plan", "--json", "m.yaml", *options)
    assert result.exit_code == 0, result.stderr
    return {job["shot"]: job for job in json.loads(result.stdout)["jobs"]}


def _actions(run_cli: Callable[..., CliResult], *options: str) -> dict[str, object]:
    return {shot: job["action"] for shot, job in _plan(run_cli, *options).items()}


def test_plan_shows_the_states_of_the_batch_database(
    batch: Path, run_cli: Callable[..., CliResult]
) -> None:
    """Without options: done jobs are skipped, a failed one is held."""
    assert _actions(run_cli) == {
        "done-shot": "skip",
        "failed-shot": "hold",
        "rejected-shot": "skip",
        "altered-shot": "skip",
    }


def test_plan_only_limits_the_plan_to_those_shots(
    batch: Path, run_cli: Callable[..., CliResult]
) -> None:
    """--only (repeatable) plans only the shots it names."""
    assert _actions(run_cli, "--only", "failed-shot", "--only", "done-shot") == {
        "done-shot": "skip",
        "failed-shot": "hold",
    }


def test_plan_force_renders_a_done_shot_as_a_new_generation(
    batch: Path, run_cli: Callable[..., CliResult]
) -> None:
    """--force turns a done job into a submit of generation 2."""
    job = _plan(run_cli, "--force", "done-shot")["done-shot"]
    assert (job["action"], job["generation"]) == ("submit", 2)


def test_plan_retry_failed_retries_failed_jobs(
    batch: Path, run_cli: Callable[..., CliResult]
) -> None:
    """--retry-failed turns hold into retry."""
    assert _actions(run_cli, "--retry-failed")["failed-shot"] == "retry"


def test_plan_rerender_rejected_submits_rejected_takes(
    batch: Path, run_cli: Callable[..., CliResult]
) -> None:
    """--rerender-rejected renders a rejected take again."""
    assert _actions(run_cli, "--rerender-rejected")["rejected-shot"] == "submit"


def test_plan_verify_notices_a_clip_altered_in_place(
    batch: Path, run_cli: Callable[..., CliResult]
) -> None:
    """--verify re-hashes clips, so one rewritten with the same size and time is fetched."""
    actions = _actions(run_cli, "--verify")
    assert (actions["altered-shot"], actions["done-shot"]) == ("fetch", "skip")


def test_plan_marks_a_done_job_whose_clip_was_deleted_fetch_with_its_note(
    batch: Path, run_cli: Callable[..., CliResult]
) -> None:
    """A deleted clip is planned fetch, and the table says it renders only if the service
    lost it (docs/running.md); an intact one is still skipped."""
    (batch / "done-shot" / "take-1.mp4").unlink()
    assert _actions(run_cli)["done-shot"] == "fetch"
    result = run_cli("plan", "m.yaml")
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line}
    assert rows["done-shot"].endswith(
        "fetch (will fetch again; renders only if the service lost it)"
    )
    assert rows["rejected-shot"].endswith("  skip")


def test_plan_writes_nothing_to_the_batch(batch: Path, run_cli: Callable[..., CliResult]) -> None:
    """plan with every option leaves the database and the clips exactly as they were."""

    def snapshot() -> dict[str, tuple[int, bytes]]:
        # SQLite's -wal and -shm companions may appear when a WAL database is read: they
        # hold no data of the batch.
        return {
            str(p.relative_to(batch)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(batch.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))
        }

    before = snapshot()
    _plan(run_cli, "--force", "done-shot", "--retry-failed", "--rerender-rejected", "--verify")
    assert snapshot() == before


def test_plan_without_a_database_creates_no_batch_folder(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult], workdir: Path
) -> None:
    """Planning a new batch creates neither its folder nor a state database."""
    write_manifest(BATCH)
    assert set(_actions(run_cli, "--force", "done-shot").values()) == {"submit"}
    assert not (workdir / "batch").exists()


def test_plan_refuses_an_unknown_only_id_with_a_did_you_mean(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """An --only id that names no shot: exit 2, the closest id offered, no plan printed."""
    write_manifest(BATCH)
    result = run_cli("plan", "m.yaml", "--only", "done-shto")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: --only: no shot with id 'done-shto' (did you mean 'done-shot'?) in m.yaml\n"
    )


def test_plan_refuses_unknown_force_ids_naming_each(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """Every unknown --force id is named, with the one id it begins or the closest one."""
    write_manifest(BATCH)
    result = run_cli("plan", "m.yaml", "--force", "DOEN-SHOT", "--force", "alt", "--force", "zz")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: --force: no shot with id 'DOEN-SHOT' (did you mean 'done-shot'?), "
        "'alt' (did you mean 'altered-shot'?), 'zz' in m.yaml\n"
    )


def test_plan_only_selects_a_shot_named_in_another_case(
    batch: Path, run_cli: Callable[..., CliResult]
) -> None:
    """Ids are unique ignoring case, so --only DONE-SHOT plans shot done-shot."""
    assert _actions(run_cli, "--only", "DONE-SHOT") == {"done-shot": "skip"}


def test_plan_force_renders_a_shot_named_in_another_case(
    batch: Path, run_cli: Callable[..., CliResult]
) -> None:
    """--force Done-Shot renders shot done-shot again, as generation 2."""
    job = _plan(run_cli, "--force", "Done-Shot")["done-shot"]
    assert (job["action"], job["generation"]) == ("submit", 2)


def test_check_shot_ids_spells_ids_as_the_manifest_does(write_manifest: WriteManifest) -> None:
    """The options come back with --only/--force ids in the manifest's spelling."""
    manifest = load_manifest(write_manifest(BATCH))
    options = check_shot_ids(
        manifest, PlanOptions(only=frozenset({"DONE-SHOT"}), force=frozenset({"Failed-Shot"}))
    )
    assert (options.only, options.force) == ({"done-shot"}, {"failed-shot"})


def test_plan_counts_one_task_for_a_forced_fingerprint_two_shots_share(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """Two done shots of the same content forced together render one new task, not two."""
    manifest = load_manifest(write_manifest(SHARED))
    jobs = expand_jobs(manifest)
    with Store.open(manifest.output_dir) as store:
        for job in jobs:
            _deliver(store, manifest.output_dir, job, b"the same clip")
    result = run_cli("plan", "--json", "m.yaml", "--force", "one", "--force", "two")
    summary = json.loads(result.stdout)["summary"]
    assert (summary["submit"], summary["tasks_to_submit"], summary["seconds_to_pay"]) == (2, 1, 6)


def test_run_selects_a_shot_named_in_another_case(
    write_manifest: WriteManifest, workdir: Path
) -> None:
    """run --only A selects shot a as plan does: --max-new 0 refuses its 1 task (exit 2)."""
    write_manifest(SHARED)
    command = ["run", "m.yaml", "--simulate", "--only", "ONE", "--max-new", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "runner", *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # Before it, the manifest's warning that the two shots send the same request.
    assert (done.returncode, done.stderr.splitlines()[-1]) == (
        2,
        "error: 1 task(s) would be submitted, more than --max-new 0; nothing was sent",
    )


def test_plan_without_a_database_takes_clips_back_from_their_sidecars(
    write_manifest: WriteManifest, workdir: Path, run_cli: Callable[..., CliResult]
) -> None:
    """A batch whose state.db was lost: plan shows fetch (take the clip back), not submit."""
    write_manifest(TWO_SHOTS)
    done = subprocess.run(
        [sys.executable, "-m", "runner", "run", "m.yaml", "--simulate"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for leftover in (workdir / "batch").glob("state.db*"):
        leftover.unlink()
    assert _actions(run_cli) == {"one": "fetch", "two": "fetch"}


EDITED = """
version: 1
output_dir: batch
shots:
  - {id: one, prompt: waves at night}
"""


@pytest.fixture
def earlier_in_flight(write_manifest: WriteManifest) -> Path:
    """A batch whose shot one was edited while its task ran and whose shot two was removed
    while its create had no answer yet; the manifest now holds only the edited shot one."""
    manifest = load_manifest(write_manifest(TWO_SHOTS))
    jobs = {job.shot.id: job for job in expand_jobs(manifest)}
    with Store.open(manifest.output_dir) as store:
        for shot, state, task_id in (("one", "running", "task-one"), ("two", "submitting", None)):
            job = jobs[shot]
            store.bind_jobs(None, [(shot, 1, job.fingerprint, 1)])
            render = store.renders()[(job.fingerprint, 1)]
            render.state, render.task_id, render.attempt = state, task_id, 1
            store.update_render(None, render, job=(shot, 1))
    write_manifest(EDITED)
    return manifest.output_dir


def test_plan_json_lists_an_edited_shots_render_in_flight_to_collect(
    earlier_in_flight: Path, run_cli: Callable[..., CliResult]
) -> None:
    """plan --json lists the edited shot's running render as collected into .history/."""
    result = run_cli("plan", "--json", "m.yaml")
    document = json.loads(result.stdout)
    earlier = {e["shot"]: e for e in document["earlier_renders"]}
    assert (earlier["one"]["action"], earlier["one"]["task_id"]) == ("collect", "task-one")
    assert earlier["one"]["note"] == "in flight: will be collected into one/.history/"
    assert document["summary"]["earlier_to_collect"] == 1


def test_plan_json_lists_a_removed_shots_unanswered_create_as_possibly_billed(
    earlier_in_flight: Path, run_cli: Callable[..., CliResult]
) -> None:
    """A removed shot's create without an answer is listed as possibly billed, not collected."""
    document = json.loads(run_cli("plan", "--json", "m.yaml").stdout)
    earlier = {e["shot"]: e for e in document["earlier_renders"]}
    assert (earlier["two"]["action"], earlier["two"]["task_id"]) == ("possibly_billed", None)
    assert document["summary"]["possibly_billed"] == 1


def test_plan_text_announces_earlier_renders_as_run_does(
    earlier_in_flight: Path, run_cli: Callable[..., CliResult]
) -> None:
    """The table lists each earlier render; the summary line counts them in run's words."""
    result = run_cli("plan", "m.yaml")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    heading = lines.index("Earlier renders in flight (their shots were edited or removed since):")
    rows = {line.split()[0]: line for line in lines[heading + 2 : heading + 4]}
    assert rows["one"].endswith("running (in flight: will be collected into one/.history/)")
    assert rows["two"].endswith(
        "submitting (create got no answer: not sent again, possibly billed)"
    )
    assert lines[-1].endswith(
        "; 1 earlier render(s) in flight will be collected into .history/"
        "; 1 earlier create(s) got no answer: not sent again, possibly billed"
    )


def test_plan_lists_no_earlier_render_of_a_shot_left_out_by_only(
    earlier_in_flight: Path, write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """A render in flight of a shot --only leaves out is that shot's, not an earlier one."""
    write_manifest(TWO_SHOTS + "  - {id: three, prompt: gulls}\n")
    document = json.loads(run_cli("plan", "--json", "m.yaml", "--only", "three").stdout)
    assert document["earlier_renders"] == []


def test_plan_json_of_a_new_batch_lists_no_earlier_render(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """Without a state database the list is there, empty, and nothing is counted."""
    write_manifest(TWO_SHOTS)
    document = json.loads(run_cli("plan", "--json", "m.yaml").stdout)
    assert (document["earlier_renders"], document["summary"]["earlier_to_collect"]) == ([], 0)


HOSTILE = "\x1b]0;x\x07"


def test_status_shows_control_characters_from_the_store_escaped(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """A task id and an error in state.db that carry a terminal sequence (an OSC setting the
    window title) are printed as escapes by status and plan, never as the sequence."""
    manifest = load_manifest(write_manifest(TWO_SHOTS))
    one, two = expand_jobs(manifest)
    with Store.open(manifest.output_dir) as store:
        store.bind_jobs(None, [(j.shot.id, 1, j.fingerprint, 1) for j in (one, two)])
        first = store.renders()[(one.fingerprint, 1)]
        first.state, first.attempt, first.task_id = "running", 1, f"task{HOSTILE}"
        store.update_render(None, first)
        second = store.renders()[(two.fingerprint, 1)]
        second.state, second.error = "failed", f"the service said {HOSTILE}"
        store.update_render(None, second)
    status = run_cli("status", "m.yaml")
    assert status.exit_code == 0, status.stderr
    assert "\x1b" not in status.stdout and "\x07" not in status.stdout
    assert "task\\x1b]0;x\\x07" in status.stdout
    assert "the service said \\x1b]0;x\\x07" in status.stdout
    plan = run_cli("plan", "m.yaml", "--retry-failed")
    assert plan.exit_code == 0, plan.stderr
    assert "\x1b" not in plan.stdout
