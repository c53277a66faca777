"""The offline capability check of a manifest: every shot held against its provider's model.

``capability_problems`` names the field each problem a profile's ``check`` finds is about;
the manifest layer reports it where that field was written (on the shot, in ``defaults``
or at the top; a shots file's row or the manifest), as each shot is built.
``validate_checked`` and ``load_checked`` are the manifest layer's ``validate_manifest``
and ``load_manifest`` with this check: what ``validate``, ``plan`` and ``run`` load. (The
manifest layer itself knows no provider profile: the gateway's reads tasks with the API
client's ``Task``.)
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

from runner.diagnostics import Diagnostic
from runner.manifest import Counts, load_manifest, validate_manifest
from runner.model import Manifest, Shot
from runner.providers import Needs, profile
from runner.shotfiles import Progress

#: Which field a problem is about, by the words the check uses (first match wins).
_FIELD_WORDS: tuple[tuple[str, str], ...] = (
    ("has no model", "model"),
    ("reference images only at", "seconds"),
    (" only at ", "resolution"),
    ("aspect ratio", "aspect_ratio"),
    ("needs seconds", "seconds"),
    (" s, not ", "seconds"),
    ("prompt", "prompt"),
    ("extra field", "extra"),
    ("does not take ", "extra"),
    ("image", "images"),
    ("frame", "images"),
    ("renders ", "resolution"),
)


def capability_problems(shot: Shot, written: Collection[str]) -> Iterator[tuple[str, str]]:
    """Every way ``shot`` asks more than its provider's model renders, each naming what the
    model does accept, with the field it is about (``runner.manifest.ShotCheck``)."""
    provider = profile(shot.provider)
    if not provider.models:
        return  # the gateway checks requests itself
    for problem in provider.check(Needs.from_shot(shot)):
        yield _field_of(problem, written), f"{shot.provider}: {problem}"


def _field_of(problem: str, written: Collection[str]) -> str:
    for words, name in _FIELD_WORDS:
        if words in problem and name in written:
            return name
    for name in ("model", "provider"):
        if name in written:
            return name
    return ""


def validate_checked(
    path: str | Path, *, progress: Progress | None = None
) -> tuple[Counts | None, list[Diagnostic]]:
    """``validate_manifest`` with the capability check, one shot at a time: a shots file
    of a million rows stays in bounded memory."""
    return validate_manifest(path, progress=progress, check=capability_problems)


def load_checked(path: str | Path, *, out: Path | None = None) -> Manifest:
    """``load_manifest`` with the capability check; ``ManifestInvalid`` with every problem."""
    return load_manifest(path, out=out, check=capability_problems)
