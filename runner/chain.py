"""Continuity: shots whose images are frames of other shots' clips, and the order they need.

An image entry may name a frame of another shot (``{shot: s01, frame: last, take: 2}``);
``shot_frame`` reads one. ``chain_problems`` is the manifest's meaning check of them (an
unknown shot, a take the shot does not render, a time past its clip, a cycle; a ratio or
resolution that differs is a warning). ``bind_jobs`` is the run's side: in dependency order,
a chained shot's jobs get their fingerprints once the clips they need are delivered (the
clip's sha256 and the frame spec enter the fingerprint, never the PNG's bytes); until then
they wait, each with the reason (``Waiting``). What is delivered comes from a ``Sources``
(``runner.sources`` reads it from the store). Knows nothing of HTTP, SQLite or the engine.
"""

from __future__ import annotations

import dataclasses
import graphlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from runner.model import ImageRef, Job, Manifest, Shot

#: Where a chained shot's extracted frames are kept, inside its folder.
INPUTS = "inputs"


def frame_text(value: Any) -> str:
    """A frame spec as one word: ``first``, ``last``, or seconds (``2.5``; ``1.0`` is ``1``)."""
    if isinstance(value, str):
        return value
    return format(float(value), "g")


def shot_frame(raw: dict[str, Any]) -> ImageRef:
    """The image entry ``{shot, frame, take?}`` (already checked by the schema)."""
    shot, frame, take = str(raw["shot"]), frame_text(raw["frame"]), raw.get("take")
    where = frame if frame in ("first", "last") else f"{frame} s"
    source = f"{shot} take {take} at {where}" if take else f"{shot} at {where}"
    return ImageRef(
        source=source,
        kind="shot",
        from_shot=shot,
        from_take=int(take) if take is not None else None,
        frame=frame,
        # Sent as a PNG data URI once taken: what a provider's offline check holds it to.
        media_type="image/png",
    )


def frames_of(shot: Shot) -> list[tuple[int, ImageRef]]:
    """The shot's images that are frames of other shots, with their positions."""
    return [(i, image) for i, image in enumerate(shot.images) if image.kind == "shot"]


def needs(shot: Shot) -> list[str]:
    """The shots whose clips ``shot`` needs, each once, in the order written."""
    frames = frames_of(shot)
    return list(dict.fromkeys(str(image.from_shot) for _, image in frames)) if frames else []


def frame_name(image: ImageRef, take: int) -> str:
    """``<from-shot>-take<k>-<frame>.png``: the extracted frame's file name."""
    return f"{image.from_shot}-take{take}-{image.frame}.png"


# -- the manifest's checks -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """A problem with the image at ``position`` of the shot at ``index``."""

    index: int
    position: int
    message: str
    severity: Literal["error", "warning"] = "error"


def chain_problems(shots: Sequence[Shot], known: Iterable[str] = ()) -> list[ChainProblem]:
    """Every problem of the frames of other shots in ``shots``. Ids in ``known`` (shots
    written but refused for another reason) are not reported as unknown."""
    from runner.schema import did_you_mean

    chained = [(shot, found) for shot in shots if (found := frames_of(shot))]
    if not chained:
        return []
    by_id = {shot.id: shot for shot in shots}
    others = set(known) - set(by_id)
    problems: list[ChainProblem] = []
    for shot, frames in chained:
        for position, image in frames:
            name = str(image.from_shot)
            source = by_id.get(name)
            if source is None:
                if name not in others:
                    hint = did_you_mean(name, sorted(by_id))
                    problems.append(
                        ChainProblem(shot.index, position, f"unknown shot {name!r}{hint}")
                    )
                continue
            problems.extend(_source_problems(shot, position, image, source))
    problems.extend(_cycles(shots, by_id))
    return problems


def _source_problems(
    shot: Shot, position: int, image: ImageRef, source: Shot
) -> list[ChainProblem]:
    found = []

    def add(message: str, severity: Literal["error", "warning"] = "error") -> None:
        found.append(ChainProblem(shot.index, position, message, severity))

    if image.from_take is not None and image.from_take > source.takes:
        add(
            f"take {image.from_take} of {source.id} does not exist: {source.id} renders "
            f"{source.takes} take(s)"
        )
    if image.frame not in ("first", "last") and source.seconds is not None:
        at = float(str(image.frame))
        if at >= source.seconds:
            add(
                f"frame {image.frame} s is past the end of {source.id}, whose clip lasts "
                f"{source.seconds} s (use frame: last for its last frame)"
            )
    for what, mine, theirs in (
        ("aspect ratio", shot.aspect_ratio, source.aspect_ratio),
        ("resolution", shot.resolution, source.resolution),
    ):
        if mine is not None and theirs is not None and mine != theirs:
            add(
                f"{source.id}'s {what} is {theirs} but this shot's is {mine}: "
                "its frame will be scaled or cropped",
                "warning",
            )
    return found


def _cycles(shots: Sequence[Shot], by_id: dict[str, Shot]) -> list[ChainProblem]:
    """Each cycle of shots waiting on each other, named in full, reported at the image of
    its first shot (in storyboard order) that points into it."""
    # Only a shot that needs others can be in a cycle.
    graph = {shot.id: found for shot in shots if (found := [n for n in needs(shot) if n in by_id])}
    problems: list[ChainProblem] = []
    while True:
        try:
            graphlib.TopologicalSorter(graph).prepare()
            return problems
        except graphlib.CycleError as error:
            cycle: list[str] = list(error.args[1])
        members = set(cycle)
        first = min((by_id[name] for name in members), key=lambda s: s.index)
        # graphlib lists each node before the node that needs it: read it the other way.
        loop = list(reversed(cycle))
        start = loop.index(first.id)
        named = loop[start:-1] + loop[:start] + [first.id]
        position = next(p for p, i in frames_of(first) if i.from_shot in members)
        message = (
            f"a cycle: {' needs '.join(named)}; none of these shots can start "
            "(a shot can only use frames of shots that do not need it)"
        )
        problems.append(ChainProblem(first.index, position, message))
        for name in members:
            graph[name] = []


def order(shots: Sequence[Shot]) -> list[Shot]:
    """The shots, each after the shots it needs (storyboard order otherwise)."""
    by_id = {shot.id: shot for shot in shots}
    done: set[str] = set()
    ordered: list[Shot] = []

    def visit(shot: Shot) -> None:
        if shot.id in done:
            return
        done.add(shot.id)
        for name in needs(shot):
            if name in by_id:
                visit(by_id[name])
        ordered.append(shot)

    for shot in shots:
        visit(shot)
    return ordered


# -- the run's side ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clip:
    """A delivered clip of a job: its hash and where it is."""

    sha256: str
    path: Path


class Sources(Protocol):
    """What the batch knows of the clips that chained shots need."""

    def take_of(self, shot: str) -> int:
        """The take a frame comes from when none is named: the picked one, else 1."""
        ...

    def clip(self, shot: str, take: int, fingerprint: str) -> Clip | None:
        """The delivered clip of (shot, take) rendered under ``fingerprint``, or None."""
        ...

    def failed(self, shot: str, take: int, fingerprint: str) -> bool:
        """Whether the render of (shot, take) under ``fingerprint`` failed."""
        ...


@dataclass(frozen=True, slots=True)
class Waiting:
    """A job that cannot be fingerprinted yet: a clip it needs is not delivered."""

    shot: Shot
    take: int
    #: The shots whose clips it waits for.
    waits_for: tuple[str, ...]
    #: Whether a clip it needs failed (it is held until that shot renders).
    held: bool

    @property
    def key(self) -> str:
        return f"{self.shot.id}/{self.take}"

    @property
    def reason(self) -> str:
        return waiting_reason(self.waits_for, held=self.held)


def waiting_reason(waits_for: Sequence[str], *, held: bool) -> str:
    """Why a job waits: ``waits for s01-wide``, or ``needs s01-wide, which failed``."""
    names = ", ".join(waits_for)
    return f"needs {names}, which failed" if held else f"waits for {names}"


@dataclass(slots=True)
class Bound:
    """The manifest's jobs as far as they can be fingerprinted now, and the others."""

    jobs: list[Job]
    waiting: list[Waiting]
    #: Which shots each chained shot needs (for the plan's order).
    needs: dict[str, list[str]]


def bind_jobs(manifest: Manifest, sources: Sources) -> Bound:
    """Every job that can be fingerprinted now (storyboard order), and the ones that wait.

    A chained shot's frames are bound to the delivered clip of the take they name (the
    picked take, else 1) under that job's current fingerprint: a source rendered again
    (edited, forced, another take picked) gives its dependants new fingerprints.
    """
    from runner.jobs import expand_jobs, fingerprint

    chained = {shot.id: needed for shot in manifest.shots if (needed := needs(shot))}
    if not chained:
        return Bound(expand_jobs(manifest), [], chained)
    fingerprints: dict[tuple[str, int], str | None] = {}
    held: set[str] = set()
    bound: dict[str, list[Job]] = {}
    waiting: dict[str, list[Waiting]] = {}
    for shot in order(manifest.shots):
        frames = frames_of(shot) if shot.id in chained else []
        images = list(shot.images) if frames else []
        blocked: list[str] = []
        failed = False
        for position, image in frames:
            name = str(image.from_shot)
            take = image.from_take or sources.take_of(name)
            source_fingerprint = fingerprints.get((name, take))
            clip = None
            if source_fingerprint is not None:
                clip = sources.clip(name, take, source_fingerprint)
                if clip is None and sources.failed(name, take, source_fingerprint):
                    failed = True
            elif name in held:
                failed = True
            if clip is None:
                blocked.append(name)
                continue
            images[position] = dataclasses.replace(
                image,
                from_take=take,
                clip_sha256=clip.sha256,
                clip_path=clip.path,
                path=manifest.output_dir / shot.id / INPUTS / frame_name(image, take),
                media_type="image/png",
            )
        takes = range(1, shot.takes + 1)
        if blocked:
            names = tuple(dict.fromkeys(blocked))
            waiting[shot.id] = [Waiting(shot, take, names, failed) for take in takes]
            if failed:
                held.add(shot.id)
            for take in takes:
                fingerprints[(shot.id, take)] = None
            continue
        # Only a chained shot's frames change: the others are kept as they are.
        ready = shot if not frames else dataclasses.replace(shot, images=tuple(images))
        bound[shot.id] = []
        for take in takes:
            job = Job(shot=ready, take=take, fingerprint=fingerprint(ready, take))
            fingerprints[(shot.id, take)] = job.fingerprint
            bound[shot.id].append(job)
    jobs = [job for shot in manifest.shots for job in bound.get(shot.id, [])]
    waits = [item for shot in manifest.shots for item in waiting.get(shot.id, [])]
    return Bound(jobs, waits, chained)


def with_needs(manifest: Manifest, only: Iterable[str], sources: Sources) -> frozenset[str]:
    """``only`` and, as make does with targets, every shot they need (through others) whose
    clip is not delivered yet under its current fingerprint."""
    bound = bind_jobs(manifest, sources)
    ready = {(job.shot.id, job.take): job for job in bound.jobs}
    by_id = {shot.id: shot for shot in manifest.shots}
    wanted = set(only)
    todo = list(wanted)
    while todo:
        shot = by_id[todo.pop()]
        for _, image in frames_of(shot):
            name = str(image.from_shot)
            take = image.from_take or sources.take_of(name)
            job = ready.get((name, take))
            delivered = job is not None and sources.clip(name, take, job.fingerprint) is not None
            if not delivered and name not in wanted:
                wanted.add(name)
                todo.append(name)
    return frozenset(wanted)
