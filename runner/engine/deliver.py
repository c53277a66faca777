"""Delivering a clip into every job's folder that lacks it: an older clip moved into
``.history/`` first, the new one placed atomically with its sidecar, the delivery recorded in
the store. Clips already intact on disk (or found again by their hash) are taken as they are.
The file operations themselves are ``runner.delivery``'s."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.delivery import (
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
    write_sidecar,
)
from runner.engine.base import EngineBase
from runner.engine.work import Work
from runner.reconcile import PlannedJob
from runner.store import JobRow

if TYPE_CHECKING:
    from runner.model import Job


class DeliverMixin(EngineBase):
    """Putting a render's clip into its jobs' folders."""

    def _final(self, job: Job) -> Path:
        return self.output_dir / clip_relpath(job.shot.id, job.take)

    def _deliver_locally(self, work: Work) -> bool:
        """Deliver a done render without the network: adopt or copy intact files on disk."""
        render = work.render
        if render.state != "done":
            return False
        source = self._intact_copy(work)
        if source is None:
            source = self._copy_on_disk(work)
        if source is None:
            return False
        self._deliver_all(work, source)
        return True

    def _copy_on_disk(self, work: Work) -> Path | None:
        """The render's clip found whole on disk but not on record: at a final path or in a
        part file (a crash before the rename or the record), or in ``.history/`` (an edit
        reverted). Checked by hash, so nothing else is taken for it."""
        render = work.render
        for item in work.jobs:
            final = self._final(item.job)
            candidates = [final, part_of(final)]
            candidates += history_candidates(final, render.fingerprint, render.generation)
            for candidate in candidates:
                if matches(candidate, render.sha256, render.bytes):
                    return candidate
        return None

    def _intact_copy(self, work: Work) -> Path | None:
        for item in work.jobs:
            row = work.rows.get((item.job.shot.id, item.job.take))
            if (
                row is not None
                and row.delivered
                and clip_intact(self.output_dir, row, verify=self.options.verify)
            ):
                return self._final(item.job)
        return None

    def _deliver_all(self, work: Work, source: Path) -> None:
        """Put the clip at ``source`` into every job's folder that lacks it (source last)."""
        render = work.render
        finals = [self._final(item.job) for item in work.jobs]
        order = sorted(range(len(work.jobs)), key=lambda i: part_of(finals[i]) == source)
        #: Finals renamed into place from their own part file in this call.
        placed: set[Path] = set()
        for index in order:
            item, final = work.jobs[index], finals[index]
            key = (item.job.shot.id, item.job.take)
            row = work.rows[key]
            if final == source or (
                row.delivered and clip_intact(self.output_dir, row, verify=self.options.verify)
            ):
                if final == source and not row.delivered:
                    self._record(work, item, row, final)
                continue
            occupied = final.exists()
            if occupied and matches(final, render.sha256, render.bytes):
                self._record(work, item, row, final)
                continue
            if occupied:
                self._make_room(row, final)
            part = source if source == part_of(final) else copy_to_part(source, final)
            place(part, final)
            # The part is gone (renamed): its owner record goes with the delivery's.
            self._record(work, item, row, final, part=part)
            placed.add(final)
        for final in finals:
            if final not in placed:
                self._drop_part(final)
        self.view.state(work.label, "done", f"{render.bytes} bytes")

    def _drop_part(self, final: Path) -> None:
        """Remove the leftover part file (another render's, interrupted) of a job whose clip
        was already in place, and its owner record: no later download resumes onto it."""
        part = part_of(final)
        relative = part.relative_to(self.output_dir).as_posix()
        part.unlink(missing_ok=True)
        if self.store.part_owner(relative) is not None:
            self.store.set_part_owner(relative, None)

    def _make_room(self, row: JobRow, final: Path) -> None:
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
            self.store.record_file_moved(self.run_id, row, f"moved to {moved}")

    def _record(
        self, work: Work, item: PlannedJob, row: JobRow, final: Path, *, part: Path | None = None
    ) -> None:
        """Write the sidecar and record the delivery; ``part``, the part file just renamed
        to ``final``, has its owner record dropped in the same transaction."""
        render = work.render
        write_sidecar(final, self._sidecar(work, item))
        stat = final.stat()
        assert render.sha256 is not None
        self.store.record_delivery(
            self.run_id,
            row,
            file=clip_relpath(item.job.shot.id, item.job.take),
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            sha256=render.sha256,
            part=None if part is None else part.relative_to(self.output_dir).as_posix(),
        )
        self.result.delivered += 1
        self.result.seconds_delivered += item.job.shot.seconds_to_pay

    def _sidecar(self, work: Work, item: PlannedJob) -> dict[str, Any]:
        job = item.job
        return {
            **self._sidecar_common(work, job.shot.id, job.take),
            "model": job.shot.model,
            "request": self._provenance_request(job.shot),
        }
