"""What a batch knows of the clips its chained shots need (``runner.chain.Sources``).

From the store when the batch has one: a job's clip counts when the job points at the render
with that fingerprint and its clip is delivered and intact; a take picked with ``shotrunner
pick`` is the one a frame comes from when the entry names none. Without a store (``plan`` of
a new batch), from the clips' sidecars on disk. Reads only. ``bind_batch`` and
``attach_chain`` put chained jobs into a plan: the ones that wait, and why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runner.chain import Bound, Clip, Sources, bind_jobs, with_needs
from runner.delivery import clip_intact, clip_relpath, read_sidecar
from runner.plan import PAYING_ACTIONS

if TYPE_CHECKING:
    from runner.model import Manifest
    from runner.plan import Plan, PlanOptions
    from runner.store import JobKey, JobRow, RenderKey, RenderRow, Store


class StoreSources:
    """The clips the store records as delivered, and the picked takes."""

    def __init__(self, store: Store) -> None:
        self.output_dir = store.path.parent
        self._jobs: Mapping[JobKey, JobRow] = store.jobs()
        self._renders: Mapping[RenderKey, RenderRow] = store.renders()
        self._picked = {
            shot: take for (shot, take), verdict in store.verdicts().items() if verdict == "picked"
        }

    def take_of(self, shot: str) -> int:
        return self._picked.get(shot, 1)

    def _row(self, shot: str, take: int, fingerprint: str) -> JobRow | None:
        row = self._jobs.get((shot, take))
        return row if row is not None and row.fingerprint == fingerprint else None

    def clip(self, shot: str, take: int, fingerprint: str) -> Clip | None:
        row = self._row(shot, take, fingerprint)
        if row is None or not row.delivered or row.file is None or row.file_sha256 is None:
            return None
        if not clip_intact(self.output_dir, row):
            return None
        return Clip(row.file_sha256, self.output_dir / row.file)

    def failed(self, shot: str, take: int, fingerprint: str) -> bool:
        row = self._row(shot, take, fingerprint)
        render = self._renders.get(row.render_key) if row is not None else None
        return render is not None and render.state == "failed"


class SidecarSources:
    """The clips whose sidecars on disk name their fingerprint (a batch without a store)."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir

    def take_of(self, shot: str) -> int:
        return 1

    def clip(self, shot: str, take: int, fingerprint: str) -> Clip | None:
        path = self.output_dir / clip_relpath(shot, take)
        sidecar = read_sidecar(path)
        if sidecar is None or sidecar.get("fingerprint") != fingerprint or not path.is_file():
            return None
        sha256 = sidecar.get("sha256")
        return Clip(sha256, path) if isinstance(sha256, str) else None

    def failed(self, shot: str, take: int, fingerprint: str) -> bool:
        return False


def bind_batch(
    manifest: Manifest, store: Store | None, options: PlanOptions
) -> tuple[Bound, PlanOptions]:
    """The manifest's jobs bound to the clips they need as the batch has them now, and
    ``options`` with ``--only`` widened to the shots its shots need and lack (as make does)."""
    sources: Sources = (
        StoreSources(store) if store is not None else SidecarSources(manifest.output_dir)
    )
    if options.only:
        options = dataclasses.replace(options, only=with_needs(manifest, options.only, sources))
    return bind_jobs(manifest, sources), options


def attach_chain(plan: Plan, bound: Bound, output_dir: Path) -> Plan:
    """``plan`` with the jobs that wait (in its scope), the order of the shots, and the
    shots whose clips changed under each job; the waiting jobs' seconds are counted as
    paid: they will be submitted once their clips are there."""
    only = plan.options.only
    plan.waiting = [w for w in bound.waiting if not only or w.shot.id in only]
    plan.needs = bound.needs
    plan.summary.waiting = len(plan.waiting)
    plan.summary.seconds_to_pay += sum(w.shot.seconds_to_pay for w in plan.waiting_to_pay)
    current: dict[str, dict[str, str | None]] = {}
    for item in plan.jobs:
        if item.action in PAYING_ACTIONS and item.job.shot.id in bound.needs:
            current[item.job.key] = {
                str(i.from_shot): i.clip_sha256 for i in item.job.shot.images if i.kind == "shot"
            }
    for waiting in plan.waiting:
        current[waiting.key] = dict.fromkeys(bound.needs.get(waiting.shot.id, []))
    for key, clips in current.items():
        shot, _, take = key.rpartition("/")
        used = _clips_used(output_dir / clip_relpath(shot, int(take)))
        changed = [name for name, sha256 in used.items() if clips.get(name, sha256) != sha256]
        if changed:
            plan.changed[key] = changed
    return plan


def _clips_used(clip: Path) -> dict[str, str]:
    """The source clips (shot -> sha256) whose frames the clip at ``clip`` started from, as
    its sidecar records them."""
    sidecar = read_sidecar(clip) or {}
    request = sidecar.get("request")
    if not isinstance(request, dict):
        return {}
    entries: list[object] = [request.get("first_image_url"), request.get("last_image_url")]
    images = request.get("images")
    if isinstance(images, list):
        entries += images
    used: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, dict) and entry.get("kind") == "shot":
            shot, sha256 = entry.get("shot"), entry.get("clip_sha256")
            if isinstance(shot, str) and isinstance(sha256, str):
                used[shot] = sha256
    return used
