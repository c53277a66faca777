"""The deliver step: a render's clip put into every job's folder that lacks it (an older clip
moved into ``.history/`` first, the new one placed atomically with its sidecar, the delivery
recorded in the store), and an earlier render's clip kept in ``.history/``; ``sidecar``
builds every clip's provenance, the one place that does. Clips already
intact on disk (or found again by their hash) are taken as they are; a clip found nowhere
is downloaded (next: ``DOWNLOAD``). The file operations themselves are ``runner.delivery``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import __version__
from runner.delivery import (
    HISTORY,
    clip_intact,
    clip_relpath,
    copy_to_part,
    history_candidates,
    history_label,
    matches,
    move_to_history,
    part_of,
    place,
    read_sidecar,
    sidecar_of,
    write_sidecar,
)
from runner.engine.states import Step
from runner.files import writing
from runner.jobs import provenance_request

if TYPE_CHECKING:
    from runner.engine.run import Run
    from runner.engine.work import Work
    from runner.model import Job
    from runner.plan import PlannedJob
    from runner.store import JobRow


async def deliver(run: Run, work: Work) -> Step:
    """Deliver a done render's clip: the one just downloaded, else one intact on disk, else
    download it (``DOWNLOAD``)."""
    source, work.source = work.source, None
    if source is None and work.render.state == "done":
        source = _intact_copy(run, work) or _copy_on_disk(run, work)
    if source is None:
        return Step.DOWNLOAD
    _deliver_all(run, work, source)
    return Step.END


def final_path(run: Run, job: Job) -> Path:
    return run.output_dir / clip_relpath(job.shot.id, job.take)


def earlier_path(run: Run, work: Work) -> Path:
    """Where an earlier render's clip goes: the ``.history/`` name ``move_to_history`` would
    give it, so that undoing the edit finds it there."""
    assert work.earlier is not None
    shot, take = work.earlier
    render = work.render
    final = run.output_dir / clip_relpath(shot, take)
    label = history_label(render.fingerprint, render.generation)
    return final.parent / HISTORY / f"{final.stem}.{label}{final.suffix}"


def keep_earlier(run: Run, work: Work, part: Path) -> Path:
    """Put an earlier render's downloaded clip into ``.history/`` with its sidecar, under a
    name that overwrites nothing."""
    base = target = earlier_path(run, work)
    counter = 1
    while target.exists() or sidecar_of(target).exists():
        counter += 1
        target = base.with_name(f"{base.stem}-{counter}{base.suffix}")
    assert work.earlier is not None
    with writing(target, run=True):
        place(part, target)
        write_sidecar(target, sidecar(run, work, *work.earlier, None))
    return target


def _copy_on_disk(run: Run, work: Work) -> Path | None:
    """The render's clip found whole on disk but not on record: at a final path or in a part
    file (a crash before the rename or the record), or in ``.history/`` (an edit reverted).
    Checked by hash, so nothing else is taken for it."""
    render = work.render
    for item in work.jobs:
        final = final_path(run, item.job)
        candidates = [final, part_of(final)]
        candidates += history_candidates(final, render.fingerprint, render.generation)
        for candidate in candidates:
            if matches(candidate, render.sha256, render.bytes):
                return candidate
    return None


def _intact_copy(run: Run, work: Work) -> Path | None:
    for item in work.jobs:
        row = work.rows.get((item.job.shot.id, item.job.take))
        if (
            row is not None
            and row.delivered
            and clip_intact(run.output_dir, row, verify=run.options.verify)
        ):
            return final_path(run, item.job)
    return None


def _deliver_all(run: Run, work: Work, source: Path) -> None:
    """Put the clip at ``source`` into every job's folder that lacks it (source last)."""
    render = work.render
    finals = [final_path(run, item.job) for item in work.jobs]
    order = sorted(range(len(work.jobs)), key=lambda i: part_of(finals[i]) == source)
    #: Finals renamed into place from their own part file in this call.
    placed: set[Path] = set()
    for index in order:
        item, final = work.jobs[index], finals[index]
        # A full disk here stops the run (one line, exit 1); the clip stays where it is (the
        # render's part file, or a final path), found by its hash by the next run.
        with writing(final, run=True):
            key = (item.job.shot.id, item.job.take)
            row = work.rows[key]
            if final == source or (
                row.delivered and clip_intact(run.output_dir, row, verify=run.options.verify)
            ):
                if final == source and not row.delivered:
                    _record(run, work, item, row, final)
                continue
            occupied = final.exists()
            if occupied and matches(final, render.sha256, render.bytes):
                _record(run, work, item, row, final)
                continue
            if occupied:
                _make_room(run, row, final)
            part = source if source == part_of(final) else copy_to_part(source, final)
            place(part, final)
            # The part is gone (renamed): its owner record goes with the delivery's.
            _record(run, work, item, row, final, part=part)
            placed.add(final)
    for final in finals:
        if final not in placed:
            _drop_part(run, final)
    run.view.state(work.label, "done", f"{render.bytes} bytes")


def _drop_part(run: Run, final: Path) -> None:
    """Remove the leftover part file (another render's, interrupted) of a job whose clip
    was already in place, and its owner record: no later download resumes onto it."""
    part = part_of(final)
    relative = part.relative_to(run.output_dir).as_posix()
    part.unlink(missing_ok=True)
    if run.store.part_owner(relative) is not None:
        run.store.set_part_owner(relative, None)


def _make_room(run: Run, row: JobRow, final: Path) -> None:
    """Move the clip that sits at ``final`` (an older render's) into ``.history/``."""
    sidecar = read_sidecar(final) or {}
    if row.file_fingerprint is not None and row.file == clip_relpath(row.shot, row.take):
        label = history_label(row.file_fingerprint, row.file_generation)
    elif sidecar.get("fingerprint"):
        label = history_label(str(sidecar["fingerprint"]), sidecar.get("generation", 1))
    else:
        label = "unknown"
    moved = move_to_history(final, label)
    if row.file is not None:
        run.store.record_file_moved(run.run_id, row, f"moved to {moved}")


def _record(
    run: Run, work: Work, item: PlannedJob, row: JobRow, final: Path, *, part: Path | None = None
) -> None:
    """Write the sidecar and record the delivery; ``part``, the part file just renamed
    to ``final``, has its owner record dropped in the same transaction."""
    render = work.render
    write_sidecar(final, sidecar(run, work, item.job.shot.id, item.job.take, item.job))
    stat = final.stat()
    assert render.sha256 is not None
    run.store.record_delivery(
        run.run_id,
        row,
        file=clip_relpath(item.job.shot.id, item.job.take),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=render.sha256,
        part=None if part is None else part.relative_to(run.output_dir).as_posix(),
    )
    run.result.delivered += 1
    run.result.seconds_delivered += item.job.shot.seconds_to_pay
    run.count_delivery(work)


def sidecar(run: Run, work: Work, shot: str, take: int, job: Job | None) -> dict[str, Any]:
    """The provenance of a clip of ``work``'s render, written next to it: the job, the
    render and its task, the clip's hash and times, where it came from, and what the
    manifest says of the shot (``job``; None for an earlier render's clip, which the
    manifest no longer describes)."""
    render, manifest = work.render, run.context.manifest
    sidecar: dict[str, Any] = {
        "shot": shot,
        "take": take,
        "fingerprint": render.fingerprint,
        "generation": render.generation,
        "attempt": render.attempt,
        "task_id": render.task_id,
        "sha256": render.sha256,
        "bytes": render.bytes,
        "submitted_at": render.submitted_at,
        "completed_at": render.completed_at,
        "downloaded_at": render.downloaded_at,
        "manifest": manifest.display_path,
        "manifest_sha256": manifest.sha256,
        # The API this render went to: a Veo or Runway shot's, not the gateway's.
        "provider": render.provider or "gateway",
        "api_base": run.base_of(render.provider),
        "runner_version": __version__,
        "possible_duplicate": render.possible_duplicate,
        "simulated": run.context.simulated,
    }
    if job is None:
        sidecar.update(model=None, request=None, earlier_render=True)
    else:
        sidecar.update(model=job.shot.model, request=provenance_request(job.shot))
    return sidecar
