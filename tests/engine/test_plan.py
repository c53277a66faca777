"""The plan: each job's action from the store and the clips on disk."""

from __future__ import annotations

import os
from pathlib import Path

from runner.delivery import clip_relpath, file_sha256, write_sidecar
from runner.model import Job
from runner.plan import PlanOptions, make_plan
from runner.store import Store
from tests.engine.conftest import MakeJob


def _set_state(store: Store, job: Job, state: str, generation: int = 1, **values: object) -> None:
    store.bind_jobs(None, [(job.shot.id, job.take, job.fingerprint, generation)])
    render = store.renders()[(job.fingerprint, generation)]
    render.state = state  # type: ignore[assignment]
    for name, value in values.items():
        setattr(render, name, value)
    store.update_render(None, render)


def _deliver(store: Store, out_dir: Path, job: Job, content: bytes = b"clip") -> Path:
    _set_state(store, job, "done")
    path = out_dir / clip_relpath(job.shot.id, job.take)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    stat = path.stat()
    row = store.jobs()[(job.shot.id, job.take)]
    store.record_delivery(
        None,
        row,
        file=clip_relpath(job.shot.id, job.take),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=file_sha256(path),
    )
    return path


def _actions(jobs: list[Job], store: Store | None, **options: object) -> list[str]:
    return [p.action for p in make_plan(jobs, store, PlanOptions(**options)).jobs]  # type: ignore[arg-type]


def test_without_store_every_job_is_submitted(make_job: MakeJob) -> None:
    """No state database: every job is new."""
    assert _actions([make_job(), make_job(take=2)], None) == ["submit", "submit"]


def test_in_flight_jobs_are_resumed(store: Store, make_job: MakeJob) -> None:
    """Submitting, queued, running and downloading renders are resumed, never resubmitted."""
    jobs = [make_job(f"s{i}", prompt=f"p{i}") for i in range(4)]
    for job, state in zip(jobs, ("submitting", "queued", "running", "downloading"), strict=True):
        _set_state(store, job, state, task_id="t")
    assert _actions(jobs, store) == ["resume"] * 4


def test_intact_clip_is_skipped(store: Store, out_dir: Path, make_job: MakeJob) -> None:
    """A done job whose clip has its recorded size and time is skipped."""
    job = make_job()
    _deliver(store, out_dir, job)
    (planned,) = make_plan([job], store).jobs
    assert (planned.action, planned.state, planned.file) == ("skip", "done", "s01/take-1.mp4")


def test_missing_clip_is_fetched(store: Store, out_dir: Path, make_job: MakeJob) -> None:
    """A done job whose clip was deleted is fetched again."""
    job = make_job()
    _deliver(store, out_dir, job).unlink()
    assert _actions([job], store) == ["fetch"]


def test_altered_clip_is_fetched(store: Store, out_dir: Path, make_job: MakeJob) -> None:
    """A clip with another modification time no longer counts as intact."""
    job = make_job()
    path = _deliver(store, out_dir, job)
    os.utime(path, ns=(1, 1))
    assert _actions([job], store) == ["fetch"]


def test_verify_rehashes_instead_of_trusting_time(
    store: Store, out_dir: Path, make_job: MakeJob
) -> None:
    """--verify catches same-size damage that keeps the time, and forgives a touched file."""
    job = make_job()
    path = _deliver(store, out_dir, job, b"clip")
    stat = path.stat()
    path.write_bytes(b"CLIP")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _actions([job], store) == ["skip"]
    assert _actions([job], store, verify=True) == ["fetch"]


def test_renamed_shot_joins_the_existing_render(
    store: Store, out_dir: Path, make_job: MakeJob
) -> None:
    """A renamed shot has the same fingerprint: no new render, its clip is fetched (copied)."""
    _deliver(store, out_dir, make_job("old-name"))
    (planned,) = make_plan([make_job("new-name")], store).jobs
    assert (planned.action, planned.generation) == ("fetch", 1)


def test_edited_shot_is_submitted_alone(store: Store, out_dir: Path, make_job: MakeJob) -> None:
    """Editing one shot changes only its fingerprint: only it is submitted."""
    _deliver(store, out_dir, make_job("s01", prompt="a"))
    _deliver(store, out_dir, make_job("s02", prompt="b"))
    jobs = [make_job("s01", prompt="a, edited"), make_job("s02", prompt="b")]
    assert _actions(jobs, store) == ["submit", "skip"]


def test_failed_is_held_unless_retry_failed(store: Store, make_job: MakeJob) -> None:
    """A failed job is held; --retry-failed retries it."""
    job = make_job()
    _set_state(store, job, "failed", error="boom")
    assert _actions([job], store) == ["hold"]
    assert _actions([job], store, retry_failed=True) == ["retry"]


def test_a_timed_out_job_with_its_task_is_resumed_not_retried(
    store: Store, make_job: MakeJob
) -> None:
    """--retry-failed asks a timed-out render's kept task first: resume, nothing to pay."""
    job = make_job()
    _set_state(store, job, "failed", error="timed out", error_code="timeout", task_id="t1")
    assert _actions([job], store, retry_failed=True) == ["resume"]


def test_force_raises_the_generation_of_a_done_job(
    store: Store, out_dir: Path, make_job: MakeJob
) -> None:
    """--force ID renders a done job again under the next generation."""
    job = make_job()
    _deliver(store, out_dir, job)
    (planned,) = make_plan([job], store, PlanOptions(force=frozenset({"s01"}))).jobs
    assert (planned.action, planned.generation, planned.new_generation) == ("submit", 2, "forced")


def test_force_does_not_raise_a_render_in_flight(store: Store, make_job: MakeJob) -> None:
    """Running the same --force command again after an interruption resumes, never pays twice."""
    job = make_job()
    _set_state(store, job, "running", generation=2, task_id="t")
    (planned,) = make_plan([job], store, PlanOptions(force=frozenset({"s01"}))).jobs
    assert (planned.action, planned.generation) == ("resume", 2)


def test_rejected_take_renders_again_once(store: Store, out_dir: Path, make_job: MakeJob) -> None:
    """--rerender-rejected raises the generation of a rejected take only."""
    jobs = [make_job(take=1), make_job(take=2)]
    for job in jobs:
        _deliver(store, out_dir, job)
    store.set_verdict("s01", 2, "rejected")
    planned = make_plan(jobs, store, PlanOptions(rerender_rejected=True)).jobs
    assert [(p.action, p.generation) for p in planned] == [("skip", 1), ("submit", 2)]


def test_only_limits_the_plan(store: Store, make_job: MakeJob) -> None:
    """--only ID keeps the named shots' jobs and nothing else."""
    jobs = [make_job("s01", prompt="a"), make_job("s02", prompt="b")]
    planned = make_plan(jobs, store, PlanOptions(only=frozenset({"s02"}))).jobs
    assert [p.job.shot.id for p in planned] == ["s02"]


def test_a_clip_with_this_jobs_sidecar_is_taken_back_not_paid_again(
    store: Store, out_dir: Path, make_job: MakeJob
) -> None:
    """Unknown to the store but on disk with a sidecar naming its fingerprint: fetch, not submit."""
    ours, other = make_job("s01", prompt="waves"), make_job("s02", prompt="dunes")
    for job, fingerprint in ((ours, ours.fingerprint), (other, "0" * 64)):
        clip = out_dir / clip_relpath(job.shot.id, job.take)
        clip.parent.mkdir(parents=True, exist_ok=True)
        clip.write_bytes(b"clip")
        write_sidecar(
            clip, {"fingerprint": fingerprint, "generation": 2, "sha256": "a" * 64, "bytes": 4}
        )
    planned = make_plan([ours, other], store).jobs
    assert [(p.action, p.generation) for p in planned] == [("fetch", 2), ("submit", 1)]


def test_a_clip_taken_back_keeps_the_provider_and_base_its_sidecar_names(
    store: Store, out_dir: Path, make_job: MakeJob
) -> None:
    """The render adopted from a sidecar is the one that API made: its provider (None for
    the gateway, as the store spells it) and base."""
    veo, gateway = make_job("s01", prompt="waves"), make_job("s02", prompt="dunes")
    for job, provider in ((veo, "veo"), (gateway, "gateway")):
        clip = out_dir / clip_relpath(job.shot.id, job.take)
        clip.parent.mkdir(parents=True, exist_ok=True)
        clip.write_bytes(b"clip")
        base = f"https://{provider}.example"
        sidecar = {"fingerprint": job.fingerprint, "provider": provider, "api_base": base}
        write_sidecar(clip, {**sidecar, "generation": 1, "sha256": "a" * 64, "bytes": 4})
    planned = make_plan([veo, gateway], store).jobs
    adopted = [(p.action, p.adopted.provider, p.adopted.api_base) for p in planned if p.adopted]
    assert adopted == [
        ("fetch", "veo", "https://veo.example"),
        ("fetch", None, "https://gateway.example"),
    ]


def _clip_with_sidecar(out_dir: Path, job: Job, simulated: bool) -> None:
    clip = out_dir / clip_relpath(job.shot.id, job.take)
    clip.parent.mkdir(parents=True, exist_ok=True)
    clip.write_bytes(b"clip")
    sidecar = {"fingerprint": job.fingerprint, "generation": 1, "sha256": "a" * 64, "bytes": 4}
    write_sidecar(clip, {**sidecar, "simulated": simulated})


def test_a_real_run_does_not_adopt_a_simulated_clip(
    store: Store, out_dir: Path, make_job: MakeJob
) -> None:
    """A sidecar of the other kind is not taken back: only one of the run's kind is adopted."""
    simulated, real = make_job("s01", prompt="waves"), make_job("s02", prompt="dunes")
    _clip_with_sidecar(out_dir, simulated, simulated=True)
    _clip_with_sidecar(out_dir, real, simulated=False)
    planned = make_plan([simulated, real], store, PlanOptions(simulated=False)).jobs
    assert [p.action for p in planned] == ["submit", "fetch"]
    planned = make_plan([simulated, real], store, PlanOptions(simulated=True)).jobs
    assert [p.action for p in planned] == ["fetch", "submit"]


def test_a_plan_without_a_store_plans_adoption_from_sidecars(
    out_dir: Path, make_job: MakeJob
) -> None:
    """No state.db: given the batch folder, a clip with this job's sidecar is planned fetch."""
    ours, new = make_job("s01", prompt="waves"), make_job("s02", prompt="dunes")
    _clip_with_sidecar(out_dir, ours, simulated=False)
    planned = make_plan([ours, new], None, output_dir=out_dir).jobs
    assert [p.action for p in planned] == ["fetch", "submit"]


def test_a_failed_job_shows_no_progress(store: Store, make_job: MakeJob) -> None:
    """A render that failed at 99 % is shown failed with no progress, not a stale 99."""
    job = make_job()
    _set_state(store, job, "failed", progress=99.0, error="timed out")
    (item,) = make_plan([job], store).jobs
    assert (item.state, item.progress) == ("failed", None)
