"""Diagnostics: one problem (or warning) found in an input file, with its location."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from runner.text import shorten

Severity = Literal["error", "warning"]

#: What ``(at PATH)`` says of a problem with the whole document rather than one value.
DOCUMENT = "<document>"
#: The longest message shown: one that quotes a value (of megabytes, in a hostile file)
#: is cut, with a note of its length.
MAX_MESSAGE = 4000


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A located problem. ``line`` and ``column`` count from 1; ``path`` is in manifest
    terms with indexes from 0 (``shots[3].images[1]``), empty for the whole document
    (an empty file, invalid YAML, a file that cannot be read).

    A missing key is reported at the path the key would have (``shots``, ``shots[2].id``),
    located where its mapping starts."""

    file: str
    line: int
    column: int
    path: str
    message: str
    severity: Severity = "error"

    def format(self) -> str:
        """``FILE:LINE:COL: error: MESSAGE (at PATH)``, the format docs/manifest.md describes.

        A problem of the whole document says ``(at <document>)``, so that every line has
        the same shape for a reader or a script; its JSON keeps ``"path": ""``.
        """
        where = self.path or DOCUMENT
        message = shorten(self.message, MAX_MESSAGE)
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {message} (at {where})"

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": shorten(self.message, MAX_MESSAGE),
        }


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)
