"""Renders no job points at any more (an edited or removed shot, fewer takes): found at the
start and followed to their end, never resubmitted, their clips kept in the shot's
``.history/`` under the name an undo of the edit looks for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from runner.delivery import (
    HISTORY,
    clip_relpath,
    history_label,
    place,
    sidecar_of,
    write_sidecar,
)
from runner.engine.base import EngineBase
from runner.engine.work import Work
from runner.reconcile import PlannedJob, earlier_renders


class EarlierMixin(EngineBase):
    """Finding earlier renders and keeping their clips."""

    def _add_earlier(self, planned: Sequence[PlannedJob]) -> None:
        """Follow the renders in flight that no job points at any more (an edited or removed
        shot, fewer takes): their tasks may be paid for. A create that never got its answer
        is not sent again (it would pay for a shot the user removed): it is only reported."""
        manifest = self.context.manifest
        jobs = [(shot.id, take) for shot in manifest.shots for take in range(1, shot.takes + 1)]
        for item in earlier_renders(self.store, planned, jobs):
            work = Work(render=item.render, jobs=[], earlier=(item.shot, item.take))
            if item.render.task_id is None:
                self.result.possibly_billed.append(work.label)
            else:
                self.works.append(work)

    def _earlier_path(self, work: Work) -> Path:
        """Where an earlier render's clip goes: the ``.history/`` name ``move_to_history``
        would give it, so that undoing the edit finds it there."""
        assert work.earlier is not None
        shot, take = work.earlier
        render = work.render
        final = self.output_dir / clip_relpath(shot, take)
        label = history_label(render.fingerprint, render.generation)
        return final.parent / HISTORY / f"{final.stem}.{label}{final.suffix}"

    def _keep_earlier(self, work: Work, part: Path) -> Path:
        """Put an earlier render's downloaded clip into ``.history/`` with its sidecar, under
        a name that overwrites nothing."""
        base = target = self._earlier_path(work)
        counter = 1
        while target.exists() or sidecar_of(target).exists():
            counter += 1
            target = base.with_name(f"{base.stem}-{counter}{base.suffix}")
        place(part, target)
        assert work.earlier is not None
        shot, take = work.earlier
        sidecar = self._sidecar_common(work, shot, take)
        # The manifest no longer describes this render.
        sidecar.update(model=None, request=None, earlier_render=True)
        write_sidecar(target, sidecar)
        return target
