"""The offline capability check of a manifest: every shot held against its provider's model.

``check_shots`` turns each problem a profile's ``check`` finds into a ``Diagnostic`` at the
field that asks for it (where it was written: on the shot, in ``defaults`` or at the top).
``checked_manifest`` and ``load_checked`` are ``check_manifest`` and ``load_manifest`` with
this check added: what ``validate``, ``plan`` and ``run`` load. (The manifest layer itself
knows no provider profile: the gateway's reads tasks with the API client's ``Task``.)
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from runner.diagnostics import Diagnostic, has_errors
from runner.errors import ManifestInvalid
from runner.manifest import Counts, check_manifest, load_manifest, validate_manifest
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


def check_shots(manifest: Manifest) -> list[Diagnostic]:
    """Every way a shot asks more than its provider's model renders, located, each naming
    what the model does accept."""
    found: list[Diagnostic] = []
    for shot in manifest.shots:
        for problem in profile(shot.provider).check(Needs.from_shot(shot)):
            name = _field_of(problem, shot)
            where = shot.places.get(name) or shot.places.get("")
            file, line, column = where or (manifest.display_path, shot.line, 1)
            path = f"shots[{shot.index}]" + (f".{name}" if name else "")
            found.append(Diagnostic(file, line, column, path, f"{shot.provider}: {problem}"))
    return found


def _field_of(problem: str, shot: Shot) -> str:
    for words, name in _FIELD_WORDS:
        if words in problem and name in shot.places:
            return name
    for name in ("model", "provider"):
        if name in shot.places:
            return name
    return ""


def checked_manifest(path: str | Path) -> tuple[Manifest | None, list[Diagnostic]]:
    """``check_manifest`` and the capability check: the manifest if both find no error."""
    manifest, diagnostics = check_manifest(path)
    if manifest is None:
        return None, diagnostics
    problems = check_shots(manifest)
    found = sorted([*diagnostics, *problems], key=lambda d: (d.line, d.column))
    return (None if has_errors(found) else manifest), found


def validate_checked(
    path: str | Path, *, progress: Progress | None = None
) -> tuple[Counts | None, list[Diagnostic]]:
    """``validate_manifest`` and the capability check. Shots are kept (a second pass) only
    when the manifest names a provider: without one, every shot is the gateway's, which
    checks requests itself, so a shots file of a million rows stays in bounded memory."""
    counts, diagnostics = validate_manifest(path, progress=progress)
    if counts is None or not _names_a_provider(Path(path)):
        return counts, diagnostics
    manifest, found = checked_manifest(path)
    return (counts if manifest is not None else None), found


def _names_a_provider(path: Path) -> bool:
    """Whether the manifest, or the shots file it names, holds the word ``provider`` (read
    in blocks: a shots file may be large)."""
    try:
        data = path.read_bytes()
        if b"provider" in data:
            return True
        if b"shots_from" not in data:
            return False
        document = yaml.safe_load(data)
        written = document.get("shots_from") if isinstance(document, dict) else None
        if not isinstance(written, str):
            return False
        return _holds(path.parent / os.path.expanduser(written), b"provider")
    except (OSError, yaml.YAMLError):
        return True


def _holds(path: Path, word: bytes) -> bool:
    with path.open("rb") as source:
        tail = b""
        while block := source.read(1 << 20):
            if word in tail + block:
                return True
            tail = block[-len(word) :]
    return False


def load_checked(path: str | Path, *, out: Path | None = None) -> Manifest:
    """``load_manifest`` and the capability check; ``ManifestInvalid`` with every problem."""
    manifest = load_manifest(path, out=out)
    problems = check_shots(manifest)
    if problems:
        found = sorted([*manifest.warnings, *problems], key=lambda d: (d.line, d.column))
        raise ManifestInvalid(found)
    return manifest
