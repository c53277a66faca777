"""Shots kept in a data file: the rows of a CSV or TSV table, or the lines of a JSONL file.

A manifest's ``shots_from`` names such a file. This module reads it one row at a time and
turns each row into what a YAML shot would have been: a plain dict with the same keys and
value types, plus where each of its values is written, so that the manifest's schema and
meaning checks run on it unchanged and locate their problems in the file. Nothing here
judges a shot; problems of the file itself (a bad header, a line that is not JSON, bytes
that are not UTF-8) come back as located ``Diagnostic``s.

- **CSV and TSV** (the ``csv`` module, Excel's dialect): a header row names the columns,
  the shot fields of ``CSV_FIELDS`` and ``vars.NAME``. A cell is stripped of surrounding
  whitespace; an empty one leaves its field unset (the default applies); ``images`` holds
  ``;``-separated sources; ``seconds`` and ``takes`` are read as numbers when they are.
  A BOM and CRLF line ends are handled as spreadsheets write them.
- **JSONL**: one shot object per line, the fields of a YAML shot.

Rows are read one at a time, so a file of a million rows is checked in bounded memory.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from runner.diagnostics import Diagnostic
from runner.schema import did_you_mean
from runner.text import shown
from runner.yamlsrc import Document, PathKey, Position

Kind = Literal["csv", "tsv", "jsonl"]
KINDS: dict[str, Kind] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

#: The shot fields a column may name; ``extra`` is nested, so it is JSONL's (or defaults').
CSV_FIELDS = (
    "id",
    "prompt",
    "mode",
    "images",
    "seconds",
    "takes",
    "aspect_ratio",
    "resolution",
    "model",
)
VARS_PREFIX = "vars."
_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?\Z")
_VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A data URI holds ";base64,": that ";" separates no images.
_IMAGE_SEPARATOR = re.compile(r";(?!base64,)")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
# The decoder's own string scanner, which typeshed does not declare.
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]

#: The longest line read: a shot with five 20 MiB images as data URIs fits.
MAX_LINE_BYTES = 160 * 2**20
#: How many rows pass between two calls of a progress callback.
PROGRESS_EVERY = 4096

Progress = Callable[[int, int], None]
"""Called as ``progress(bytes_read, total_bytes)`` while a file is read."""


def kind_of(path: str) -> Kind | None:
    """The format a ``shots_from`` name announces by its suffix, or None."""
    return KINDS.get(Path(path).suffix.lower())


@dataclass(slots=True)
class Row:
    """One shot of a shots file, as a YAML shot would be, and where its values are written.

    ``number`` counts the file's shots from 0; ``line`` is where the row starts; ``vars``
    holds the row's own ``vars.NAME`` cells (CSV only).
    """

    number: int
    line: int
    value: Any
    vars: dict[str, str]
    _locate: Callable[[PathKey, bool], Position]
    _column: Callable[[PathKey], str | None]

    def where(self, path: PathKey, *, key: bool = False) -> Position:
        """Where the value at ``path`` (inside the shot: ``("images", 1)``) is written."""
        return self._locate(path, key)

    def label(self, path: PathKey) -> str:
        """What a message about ``path`` starts with: ``column "seconds": `` in a table."""
        column = self._column(path)
        return f'column "{column}": ' if column else ""


class RowDocument(Document):
    """A row seen as the manifest's document: ``shots[index].FIELD`` is found in the row.

    The manifest's checks locate what they report through ``Document.where``; the row
    answers for the paths inside its own shot and its line for any other. One document
    shows each row in turn (``show``), so that a row costs no document of its own.
    """

    __slots__ = ("index", "row")

    def __init__(self) -> None:
        super().__init__(None)
        self.row: Row | None = None
        self.index = -1

    def show(self, row: Row, index: int) -> RowDocument:
        """This document, now showing ``row`` as ``shots[index]``."""
        self.value, self.row, self.index = row.value, row, index
        return self

    def where(self, path: PathKey, *, key: bool = False) -> Position:
        if self.row is None:
            return Position(1, 1)
        if len(path) == 2:  # the shot itself: where its row starts (every shot's line)
            return Position(self.row.line, 1)
        if path[:2] == ("shots", self.index):
            return self.row.where(path[2:], key=key)
        return Position(self.row.line, 1)


@dataclass(slots=True)
class ShotFile:
    """A shots file being read: its rows one at a time, and the problems of the file itself.

    ``problems`` fills as ``rows()`` goes; ``size`` is the file's length in bytes.
    """

    path: Path
    display: str
    kind: Kind
    size: int = 0
    problems: list[Diagnostic] = field(default_factory=list)

    def problem(self, line: int, column: int, message: str) -> None:
        self.problems.append(Diagnostic(self.display, line, column, "", message))

    def rows(self, progress: Progress | None = None) -> Iterator[Row]:
        """Every shot of the file in order; raises ``OSError`` if it cannot be opened."""
        with self.path.open("rb") as handle:
            self.size = _size(handle)
            read = self._table(handle) if self.kind in ("csv", "tsv") else self._lines(handle)
            for row in read:
                if progress is not None and row.number % PROGRESS_EVERY == 0:
                    progress(handle.tell(), self.size)
                yield row
            if progress is not None:
                progress(self.size, self.size)

    def _text_lines(self, handle: BinaryIO, record: list[tuple[int, str]]) -> Iterator[str]:
        """Each line decoded, appended to ``record`` with its number; a BOM dropped, bytes
        that are not UTF-8 reported once and shown as U+FFFD so that the rest can still be
        checked. A line longer than ``MAX_LINE_BYTES`` is reported and skipped, never held
        whole."""
        reported = False
        number = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # read past it in bounded chunks
                    raw = handle.readline(2**20)
                self.problem(
                    number, 1, f"this line is longer than {MAX_LINE_BYTES // 2**20} MiB; skipped"
                )
                continue
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                if not reported:
                    column = len(raw[: error.start].decode("utf-8", "replace")) + 1
                    self.problem(
                        number,
                        column,
                        f"not UTF-8 text (byte 0x{raw[error.start]:02x}); save the file as UTF-8",
                    )
                    reported = True
                text = raw.decode("utf-8", "replace")
            record.append((number, text))
            yield text

    def _lines(self, handle: BinaryIO) -> Iterator[Row]:
        number = 0
        record: list[tuple[int, str]] = []
        for text in self._text_lines(handle, record):
            line = record.pop()[0]
            if not text.strip():
                continue
            value = self._json_line(line, text)
            if value is _BAD_LINE:
                continue
            yield Row(
                number,
                line,
                value,
                {},
                _json_locator(text, line),
                _no_column,
            )
            number += 1

    def _json_line(self, line: int, text: str) -> Any:
        try:
            value = _ROW_DECODER.decode(text)
        except json.JSONDecodeError as error:
            self.problem(line, error.colno, f"invalid JSON: {error.msg}")
            return _BAD_LINE
        except ValueError:  # a number of more digits than int() reads
            self.problem(line, 1, "a number too long to read (more than 4,300 digits)")
            return _BAD_LINE
        except RecursionError:
            self.problem(line, 1, "invalid JSON: nested too deeply")
            return _BAD_LINE
        except _TwiceWritten as twice:
            where = _json_locator(text, line)((twice.key,), True)
            self.problem(where.line, where.column, f"key {shown(repr(twice.key))} is written twice")
            return _BAD_LINE
        except _NotJson as constant:
            column = text.find(constant.word) + 1
            self.problem(line, column, f"{constant.word} is not JSON; write a number")
            return _BAD_LINE
        if _SURROGATE_ESCAPE.search(text) and _holds_surrogate(value):
            # Half of a UTF-16 pair alone is no character: it cannot be sent nor written.
            column = _SURROGATE_ESCAPE.search(text).start() + 1  # type: ignore[union-attr]
            self.problem(line, column, "a \\u escape of half a UTF-16 pair alone is not text")
            return _BAD_LINE
        if not isinstance(value, dict):
            found = "a list" if isinstance(value, list) else shown(repr(value), 60)
            self.problem(
                line,
                _JSON_SPACE.match(text).end() + 1,  # type: ignore[union-attr]
                f'each line must be one shot object ({{"id": ..., "prompt": ...}}), not {found}',
            )
            return _BAD_LINE
        return value

    def _table(self, handle: BinaryIO) -> Iterator[Row]:
        delimiter = "," if self.kind == "csv" else "\t"
        record: list[tuple[int, str]] = []

        reader = csv.reader(self._text_lines(handle, record), dialect="excel", delimiter=delimiter)
        header: _Header | None = None
        number = 0
        while True:
            record.clear()
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                line = record[0][0] if record else reader.line_num
                self.problem(line, 1, f"not a readable {self.kind.upper()} row: {error}")
                continue
            if not "".join(cells).strip():
                continue  # a blank line, or a row of empty cells a spreadsheet left
            starts = _CellStarts(record.copy(), delimiter)
            if header is None:
                header = self._header(cells, starts)
                continue
            row = self._table_row(header, cells, starts, number, record[0][0])
            if row is not None:
                yield row
                number += 1

    def _header(self, cells: list[str], starts: _CellStarts) -> _Header:
        header = _Header()
        seen: dict[str, int] = {}
        choices = [*CSV_FIELDS, "vars.NAME"]
        for position, raw in enumerate(cells):
            name = raw.strip()
            where = starts[position]
            header.names.append(name)
            if not name:
                header.unnamed.append(position)
                continue
            if name in seen:
                self.problem(
                    where.line,
                    where.column,
                    f'column "{shown(name)}" is named twice (first as column {seen[name] + 1})',
                )
                continue
            seen[name] = position
            if name in CSV_FIELDS:
                header.fields[position] = name
                header.columns[name] = position
                header.readers.append((position, name, _CONVERTERS.get(name)))
            elif name.startswith(VARS_PREFIX) and _VAR_NAME_RE.match(name[len(VARS_PREFIX) :]):
                header.vars[position] = name[len(VARS_PREFIX) :]
            elif name.startswith(VARS_PREFIX):
                self.problem(
                    where.line,
                    where.column,
                    f'column "{shown(name)}": a var name must be letters, digits and "_", '
                    "not starting with a digit",
                )
            elif name == "extra":
                self.problem(
                    where.line,
                    where.column,
                    'column "extra": extra is a mapping, which a table cell cannot hold; '
                    "set it in the manifest's defaults, or keep the shots as JSONL",
                )
            else:
                self.problem(
                    where.line,
                    where.column,
                    f"unknown column '{shown(name)}' in the header row"
                    f"{did_you_mean(name, choices)} (columns: {', '.join(choices)})",
                )
        if "id" not in header.fields.values():
            first = starts[0]
            self.problem(first.line, first.column, 'the header row has no "id" column')
        return header

    def _table_row(
        self, header: _Header, cells: list[str], starts: _CellStarts, number: int, line: int
    ) -> Row | None:
        if len(cells) > len(header.names):
            extra = starts[len(header.names)]
            self.problem(
                extra.line,
                extra.column,
                f"this row has {len(cells)} cells but the header names {len(header.names)} columns",
            )
        count = len(cells)
        # An empty cell leaves its field unset: its default applies.
        value: dict[str, Any] = {}
        for position, name, convert in header.readers:
            if position < count and (text := cells[position].strip()):
                value[name] = convert(text) if convert else text
        row_vars: dict[str, str] = {}
        for position, var in header.vars.items():
            if position < count and (text := cells[position].strip()):
                row_vars[var] = text
        for position in header.unnamed:
            if position < count and cells[position].strip():
                where = starts[position]
                self.problem(where.line, where.column, "a cell under a column with no name")
        return Row(
            number,
            line,
            value,
            row_vars,
            _table_locator(starts, header.columns, line),
            _table_column,
        )


@dataclass(slots=True)
class _Header:
    """A table's header row: each column's name, and what the known ones set."""

    names: list[str] = field(default_factory=list)
    fields: dict[int, str] = field(default_factory=dict)
    columns: dict[str, int] = field(default_factory=dict)
    vars: dict[int, str] = field(default_factory=dict)
    unnamed: list[int] = field(default_factory=list)
    #: (position, field, its converter or None for the text as it is) of each field's column
    readers: list[tuple[int, str, Callable[[str], Any] | None]] = field(default_factory=list)


def _size(handle: BinaryIO) -> int:
    handle.seek(0, 2)
    size = handle.tell()
    handle.seek(0)
    return size


def _images(text: str) -> list[str]:
    return [part.strip() for part in _IMAGE_SEPARATOR.split(text) if part.strip()]


def _number(text: str) -> Any:
    """A number when the cell reads as one, else its text for the schema to refuse."""
    if _INT_RE.match(text):
        try:
            return int(text)
        except ValueError:  # more digits than int() reads: the schema refuses the text
            return text
    if _FLOAT_RE.match(text):
        return float(text)
    return text


def _prompt(text: str) -> str:
    # A multi-line cell written on Windows: line ends as a YAML prompt would hold them.
    return text.replace("\r\n", "\n")


#: How a cell becomes what the YAML shot would hold; other fields keep the text.
_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "images": _images,
    "seconds": _number,
    "takes": _number,
    "prompt": _prompt,
}


class _CellStarts:
    """Where each cell of a table record starts: ``starts[position]``, the record's start
    for a position past its last cell.

    The ``csv`` module says what the cells hold but not where they are; diagnostics need
    the line and column, and a quoted cell may span lines. Found only when a problem is
    located, so a valid row costs nothing here.
    """

    __slots__ = ("_delimiter", "_found", "_record")

    def __init__(self, record: list[tuple[int, str]], delimiter: str) -> None:
        self._record = record
        self._delimiter = delimiter
        self._found: list[Position] | None = None

    def __getitem__(self, position: int) -> Position:
        if self._found is None:
            self._found = _cell_starts(self._record, self._delimiter)
        if position < len(self._found):
            return self._found[position]
        return Position(self._record[0][0], 1) if self._record else Position(1, 1)


def _cell_starts(record: list[tuple[int, str]], delimiter: str) -> list[Position]:
    """Where each cell of a table record starts, following Excel's quoting."""
    starts: list[Position] = []
    quoted = False
    at_start = True
    for line, text in record:
        for offset, char in enumerate(text):
            if at_start:
                starts.append(Position(line, offset + 1))
                at_start = False
            if char == '"':
                quoted = not quoted  # a doubled quote toggles twice
            elif not quoted and char == delimiter:
                at_start = True
    if at_start and record:  # a last cell left empty after a final delimiter
        line, text = record[-1]
        starts.append(Position(line, len(text.rstrip("\r\n")) + 1))
    return starts


def _table_locator(
    starts: _CellStarts, columns: dict[str, int], line: int
) -> Callable[[PathKey, bool], Position]:
    def locate(path: PathKey, key: bool) -> Position:
        if path and isinstance(path[0], str) and path[0] in columns:
            return starts[columns[path[0]]]
        return Position(line, 1)

    return locate


def _table_column(path: PathKey) -> str | None:
    return path[0] if path and isinstance(path[0], str) else None


def _no_column(path: PathKey) -> str | None:
    return None


def _json_locator(text: str, line: int) -> Callable[[PathKey, bool], Position]:
    def locate(path: PathKey, key: bool) -> Position:
        return Position(line, _json_offset(text, path, key) + 1)

    return locate


def _json_offset(text: str, path: PathKey, key: bool) -> int:
    """Where the value at ``path`` starts in one line of JSON (its key's quote if ``key``),
    or the nearest enclosing value found. The decoder's own scanners walk the text, so this
    agrees with what ``json.loads`` read; it runs only for a line with a problem."""
    pos = _JSON_SPACE.match(text).end()  # type: ignore[union-attr]
    try:
        for depth, part in enumerate(path):
            found = _json_child(text, pos, part)
            if found is None:
                break
            key_at, pos = found
            if key and depth == len(path) - 1:
                return key_at
    except (ValueError, IndexError):
        pass  # a line that does not parse: the nearest place found stands
    return pos


def _json_child(text: str, pos: int, part: str | int) -> tuple[int, int] | None:
    """(key offset, value offset) of ``part`` in the object or array starting at ``pos``."""
    opener = text[pos]
    if (opener, isinstance(part, int)) not in (("{", False), ("[", True)):
        return None
    pos = _JSON_SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
    index = 0
    while text[pos] not in "}]":
        key_at = pos
        if opener == "{":
            name, pos = _scanstring(text, pos + 1)
            pos = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]
            pos = _JSON_SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
            if name == part:
                return key_at, pos
        elif index == part:
            return key_at, pos
        _, pos = _DECODER.raw_decode(text, pos)
        pos = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if text[pos] == ",":
            pos = _JSON_SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
        index += 1
    return None


class _TwiceWritten(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NotJson(Exception):
    def __init__(self, word: str) -> None:
        super().__init__(word)
        self.word = word


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: a YAML shot cannot write one twice either."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _TwiceWritten(key)
            seen.add(key)
    return value


def _no_constant(word: str) -> Any:
    """``NaN`` and ``Infinity``, which Python's decoder takes but JSON does not have."""
    raise _NotJson(word)


_BAD_LINE = object()
# A \u escape of a UTF-16 surrogate (a valid pair decodes to one character, checked after).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _holds_surrogate(value: Any) -> bool:
    """Whether a decoded JSON value holds a surrogate code point (in a key or a string)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= char <= "\udfff" for char in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# One decoder for every line: json.loads with hooks would build a new one per call.
_ROW_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)
