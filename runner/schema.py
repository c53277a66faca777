"""The manifest's JSON Schema: finding it, checking a document, and saying what is wrong.

``schemas/manifest.schema.json`` is the single source of truth for the manifest's shape;
the wheel carries a copy at ``runner/schemas/``. A valid document is confirmed by the
compiled validator (jsonschema-rs) when it is installed, since a 10,000-shot manifest must
validate in well under a second; only an invalid one pays for the pure-Python validator,
whose errors carry what a good message needs.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.diagnostics import Diagnostic
from runner.text import shorten
from runner.yamlsrc import Document, PathKey, format_path

if TYPE_CHECKING:
    import jsonschema  # type: ignore[import-untyped]

SCHEMA_NAME = "manifest.schema.json"

MAX_ID_LENGTH = 64
_ID_CHARS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ID_RULE = (
    "must start with a letter or digit and hold only letters, digits, '.', '_' and '-' "
    f"(at most {MAX_ID_LENGTH} characters)"
)
_RULES = {
    "id": f"a shot id {_ID_RULE}",
    "name": f"name {_ID_RULE}",
    "seconds": "seconds must be a whole number from 1 to 99999",
    "takes": "takes must be a whole number from 1 to 20",
    "aspect_ratio": 'aspect_ratio must be W:H in whole numbers, like "16:9"',
    "version": "this shotrunner reads manifest version 1 (version: 1)",
    "frame": "frame must be first, last, or seconds from the start of the clip (like 2.5)",
    "take": "take must be a whole number from 1 to 20",
    "shot": "shot must be the id of another shot of the manifest",
}
_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "null": "empty",
}
#: Shorter words than this get no one-edit suggestion: one edit changes too much of them.
_MIN_EDIT_LENGTH = 3
#: What may stand for a missing required key.
_OR: dict[PathKey, str] = {("shots",): " (or shots_from, a file of shots)"}
_WHERE = {
    (): "at the top level",
    ("defaults",): "in defaults",
    ("shots", 0): "in a shot",
}


def schema_path() -> Path:
    """The schema file: the packaged copy when installed, else the source tree's."""
    packaged = resources.files("runner") / "schemas" / SCHEMA_NAME
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "schemas" / SCHEMA_NAME


@functools.cache
def load_schema() -> dict[str, Any]:
    with schema_path().open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@functools.cache
def _fast_validator() -> Any:
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.validator_for(load_schema())


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema

    validator = jsonschema.validators.extend(
        jsonschema.Draft202012Validator, {"pattern": _ecma_pattern}
    )
    return validator(load_schema())


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    """``pattern`` as JSON Schema means it (ECMA-262), where ``$`` is the end of the string.

    Python's ``$`` also matches before a final newline, so an id ending in a newline would pass
    here while jsonschema-rs and editors refuse it: the two validators must agree.
    """
    import jsonschema

    if validator.is_type(instance, "string") and not _python_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.cache
def _python_regex(pattern: str) -> re.Pattern[str]:
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def check(doc: Document, file: str) -> list[Diagnostic]:
    """Every way ``doc`` breaks the schema, as located diagnostics in document order."""
    fast = _fast_validator()
    if fast is not None:
        try:
            if fast.is_valid(doc.value):
                return []
        except (ValueError, TypeError, OverflowError):
            pass  # values JSON cannot hold (NaN, huge ints): let the full validator say why
    found: list[Diagnostic] = []
    for error in _validator().iter_errors(doc.value):
        found.extend(_describe(error, doc, file))
    found.sort(key=lambda d: (d.line, d.column))
    return found


def check_shot(value: Any, index: int, doc: Document, file: str) -> list[Diagnostic]:
    """Every way one shot, ``shots[index]``, breaks the schema: for a shot read from a shots
    file, checked as it is read rather than as part of the whole document."""
    if shot_is_valid(value):
        return []
    found: list[Diagnostic] = []
    for error in _shot_validator().iter_errors(value):
        error.path.extendleft((index, "shots"))  # paths in manifest terms, as for a YAML shot
        found.extend(_describe(error, doc, file))
    found.sort(key=lambda d: (d.line, d.column))
    return found


def shot_is_valid(value: Any) -> bool:
    """Whether one shot meets the schema, by the compiled validator when there is one."""
    fast = _fast_shot_validator()
    if fast is not None:
        try:
            return bool(fast.is_valid(value))
        except (ValueError, TypeError, OverflowError):
            pass  # values JSON cannot hold: the full validator judges them
    return bool(_shot_validator().is_valid(value))


def _shot_schema() -> dict[str, Any]:
    whole = load_schema()
    return {"$schema": whole["$schema"], "$defs": whole["$defs"], "$ref": "#/$defs/shot"}


@functools.cache
def _fast_shot_validator() -> Any:
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.validator_for(_shot_schema())


@functools.cache
def _shot_validator() -> jsonschema.Draft202012Validator:
    return type(_validator())(_shot_schema())


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``; did you mean 'prompt'?`` when a choice is close to ``word``, else nothing."""
    close = closest(word, choices) if len(word) <= _SHOWN_VALUE else None
    return f"; did you mean {close!r}?" if close is not None else ""


def closest(word: str, choices: Sequence[str]) -> str | None:
    """The choice that ``word`` most likely misspells, or None when none is close.

    A choice one edit away (Damerau-Levenshtein distance 1) comes first, two neighbours
    swapped before any other edit: difflib's ratio alone offers ``mode`` for ``modle``,
    which is ``model`` with two letters swapped. Otherwise difflib's closest match.
    """
    ranked = [
        (rank, choice) for choice in choices if (rank := _edit_rank(word, choice)) is not None
    ]
    if ranked:
        best = min(rank for rank, _ in ranked)
        tied = [choice for rank, choice in ranked if rank == best]
        if len(tied) == 1:
            return tied[0]
        close = difflib.get_close_matches(word, tied, n=1, cutoff=0.0)
        return close[0]
    matches = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _edit_rank(word: str, choice: str) -> int | None:
    """0 when ``choice`` is ``word`` with two neighbours swapped, 1 for one letter changed,
    added or dropped, None for anything else (the same word included).

    Words under 3 letters are left to difflib: one edit of ``8k`` is ``4k``, no likely slip.
    """
    if min(len(word), len(choice)) < _MIN_EDIT_LENGTH:
        return None
    if len(word) == len(choice):
        diffs = [i for i, (a, b) in enumerate(zip(word, choice, strict=True)) if a != b]
        if len(diffs) == 1:
            return 1
        if len(diffs) == 2:
            i, j = diffs
            if j == i + 1 and word[i] == choice[j] and word[j] == choice[i]:
                return 0
        return None
    short, long = sorted((word, choice), key=len)
    if len(long) - len(short) != 1:
        return None
    first = next(
        (i for i, (a, b) in enumerate(zip(short, long, strict=False)) if a != b), len(short)
    )
    return 1 if short[first:] == long[first + 1 :] else None


def describe_value(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return shorten(repr(value), _SHOWN_VALUE)


#: The longest value quoted in a message.
_SHOWN_VALUE = 200


def _place(path: PathKey) -> str:
    if len(path) == 2 and path[0] == "shots":
        return "in a shot"
    return _WHERE.get(path, f"in {format_path(path)}")


def _describe(error: jsonschema.ValidationError, doc: Document, file: str) -> list[Diagnostic]:
    path: PathKey = tuple(error.absolute_path)
    kind = str(error.validator)
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    field = next((p for p in reversed(path) if isinstance(p, str)), "")

    def at(where: PathKey, message: str, *, key: bool = False) -> Diagnostic:
        pos = doc.where(where, key=key)
        return Diagnostic(file, pos.line, pos.column, format_path(where), message)

    if kind == "additionalProperties" and isinstance(instance, dict):
        known = sorted(schema.get("properties", {}))
        unknown = [k for k in instance if k not in known]
        return [
            at(
                (*path, k),
                f"unknown key {k!r} {_place(path)}{did_you_mean(str(k), known)}",
                key=True,
            )
            for k in unknown
        ]
    if kind == "required" and isinstance(instance, dict):
        missing = [k for k in schema.get("required", []) if k not in instance]
        # The path is the missing key's own, placed where its mapping starts: a reader sees
        # which key to add, and where.
        return [
            at((*path, k), f"missing required key {k!r} {_place(path)}{_OR.get((*path, k), '')}")
            for k in missing
        ]
    if "propertyNames" in error.schema_path:
        return [
            at(
                (*path, str(instance)),
                f"var name {instance!r} must be letters, digits and '_', not starting with a digit",
                key=True,
            )
        ]
    if kind == "const" and field == "version":
        return [
            at(path, f"unsupported manifest version {describe_value(instance)}: {_RULES[field]}")
        ]
    if kind == "minItems" and field == "shots":
        return [at(path, "shots is empty: list at least one shot")]
    if kind == "maxItems" and field == "images":
        return [at(path, f"{len(instance)} images given; a shot takes at most 5")]
    if kind == "pattern" and field == "id" and isinstance(instance, str):
        if "/" in instance or "\\" in instance:
            reason = "may not contain a slash: it names a folder inside output_dir"
        elif instance.startswith("."):
            reason = "may not start with a dot: it names a folder inside output_dir"
        elif len(instance) > MAX_ID_LENGTH and _ID_CHARS.fullmatch(instance):
            reason = f"is {len(instance)} characters long; the limit is {MAX_ID_LENGTH}"
        else:
            reason = _ID_RULE
        return [at(path, f"shot id {describe_value(instance)} {reason}")]
    if kind == "type" and field == "id" and path[-1:] == ("id",):
        if instance is None:
            return [at(path, "a shot id must not be empty")]
        return [at(path, f"a shot id must be text, not {describe_value(instance)}; quote it")]
    if field in _RULES and kind in {"pattern", "anyOf", "type", "minimum", "maximum", "const"}:
        return [at(path, f"{_RULES[field]}, not {describe_value(instance)}")]
    if kind == "enum":
        options = [str(o) for o in schema.get("enum", [])]
        shown = describe_value(instance)
        hint = did_you_mean(str(instance), options) if isinstance(instance, str) else ""
        return [at(path, f"{field} must be one of {', '.join(options)}, not {shown}{hint}")]
    if kind == "type":
        wanted = schema.get("type")
        names = [wanted] if isinstance(wanted, str) else list(wanted or [])
        expected = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        what = format_path(path) or "the manifest"
        if isinstance(path[-1:], tuple) and path and isinstance(path[-1], int):
            what = f"each item of {format_path(path[:-1])}"
        hint = f"; write [{instance}]" if names == ["array"] and isinstance(instance, str) else ""
        return [at(path, f"{what} must be {expected}, not {describe_value(instance)}{hint}")]
    if kind == "minLength":
        what = "an image" if field == "images" else field
        return [at(path, f"{what} must not be empty")]
    return [at(path, error.message)]
