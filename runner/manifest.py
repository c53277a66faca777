"""Loading a manifest: schema and meaning checks, defaults, vars, images, warnings.

``check_manifest`` reports every problem of a file in one pass (the schema's, then the
meaning checks the schema cannot express); ``load_manifest`` returns the ``Manifest`` or
raises ``ManifestInvalid`` with all of them; ``validate_manifest`` only counts the shots.
The rows of a ``shots_from`` file (read by ``runner.shotfiles``) get the same checks as
the YAML shots, one row at a time, located in that file. Knows nothing of HTTP, SQLite or
the engine.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import math
import os
import re
import unicodedata
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from runner import schema
from runner.chain import chain_problems, shot_frame
from runner.diagnostics import Diagnostic, Severity, has_errors
from runner.errors import ManifestInvalid
from runner.images import ImageProblem, ImageResolver
from runner.model import (
    DEFAULT_MODEL,
    DEFAULT_PROVIDER,
    REQUEST_FIELDS,
    ImageRef,
    Manifest,
    Mode,
    Shot,
)
from runner.shotfiles import Progress, Row, RowDocument, ShotFile, kind_of
from runner.text import shown, visible
from runner.yamlsrc import Document, PathKey, format_path, load_yaml, parse_path

#: Reference-video fields that ``omni-fast`` refuses.
VIDEO_FIELDS = ("video", "video_url", "input_video")
DOCUMENTED_SECONDS = (4, 30)
DOCUMENTED_ASPECT_RATIOS = ("16:9", "9:16")
IMAGE_COUNTS: dict[str, tuple[int, int, str]] = {
    "text": (0, 0, "no images"),
    "first_frame": (1, 1, "exactly 1 image"),
    "first_last": (2, 2, "exactly 2 images (first and last frame)"),
    "reference": (1, 5, "1 to 5 images"),
}
MAX_IMAGES = max(high for _, high, _ in IMAGE_COUNTS.values())
SHOT_FIELDS = (
    "prompt",
    "mode",
    "images",
    "model",
    "seconds",
    "aspect_ratio",
    "resolution",
    "takes",
    "extra",
    "provider",
)

#: A prompt longer than this is warned about; one longer than ``MAX_PROMPT_CHARS`` is refused.
LONG_PROMPT_CHARS = 2_000
MAX_PROMPT_CHARS = 20_000

#: A check of each built shot beyond the manifest's own (a provider's capabilities, from
#: ``runner.providers.check``): given the shot and the names of the fields written for it
#: (on the shot, in ``defaults`` or at the top), each problem as (field name, message),
#: the name "" for the shot as a whole. Each is reported where that field is written.
ShotCheck = Callable[[Shot, Collection[str]], Iterable[tuple[str, str]]]

_VAR_RE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)\})")


class UnknownVar(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def substitute(template: str, variables: dict[str, str]) -> str:
    """``${name}`` -> its value, ``$$`` -> ``$``; any other ``$`` stays as written.

    Raises ``UnknownVar`` for the first name that ``variables`` lacks.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        name = match.group(2)
        if name not in variables:
            raise UnknownVar(name)
        return variables[name]

    return _VAR_RE.sub(replace, template)


def unknown_vars(template: str, variables: dict[str, str]) -> list[str]:
    """Every ``${name}`` in ``template`` that ``variables`` lacks, in order."""
    return [
        m.group(2) for m in _VAR_RE.finditer(template) if m.group(2) and m.group(2) not in variables
    ]


@dataclass(slots=True)
class _Checker:
    """One pass over a loaded document, collecting diagnostics as it builds shots."""

    doc: Document
    file: str
    base_dir: Path
    diagnostics: list[Diagnostic] = field(default_factory=list)
    schema_errors: set[PathKey] = field(default_factory=set)
    seen: set[tuple[int, int, str, str]] = field(default_factory=set)
    shot_check: ShotCheck | None = None

    def report(
        self, path: PathKey, message: str, *, severity: str = "error", key: bool = False
    ) -> None:
        where = self.doc.where(path, key=key)
        marker = (where.line, where.column, format_path(path), message)
        if marker in self.seen:  # a problem in defaults shows once, not once per shot
            return
        self.seen.add(marker)
        self.diagnostics.append(
            Diagnostic(
                self.file,
                where.line,
                where.column,
                format_path(path),
                message,
                "warning" if severity == "warning" else "error",
            )
        )

    def broken(self, path: PathKey) -> bool:
        """Whether the schema already reported a problem at ``path`` or inside it."""
        return path in self.schema_errors

    def any_broken(self, paths: Iterable[PathKey]) -> bool:
        """Whether the schema reported a problem at any of ``paths``."""
        return self.schema_found_any() and any(self.broken(path) for path in paths)

    def schema_found_any(self) -> bool:
        """Whether the schema reported anything this checker is asked about."""
        return bool(self.schema_errors)

    def place(self, path: PathKey) -> str:
        """Where ``path`` is written, as a message names it to a reader of this file."""
        return f"line {self.doc.where(path).line}"


@dataclass(slots=True)
class _Ids:
    """Every shot id taken so far, folded for case, with the index of the shot that took it.

    The spelling is kept only where it differs from the folded id, so that the ids of a
    million-row shots file cost little more than the ids themselves.
    """

    taken: dict[str, int] = field(default_factory=dict)
    spelt: dict[int, str] = field(default_factory=dict)

    def take(self, shot_id: str, index: int) -> tuple[str, int] | None:
        """Take ``shot_id`` for shot ``index``, or return the (spelling, index) that has it."""
        folded = shot_id.casefold()
        first = self.taken.get(folded)
        if first is not None:
            return self.spelt.get(first, folded), first
        self.taken[folded] = index
        if folded != shot_id:
            self.spelt[index] = shot_id
        return None


class _Resolver(ImageResolver):
    """An ``ImageResolver`` that remembers the sources it resolved, as written.

    A storyboard's shots name the same few frames again and again; resolving each path
    anew (joined, expanded, made absolute, its links followed to see whether it leaves the
    manifest's folder) cost more than the rest of checking a shot. At most
    ``_REMEMBERED`` are kept, so a data set naming a new URL on every row stays small; data
    URIs, which can be megabytes, are not kept.
    """

    def __init__(self, base_dir: Path) -> None:
        super().__init__(base_dir)
        self._known: dict[str, ImageRef | str] = {}
        self._outside: dict[Path, Path | None] = {}

    def resolve(self, source: str) -> ImageRef:
        known = self._known.get(source)
        if known is None:
            try:
                known = super().resolve(source)
            except ImageProblem as problem:
                known = problem.message
            if not source.startswith("data:"):
                if len(self._known) >= _REMEMBERED:
                    self._known.clear()
                self._known[source] = known
        if isinstance(known, str):
            # A new exception each time: raising one object again and again would chain
            # every raise's traceback (and its frames) onto it.
            raise ImageProblem(known)
        return known

    def outside(self, image: ImageRef) -> Path | None:
        # Resolving a path's links takes a system call per folder of it, for every shot.
        if image.path is None:
            return super().outside(image)
        if image.path not in self._outside:
            if len(self._outside) >= _REMEMBERED:
                self._outside.clear()
            self._outside[image.path] = super().outside(image)
        return self._outside[image.path]


_REMEMBERED = 4096


@dataclass(slots=True)
class _Field:
    """A shot field's value and where it was written (on the shot or in defaults)."""

    value: Any
    path: PathKey


def _merged_fields(shot: dict[str, Any], defaults: dict[str, Any], index: int) -> dict[str, _Field]:
    fields: dict[str, _Field] = {}
    for name in SHOT_FIELDS:
        if name in shot:
            fields[name] = _Field(shot[name], ("shots", index, name))
        elif name in defaults:
            fields[name] = _Field(defaults[name], ("defaults", name))
    return fields


def _provider_field(fields: dict[str, _Field], top: dict[str, Any]) -> _Field | None:
    """The shot's provider: its own, else the manifest's (``provider:`` at the top)."""
    if "provider" in fields:
        return fields["provider"]
    if "provider" in top:
        return _Field(top["provider"], ("provider",))
    return None


def _check_shots(
    checker: _Checker, value: dict[str, Any], variables: dict[str, str], ids: _Ids
) -> list[Shot]:
    defaults = value.get("defaults")
    if not isinstance(defaults, dict):
        defaults = {}
    raw_shots = value.get("shots")
    if not isinstance(raw_shots, list):
        return []
    resolver = _Resolver(checker.base_dir)
    shots: list[Shot] = []
    for index, raw in enumerate(raw_shots):
        if not isinstance(raw, dict):
            continue
        shot = _check_shot(checker, raw, defaults, index, variables, resolver, ids, value)
        if shot is not None:
            shots.append(shot)
    return shots


def _check_id(checker: _Checker, raw: dict[str, Any], index: int, ids: _Ids) -> str | None:
    shot_id = raw.get("id")
    path = ("shots", index, "id")
    if not isinstance(shot_id, str) or checker.broken(path):
        return None
    taken = ids.take(shot_id, index)
    if taken is not None:
        first, first_index = taken
        first_at = checker.place(("shots", first_index, "id"))
        if first == shot_id:
            message = f"duplicate shot id {shot_id!r} (first used at {first_at})"
        else:
            message = (
                f"shot id {shot_id!r} differs only in case from {first!r} ({first_at}); "
                "ids name folders, so they must differ in more than case"
            )
        checker.report(path, message)
        return None
    return shot_id


def _check_shot(
    checker: _Checker,
    raw: dict[str, Any],
    defaults: dict[str, Any],
    index: int,
    variables: dict[str, str],
    resolver: ImageResolver,
    ids: _Ids,
    top: dict[str, Any],
) -> Shot | None:
    ok = True
    shot_id = _check_id(checker, raw, index, ids)
    fields = _merged_fields(raw, defaults, index)
    provider_field = _provider_field(fields, top)
    if provider_field is not None:
        fields["provider"] = provider_field
    provider = DEFAULT_PROVIDER
    if provider_field is not None and isinstance(provider_field.value, str):
        provider = provider_field.value
    if checker.any_broken(f.path for f in fields.values()):
        ok = False

    prompt = _check_prompt(checker, fields.get("prompt"), index, variables)
    mode_field = fields.get("mode")
    mode = _known_mode(mode_field)
    images = _check_images(
        checker, fields.get("images"), mode, mode_field is not None, index, resolver
    )
    model = DEFAULT_MODEL
    if "model" in fields and isinstance(fields["model"].value, str):
        model = fields["model"].value
    # The gateway's documented ranges; another provider's are its capability table's.
    gateway = provider == DEFAULT_PROVIDER
    seconds = _check_seconds(checker, fields.get("seconds"), warn=gateway)
    aspect_ratio = _check_aspect_ratio(checker, fields.get("aspect_ratio"), warn=gateway)
    extra = _check_extra(checker, raw, defaults, index, model)

    if shot_id is None or prompt is None or images is None or extra is None or not ok:
        return None
    takes = int(fields["takes"].value) if "takes" in fields else 1
    resolution = fields["resolution"].value if "resolution" in fields else None
    shot = Shot(
        id=shot_id,
        index=index,
        prompt=prompt,
        mode=mode or "text",
        images=images,
        model=model,
        seconds=seconds,
        aspect_ratio=aspect_ratio,
        resolution=resolution,
        takes=takes,
        extra=extra,
        line=checker.doc.where(("shots", index)).line,
        provider=provider,
    )
    if checker.shot_check is None:
        return shot
    refused = False
    for name, message in checker.shot_check(shot, fields.keys()):
        checker.report(fields[name].path if name in fields else ("shots", index), message)
        refused = True
    return None if refused else shot


def _check_prompt(
    checker: _Checker, prompt: _Field | None, index: int, variables: dict[str, str]
) -> str | None:
    if prompt is None:
        if checker.broken(("shots", index)):
            return None  # e.g. a misspelt prompt key, already reported with a did-you-mean
        checker.report(
            ("shots", index, "prompt"),
            "the shot has no prompt (set prompt on the shot or in defaults)",
        )
        return None
    if not isinstance(prompt.value, str) or checker.broken(prompt.path):
        return None
    try:
        text = substitute(prompt.value, variables)
    except UnknownVar:
        from runner.schema import did_you_mean

        for name in dict.fromkeys(unknown_vars(prompt.value, variables)):
            hint = did_you_mean(name, sorted(variables))
            checker.report(prompt.path, f"unknown var ${{{name}}} in prompt{hint}")
        return None
    if not text.strip():
        checker.report(prompt.path, "the prompt is empty")
        return None
    if len(text) > LONG_PROMPT_CHARS:
        length = f"the prompt is {len(text):,} characters long"
        if text != prompt.value:
            length += " once its vars are filled in"
        if len(text) > MAX_PROMPT_CHARS:
            checker.report(prompt.path, f"{length}, past the limit of {MAX_PROMPT_CHARS:,}")
            return None
        checker.report(
            prompt.path,
            f"{length} (more than {LONG_PROMPT_CHARS:,}); check that nothing was pasted in by "
            "mistake",
            severity="warning",
        )
    return text


def _known_mode(mode: _Field | None) -> Mode | None:
    """The shot's mode (``text`` when unset), or None for a value the schema refuses."""
    if mode is None:
        return "text"
    if isinstance(mode.value, str) and mode.value in IMAGE_COUNTS:
        return cast(Mode, mode.value)
    return None


def _check_images(
    checker: _Checker,
    images: _Field | None,
    mode: Mode | None,
    mode_written: bool,
    index: int,
    resolver: ImageResolver,
) -> tuple[ImageRef, ...] | None:
    """Every image resolved and their count checked against the mode, each problem reported.

    Images are resolved even when their count is wrong, so a missing file shows in the
    same pass as the count. ``mode`` is None when it is not one the schema allows.
    """
    sources: list[Any] = []
    if images is not None:
        if not isinstance(images.value, list):
            return None  # reported by the schema
        sources = images.value
    ok = True
    resolved: list[ImageRef] = []
    for position, source in enumerate(sources):
        assert images is not None
        path = (*images.path, position)
        if checker.broken(path):
            ok = False
            continue
        if isinstance(source, dict):
            resolved.append(shot_frame(source))
            continue
        if not isinstance(source, str):
            ok = False
            continue
        try:
            image = resolver.resolve(source)
        except ImageProblem as problem:
            checker.report(path, problem.message)
            ok = False
            continue
        resolved.append(image)
        elsewhere = resolver.outside(image)
        if elsewhere is not None:
            # Allowed (shared frame libraries), but nobody should upload ~/Pictures unawares.
            checker.report(
                path,
                f"image {source} is outside the manifest's folder (at {elsewhere}); "
                "it is uploaded with the shot",
                severity="warning",
            )
    if mode is None:
        return None  # reported by the schema; a count would be judged against the wrong mode
    low, high, wanted = IMAGE_COUNTS[mode]
    # More than any mode takes is the schema's to report.
    if not low <= len(sources) <= high and len(sources) <= MAX_IMAGES:
        where = images.path if images is not None else ("shots", index, "images")
        if not mode_written:
            message = (
                f"{len(sources)} image(s) given but the shot's mode is text, which takes "
                "no images; set mode: first_frame, first_last or reference"
            )
        else:
            message = f"mode {mode} takes {wanted}, but {len(sources)} given"
        checker.report(where, message)
        ok = False
    return tuple(resolved) if ok else None


def _check_seconds(checker: _Checker, seconds: _Field | None, *, warn: bool) -> int | None:
    if seconds is None or checker.broken(seconds.path):
        return None
    value = int(seconds.value)
    low, high = DOCUMENTED_SECONDS
    if warn and not low <= value <= high:
        checker.report(
            seconds.path,
            f"seconds {value} is outside the documented range {low} to {high}",
            severity="warning",
        )
    return value


def _check_aspect_ratio(checker: _Checker, ratio: _Field | None, *, warn: bool) -> str | None:
    if ratio is None or checker.broken(ratio.path):
        return None
    value: str = ratio.value
    if warn and value not in DOCUMENTED_ASPECT_RATIOS:
        checker.report(
            ratio.path,
            f"aspect ratio {value} is not one the service documents "
            f"({', '.join(DOCUMENTED_ASPECT_RATIOS)})",
            severity="warning",
        )
    return value


def _check_extra(
    checker: _Checker, raw: dict[str, Any], defaults: dict[str, Any], index: int, model: str
) -> dict[str, Any] | None:
    merged: dict[str, Any] = {}
    origin: dict[str, PathKey] = {}
    for source, path in ((defaults, ("defaults", "extra")), (raw, ("shots", index, "extra"))):
        extra = source.get("extra")
        if isinstance(extra, dict) and not checker.broken(path):
            merged.update(extra)
            origin.update({key: (*path, key) for key in extra})
    ok = True
    for key in merged:
        if key in REQUEST_FIELDS:
            checker.report(
                origin[key],
                f"extra may not set {key!r}: the runner sets it from the shot's own fields",
                key=True,
            )
            ok = False
        elif key in VIDEO_FIELDS and model == DEFAULT_MODEL:
            checker.report(
                origin[key],
                f"extra may not set {key!r} with model {DEFAULT_MODEL}, "
                "which refuses reference-video fields (video, video_url, input_video)",
                key=True,
            )
            ok = False
        for where, number in _non_finite(merged[key], origin[key]):
            checker.report(where, f"extra holds {number}, which a JSON request cannot carry")
            ok = False
    return merged if ok else None


def _non_finite(value: Any, path: PathKey) -> Iterator[tuple[PathKey, float]]:
    """Each NaN or infinity inside ``value``, with its path: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, (*path, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _non_finite(item, (*path, position))


def _check_chains(checker: _Checker, value: dict[str, Any], shots: list[Shot]) -> None:
    """Frames of other shots: each names a shot that exists, a take it renders and a time
    inside its clip, and no shot waits on itself through others (``runner.chain``)."""
    raw_shots = value.get("shots")
    if not isinstance(raw_shots, list):
        return
    written = [raw.get("id") for raw in raw_shots if isinstance(raw, dict)]
    for problem in chain_problems(shots, [i for i in written if isinstance(i, str)]):
        raw = raw_shots[problem.index]
        where: PathKey = ("defaults", "images")
        if isinstance(raw, dict) and "images" in raw:
            where = ("shots", problem.index, "images")
        checker.report((*where, problem.position), problem.message, severity=problem.severity)


def _check_repeats(checker: _Checker, shots: list[Shot]) -> None:
    """Warn where one request would be sent again for the same clip.

    Takes of a shot send the same request and differ by the service's randomness; with a
    ``seed`` in ``extra`` they cannot differ, so each take past the first pays for the same
    clip again. Two shots whose requests are the same share one render per take (the same
    clip in both folders), which is rarely what two shots were written for.
    """
    from runner.jobs import request_identity

    same_prompt: dict[str, list[Shot]] = {}
    for shot in shots:
        if shot.takes > 1 and "seed" in shot.extra:
            takes_path: PathKey = ("shots", shot.index, "takes")
            if not checker.doc.written(takes_path):
                takes_path = ("defaults", "takes")
            checker.report(
                takes_path,
                f"takes: {shot.takes} with a fixed seed (extra.seed) sends {shot.takes} "
                f"identical requests: the same clip, paid for {shot.takes} times; remove the "
                "seed or set takes: 1",
                severity="warning",
            )
        same_prompt.setdefault(shot.prompt, []).append(shot)
    # Two requests can be the same only if their prompts are (extra may not set one).
    for group in same_prompt.values():
        if len(group) < 2:
            continue
        first: dict[str, Shot] = {}
        for shot in group:
            earlier = first.setdefault(request_identity(shot), shot)
            if earlier is not shot:
                checker.report(
                    ("shots", shot.index),
                    f"shot {shot.id!r} sends the same request as shot {earlier.id!r} (line "
                    f"{earlier.line}): they share one render per take, the same clip in both "
                    "folders; change its prompt or settings if they are to differ",
                    severity="warning",
                )


def _check_vars(checker: _Checker, value: dict[str, Any]) -> dict[str, str]:
    raw = value.get("vars")
    if not isinstance(raw, dict):
        return {}
    variables: dict[str, str] = {}
    for name, item in raw.items():
        if isinstance(item, str):
            variables[name] = item
        elif isinstance(item, int | float) and not isinstance(item, bool):
            variables[name] = str(item)
    return variables


#: The longest name one folder may have on common file systems (bytes).
_NAME_MAX = 255


def _check_default_name(checker: _Checker, value: dict[str, Any], stem: str) -> None:
    """Without ``name:``, the file's stem names the batch: its folder, the title of its
    sheet and of its cut (an EDL's ``TITLE:`` line). A stem with a control character (a
    terminal escape, a line end that would add a line to an EDL) or a leading dot is
    refused, asking for ``name:``."""
    if "name" in value:
        return
    if visible(stem) != stem:
        problem = "holds a control character"
    elif stem.startswith("."):
        problem = "starts with a dot"
    else:
        return
    checker.report(
        (),
        f"the manifest has no name: and its file name {shown(stem, 200)} {problem}, so it "
        "cannot name the batch; set name: (a letter or digit, then up to 63 letters, "
        "digits, '.', '_' or '-')",
    )


def _check_output_dir(checker: _Checker, value: dict[str, Any]) -> None:
    """An ``output_dir`` no file system can hold (a NUL byte, a name too long, characters
    the file system cannot encode), one with control characters, or one under a file, is
    refused here, before a run."""
    written = value.get("output_dir")
    if not isinstance(written, str) or checker.broken(("output_dir",)):
        return
    problem = None
    if "\0" in written:
        problem = "it contains a NUL character, which no path can hold"
    elif any(unicodedata.category(c) == "Cc" for c in written):
        # A folder named with terminal escapes would replay them wherever its path is shown.
        problem = "it contains a control character (a tab, a line end or a terminal escape)"
    else:
        try:
            names = [os.fsencode(name) for name in Path(written).parts]
        except UnicodeError:
            problem = "it holds characters the file system cannot encode"
        else:
            if any(len(name) > _NAME_MAX for name in names):
                problem = f"a folder name in it is longer than {_NAME_MAX} bytes"
    if problem is None:
        path = Path(os.path.abspath(checker.base_dir / os.path.expanduser(written)))
        existing = next((p for p in (path, *path.parents) if os.path.lexists(p)), None)
        if existing is not None and not existing.is_dir():
            problem = f"{existing} is a file, not a folder"
    if problem is not None:
        checker.report(("output_dir",), f"output_dir cannot be used: {problem}")


def _iter_schema_paths(diagnostics: list[Diagnostic]) -> Iterator[PathKey]:
    """Each diagnosed path and all its parents, so that ``broken`` is one set lookup."""
    for diagnostic in diagnostics:
        path = parse_path(diagnostic.path)
        for length in range(len(path) + 1):
            yield path[:length]


def _under(path: PathKey, refused: set[PathKey]) -> bool:
    """Whether ``path`` is one of ``refused`` or lies inside one."""
    return bool(refused) and any(path[:length] in refused for length in range(len(path) + 1))


def _read(path: Path, display: str) -> tuple[bytes | None, list[Diagnostic]]:
    try:
        return path.read_bytes(), []
    except IsADirectoryError:
        reason = "it is a directory"
    except FileNotFoundError:
        reason = "no such file"
    except OSError as error:
        reason = error.strerror or str(error)
    return None, [Diagnostic(display, 1, 1, "", f"cannot read the manifest: {reason}")]


def _output_dir(value: dict[str, Any], base_dir: Path, name: str, out: Path | None) -> Path:
    if out is not None:
        return Path(os.path.abspath(out))
    written = value.get("output_dir")
    relative = written if isinstance(written, str) else f"renders/{name}"
    return Path(os.path.abspath(base_dir / os.path.expanduser(relative)))


#: Problems of one shots file listed at most; the rest are counted. A file of a million
#: rows that all share one mistake would otherwise print, and hold, a million lines.
MAX_FILE_PROBLEMS = 1000


@dataclass(frozen=True, slots=True)
class Counts:
    """A checked manifest's size: its valid shots and their jobs."""

    shots: int = 0
    jobs: int = 0


class _RowChecker(_Checker):
    """The manifest's checks over the rows of its shots file, one row at a time.

    A problem of a row's own values is located in the file (``column "seconds": ...`` in a
    table); one of ``defaults``, in the manifest, once. At most ``MAX_FILE_PROBLEMS`` are
    kept; past them, the lines with problems are only counted, and a row the schema refuses
    is not described nor checked further. Only each row's line is remembered, for a
    duplicate id found later.
    """

    def __init__(self, manifest: _Checker, source: ShotFile, first_index: int) -> None:
        super().__init__(
            doc=manifest.doc,
            file=source.display,
            base_dir=manifest.base_dir,
            shot_check=manifest.shot_check,
        )
        self.manifest = manifest
        self.source = source
        self.first_index = first_index
        self.lines = array("L")
        self.row: Row | None = None
        self.index = -1
        self.row_document = RowDocument()
        self.hidden = 0
        self.hidden_errors = False
        self.last_hidden = 0

    def start(self, row: Row) -> bool:
        """Check ``row`` against the schema; whether the meaning checks should follow."""
        self.row, self.index = row, self.first_index + row.number
        self.lines.append(row.line)
        self.doc = self.row_document.show(row, self.index)
        if self.source.problems:
            self.take_problems()
        if schema.shot_is_valid(row.value):
            if self.schema_errors:
                self.schema_errors = set()
            return True
        if len(self.diagnostics) >= MAX_FILE_PROBLEMS:
            self.hide(row.line, error=True)  # describing it would cost more than the row
            return False
        found = schema.check_shot(row.value, self.index, self.doc, self.file)
        self.schema_errors = set(_iter_schema_paths(found))
        for diagnostic in found:
            label = row.label(parse_path(diagnostic.path)[2:])
            self.keep(replace(diagnostic, message=label + diagnostic.message))
        return True

    def keep(self, diagnostic: Diagnostic) -> None:
        if len(self.diagnostics) < MAX_FILE_PROBLEMS:
            self.diagnostics.append(diagnostic)
        else:
            self.hide(diagnostic.line, error=diagnostic.severity == "error")

    def hide(self, line: int, *, error: bool) -> None:
        """Count a problem past the limit, once per line."""
        if line != self.last_hidden:
            self.hidden += 1
            self.last_hidden = line
        self.hidden_errors = self.hidden_errors or error

    def take_problems(self) -> None:
        """Keep the problems the file's reader found (a bad header, a line not JSON)."""
        for problem in self.source.problems:
            self.keep(problem)
        self.source.problems.clear()

    def report(
        self, path: PathKey, message: str, *, severity: str = "error", key: bool = False
    ) -> None:
        if self.row is None or path[:2] != ("shots", self.index):
            self.manifest.report(path, message, severity=severity, key=key)
            return
        where = self.row.where(path[2:], key=key)
        self.keep(
            Diagnostic(
                self.file,
                where.line,
                where.column,
                format_path(path),
                self.row.label(path[2:]) + message,
                "warning" if severity == "warning" else "error",
            )
        )

    def schema_found_any(self) -> bool:
        return bool(self.schema_errors or self.manifest.schema_errors)

    def broken(self, path: PathKey) -> bool:
        if not self.schema_found_any():
            return False  # the common case, asked about every field of every row
        if path[:2] == ("shots", self.index):
            return path in self.schema_errors
        return self.manifest.broken(path)

    def place(self, path: PathKey) -> str:
        index = path[1]
        assert isinstance(index, int)
        if index < self.first_index:
            return f"{self.manifest.file}:{self.manifest.doc.where(path).line}"
        return f"line {self.lines[index - self.first_index]}"

    def finish(self) -> list[Diagnostic]:
        """Everything found in the file, in its order, and a count of what was left out."""
        self.take_problems()
        found = sorted(self.diagnostics, key=lambda d: (d.line, d.column))
        if self.hidden:
            line = self.lines[-1] if self.lines else 1
            message = (
                f"problems on {self.hidden:,} more line(s) of this file are not listed "
                f"(the first {MAX_FILE_PROBLEMS:,} problems are)"
            )
            severity: Severity = "error" if self.hidden_errors else "warning"
            found.append(Diagnostic(self.file, line, 1, "", message, severity))
        return found


def _shots_file(checker: _Checker, value: dict[str, Any]) -> ShotFile | None:
    """The shots file that ``shots_from`` names, if it names one that can be read."""
    written = value.get("shots_from")
    if not isinstance(written, str) or checker.broken(("shots_from",)):
        return None
    kind = kind_of(written)
    if kind is None:
        checker.report(
            ("shots_from",),
            f"shots_from {written!r} must name a .csv, .tsv or .jsonl file; "
            "save a spreadsheet as CSV (UTF-8)",
        )
        return None
    path = Path(os.path.abspath(checker.base_dir / os.path.expanduser(written)))
    if not path.is_file():
        reason = (
            "it is a directory"
            if path.is_dir()
            else "not a regular file"
            if path.exists()
            else "no such file"
        )
        checker.report(("shots_from",), f"cannot read shots file {written}: {reason} ({path})")
        return None
    display = os.path.join(os.path.dirname(checker.file), os.path.expanduser(written))
    return ShotFile(path, display, kind)


def _check_file_shots(
    checker: _Checker,
    source: ShotFile,
    variables: dict[str, str],
    ids: _Ids,
    first_index: int,
    kept: list[Shot] | None,
    progress: Progress | None,
) -> tuple[Counts, list[Diagnostic]]:
    """Check every row of ``source`` as the shots that follow ``first_index`` YAML ones;
    the valid ones are appended to ``kept`` (unless None: then only counted)."""
    defaults = checker.doc.value.get("defaults")
    if not isinstance(defaults, dict):
        defaults = {}
    resolver = _Resolver(checker.base_dir)
    rows = _RowChecker(checker, source, first_index)
    shots = jobs = 0
    try:
        for row in source.rows(progress):
            if row.number % _COLLECT_EVERY == 0:
                # The cycle collector is paused (``without_cycle_collector``); the new
                # objects of the last rows, the only ones that can hold an error's cycles,
                # are looked at now and then so that a file of bad rows stays in bounds.
                gc.collect(0)
            if not rows.start(row):
                continue
            own = {**variables, **row.vars} if row.vars else variables
            shot = _check_shot(
                rows, row.value, defaults, rows.index, own, resolver, ids, checker.doc.value
            )
            if shot is not None:
                shots += 1
                jobs += shot.takes
                if kept is not None:
                    kept.append(shot)
    except OSError as error:
        reason = error.strerror or str(error)
        checker.report(("shots_from",), f"cannot read shots file {source.display}: {reason}")
    if not rows.lines and not has_errors(source.problems + rows.diagnostics):
        checker.report(
            ("shots_from",),
            f"{source.display} holds no shots "
            + ("(a header row, then one row per shot)" if source.kind != "jsonl" else ""),
        )
    return Counts(shots, jobs), rows.finish()


_COLLECT_EVERY = 4096


def _digest(data: bytes, source: ShotFile | None) -> str:
    """The manifest's sha256, over its shots file too: a clip's provenance names both."""
    digest = hashlib.sha256(data)
    if source is not None:
        with source.path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def without_cycle_collector() -> Iterator[None]:
    """Python's cycle collector paused while a manifest loads (and while its plan is made).

    Loading builds millions of objects (values, positions, shots) and no reference cycles:
    the collector would walk them again and again as they pile up and free nothing. For
    100,000 YAML shots that was two thirds of the time. Not around the schema's full
    validator, whose errors of an invalid file do hold cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # What was built is kept (the manifest, its plan) and holds no cycles: frozen, the
        # collector's full passes, each a walk over every object alive, leave it out.
        gc.freeze()
        if enabled:
            gc.enable()


def _check(
    path: str | Path,
    out: Path | None,
    *,
    keep: bool = True,
    progress: Progress | None = None,
    check: ShotCheck | None = None,
) -> tuple[Manifest | None, Counts, list[Diagnostic]]:
    """Check the manifest at ``path``: the manifest if valid, its size, every diagnostic.

    With ``keep`` false the shots are counted but not kept (the manifest has none), so
    that ``validate`` checks a shots file of any length in bounded memory. ``check`` is
    held against every shot as it is built (see ``ShotCheck``).
    """
    display = str(path)
    absolute = Path(os.path.abspath(path))
    data, problems = _read(absolute, display)
    if data is None:
        return None, Counts(), problems
    with without_cycle_collector():
        doc, diagnostics = load_yaml(data, display)
    if doc is None:
        return None, Counts(), diagnostics
    if not isinstance(doc.value, dict):
        if () in doc.refused:
            return None, Counts(), diagnostics  # the refused tag is the whole story
        found = schema.describe_value(doc.value)
        where = doc.where(())
        message = f"a manifest must be a mapping (version, shots, ...), not {found}"
        diagnostics.append(Diagnostic(display, where.line, where.column, "", message))
        return None, Counts(), diagnostics
    # A refused value stands as None; the schema's "must be a string, not empty" about it
    # would only mislead.
    schema_diagnostics = [
        d for d in schema.check(doc, display) if not _under(parse_path(d.path), doc.refused)
    ]
    checker = _Checker(doc=doc, file=display, base_dir=absolute.parent, shot_check=check)
    checker.schema_errors = set(_iter_schema_paths(diagnostics + schema_diagnostics))
    checker.diagnostics = diagnostics + schema_diagnostics
    value: dict[str, Any] = doc.value
    variables = _check_vars(checker, value)
    _check_default_name(checker, value, absolute.stem)
    _check_output_dir(checker, value)
    with without_cycle_collector():
        ids = _Ids()
        shots = _check_shots(checker, value, variables, ids)
        # The manifest's own shots, where a warning can point at the shot (a shots file's
        # rows are compared by neither validate, which keeps no rows, nor here).
        _check_repeats(checker, shots)
        _check_chains(checker, value, shots)
        counts = Counts(len(shots), sum(shot.takes for shot in shots))
        in_file: list[Diagnostic] = []
        source = _shots_file(checker, value)
        if source is not None:
            first_index = len(value["shots"]) if isinstance(value.get("shots"), list) else 0
            kept = shots if keep else None
            from_file, in_file = _check_file_shots(
                checker, source, variables, ids, first_index, kept, progress
            )
            counts = Counts(counts.shots + from_file.shots, counts.jobs + from_file.jobs)
    # The manifest's own problems in its order, then the shots file's in the file's.
    all_found = sorted(checker.diagnostics, key=lambda d: (d.line, d.column)) + in_file
    if has_errors(all_found):
        return None, counts, all_found
    name = value["name"] if isinstance(value.get("name"), str) else absolute.stem
    manifest = Manifest(
        path=absolute,
        display_path=display,
        name=name,
        output_dir=_output_dir(value, absolute.parent, name, out),
        sha256=_digest(data, source) if keep else hashlib.sha256(data).hexdigest(),
        shots=tuple(shots) if keep else (),
        warnings=tuple(all_found),
        pricing=value.get("pricing"),
        shots_file=None if source is None else source.path,
    )
    return manifest, counts, all_found


def check_manifest(path: str | Path) -> tuple[Manifest | None, list[Diagnostic]]:
    """The manifest if it is valid (else None), and every diagnostic, warnings included."""
    manifest, _, diagnostics = _check(path, None)
    return manifest, diagnostics


def validate_manifest(
    path: str | Path, *, progress: Progress | None = None, check: ShotCheck | None = None
) -> tuple[Counts | None, list[Diagnostic]]:
    """What ``validate`` reports: the size of a valid manifest (else None) and every
    diagnostic. Shots are checked as ``check_manifest`` checks them but only counted, so
    that a shots file of a million rows is checked in bounded memory; ``progress`` is
    called as its rows are read."""
    manifest, counts, diagnostics = _check(path, None, keep=False, progress=progress, check=check)
    return (counts if manifest is not None else None), diagnostics


def load_manifest(
    path: str | Path, *, out: Path | None = None, check: ShotCheck | None = None
) -> Manifest:
    """The valid manifest at ``path``; raises ``ManifestInvalid`` with every diagnostic.

    ``out`` overrides ``output_dir`` (relative to the working directory); otherwise
    ``output_dir`` is relative to the manifest's folder, default ``renders/<name>``.
    """
    manifest, _, diagnostics = _check(path, out, check=check)
    if manifest is None:
        raise ManifestInvalid(diagnostics)
    return manifest
