"""YAML with a position for every value: the manifest's source layer.

PyYAML's parser (libyaml's when available) reads the events; the values and their
positions are built here straight from them, so that the rules are ours, not YAML 1.1's:

- plain scalars follow the YAML 1.2 core schema, narrowed: only ``true``/``false`` are
  booleans, ``null``/``~``/empty are null, integers are decimal (``08`` is 8; ``0o``/``0x``
  stay strings), and there are no sexagesimal numbers (``16:9`` is the string "16:9");
- a key written twice in one mapping is an error;
- anchors, aliases and ``<<`` merges work, but what aliases add is bounded so that an
  alias bomb is refused before it is built;
- only the standard tags (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``,
  ``!!map``, ``!!seq``, ``!!merge``) are accepted: nothing constructs objects.

A document is built first with the positions of its collections only: a manifest without
problems needs no other (a shot's line is its mapping's), and a million positions of words
nobody points at cost a tenth of the load and a third of its memory at 100,000 shots. A
problem found while building starts the build again with every position; one found later
(a check of the manifest) makes ``Document.where`` build them then.

Every problem comes back as a located ``Diagnostic``, never as an exception. The parse
errors of the usual mistakes (``: `` in a plain value, a tab in the indentation, a quote
left open) are explained in the user's words, at the place to fix (``_explain``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from runner.diagnostics import Diagnostic
from runner.text import shown

try:
    _BaseLoader: type[Any] = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

PathKey = tuple[str | int, ...]

#: Nodes a document may expand to through aliases and merges; a bigger one is an alias bomb.
MAX_EXPANDED_NODES = 1_000_000

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE = _TAG + "map", _TAG + "seq", _TAG + "merge"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL}

_NON_STRING_STARTS = frozenset("0123456789+-.~nNtTfF")
_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INF_RE = re.compile(r"[-+]?\.(inf|Inf|INF)\Z")
_NAN_RE = re.compile(r"\.(nan|NaN|NAN)\Z")


@dataclass(slots=True)
class Position:
    """Where a value starts (1-based). Not frozen: a frozen dataclass is twice as slow to
    make, and a manifest of 100,000 shots makes a million of these."""

    line: int
    column: int


_AliasEvent, _ScalarEvent = yaml.AliasEvent, yaml.ScalarEvent
_MappingStartEvent, _MappingEndEvent = yaml.MappingStartEvent, yaml.MappingEndEvent
_SequenceEndEvent = yaml.SequenceEndEvent


@dataclass(slots=True)
class Document:
    """A loaded YAML document: plain Python values plus where each came from.

    ``positions`` maps a path (``("shots", 3, "images", 1)``) to where its value starts;
    ``key_positions`` maps a mapping entry's path to where its key is written;
    ``refused`` holds the paths whose value was refused (a forbidden tag, a tagged scalar
    that is not of its tag's type): they hold None, and the problem is already reported.

    A document loaded without problems has the positions of its collections only (most of
    its values are never pointed at); ``rebuild`` then makes the same document with every
    position, which ``where`` and ``written`` ask for the first time they need one.
    """

    value: Any
    positions: dict[PathKey, Position] = field(default_factory=dict)
    key_positions: dict[PathKey, Position] = field(default_factory=dict)
    refused: set[PathKey] = field(default_factory=set)
    #: Builds this document with every position; None once they are all here.
    rebuild: Callable[[], Document] | None = None

    def where(self, path: PathKey, *, key: bool = False) -> Position:
        """The position of ``path`` (its key if asked and known), else of its nearest parent."""
        if self.rebuild is not None and (key or path not in self.positions):
            self.every_position()
        if key and path in self.key_positions:
            return self.key_positions[path]
        while path:
            found = self.positions.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return self.positions.get((), Position(1, 1))

    def written(self, path: PathKey) -> bool:
        """Whether the text gives a value at ``path`` (a key merged in with ``<<``
        included; a default that the reader's code applies is not)."""
        self.every_position()
        return path in self.positions

    def every_position(self) -> None:
        """Fill in the positions of every value (``rebuild``), if they are not all here."""
        if self.rebuild is not None:
            full = self.rebuild()
            self.positions, self.key_positions, self.rebuild = (
                full.positions,
                full.key_positions,
                None,
            )


def format_path(path: Iterable[str | int]) -> str:
    """``("shots", 3, "images", 1)`` -> ``shots[3].images[1]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def resolve_plain(text: str) -> Any:
    """A plain scalar's value under the narrowed YAML 1.2 core schema described above."""
    if text and text[0] not in _NON_STRING_STARTS:
        return text  # most scalars are words: skip the checks below
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT_RE.match(text):
        try:
            return int(text, 10)
        except ValueError:  # more digits than int() reads (sys.get_int_max_str_digits)
            return text  # kept as written: the schema refuses it where a number belongs
    if _FLOAT_RE.match(text):
        return float(text)
    if _INF_RE.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN_RE.match(text):
        return math.nan
    return text


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


@dataclass(slots=True)
class _Merged:
    """Where a key merged in by ``<<`` was written, and its refused values (if any)."""

    key_at: Position
    value_at: Position
    refused: list[PathKey]


@dataclass(slots=True)
class _Anchored:
    """An anchored value as it was built, for its aliases: the value, its size in values,
    its positions (paths relative to it), and its text if it is a scalar (as a key)."""

    value: Any
    size: int
    doc: Document
    at: Position
    text: str | None


class _NeedsPositions(Exception):
    """A document built with its collections' positions only needs the others (to report
    a problem found while building it): it is built again with all of them."""


#: The position given to keys while only the collections' positions are kept.
_UNPLACED = Position(0, 0)


class _Refused(Exception):
    """The whole document is refused (an alias bomb, a recursive alias): where, and why."""

    def __init__(self, at: Position, path: PathKey, message: str) -> None:
        super().__init__(message)
        self.at, self.path, self.message = at, path, message


_RECURSIVE = "an alias refers to a node that contains it (a recursive alias)"


class _Builder:
    """One YAML document's values and positions, built straight from libyaml's events.

    No node tree is composed first: 100,000 shots composed as nodes took more memory than
    their values and positions together. An anchored value is built in a document of its
    own (``base`` is where it is written) and copied into place; each alias copies it again,
    positions included. The values aliases add are counted as they are copied: past
    ``MAX_EXPANDED_NODES``, or past the values and keys the text writes itself if that is
    more (a long storyboard whose every shot merges one anchored mapping), the document is
    an alias bomb and is refused before more is built.
    """

    def __init__(self, text: str, file: str, *, every_position: bool = True) -> None:
        self.parser = _BaseLoader(text)
        self.file = file
        #: False: only collections get a position (``Document.rebuild`` makes the rest).
        self.every_position = every_position
        self.doc = Document(None)
        self.base: PathKey = ()
        self.diagnostics: list[Diagnostic] = []
        #: Every anchor seen: its value once built, None while it is being built.
        self.anchors: dict[str, _Anchored | None] = {}
        #: Where each anchor being built is written (a recursive alias is refused there).
        self.open: dict[str, tuple[Position, PathKey]] = {}
        self.built = 0
        self.aliased = 0

    def document(self) -> Document | None:
        """The single document (None for an empty stream)."""
        parser = self.parser
        try:
            parser.get_event()  # stream start
            if isinstance(parser.peek_event(), yaml.StreamEndEvent):
                return None
            start = parser.get_event().start_mark  # document start
            self.doc.value, _ = self.value(parser.get_event(), ())
            parser.get_event()  # document end
            if not isinstance(parser.peek_event(), yaml.StreamEndEvent):
                raise yaml.composer.ComposerError(
                    "expected a single document in the stream",
                    start,
                    "but found another document",
                    parser.get_event().start_mark,
                )
            return self.doc
        finally:
            parser.dispose()

    def error(self, at: Position, path: PathKey, message: str) -> None:
        if not self.every_position:
            raise _NeedsPositions
        self.diagnostics.append(
            Diagnostic(self.file, at.line, at.column, format_path((*self.base, *path)), message)
        )

    def refuse(self, at: Position, path: PathKey, message: str) -> None:
        """Report the value at ``path`` and record that it stands as None."""
        self.error(at, path, message)
        self.doc.refused.add(path)

    def value(self, event: Any, path: PathKey) -> tuple[Any, int]:
        """The value that starts with ``event``, built at ``path``, and its size in values
        (what aliases in it add included)."""
        kind = type(event)
        if kind is _AliasEvent:
            return self.alias(event, path)
        if kind is _ScalarEvent and event.tag is None and event.anchor is None:
            # Most values: a plain word.
            self.built += 1
            if self.every_position:
                mark = event.start_mark
                self.doc.positions[path] = Position(mark.line + 1, mark.column + 1)
            return (resolve_plain(event.value) if event.implicit[0] else event.value), 1
        at = Position(event.start_mark.line + 1, event.start_mark.column + 1)
        if event.anchor is not None:
            return self.anchored(event, at, path)
        return self.node(event, at, path)

    def node(self, event: Any, at: Position, path: PathKey) -> tuple[Any, int]:
        self.built += 1
        self.doc.positions[path] = at
        kind = type(event)
        if kind is _ScalarEvent:
            return self.scalar(event, at, path), 1
        if kind is _MappingStartEvent:
            value, size = self.mapping(at, path)
            if event.tag not in (None, "!", _MAP):
                self.refuse(at, path, f"YAML tag {_short_tag(event.tag)} is not allowed")
                return None, size
            return value, size
        items: list[Any] = []
        size = 1
        while type(item := self.parser.get_event()) is not _SequenceEndEvent:
            built, item_size = self.value(item, (*path, len(items)))
            items.append(built)
            size += item_size
            if self.aliased > MAX_EXPANDED_NODES:
                self.refuse_if_over(at, path)
        if event.tag not in (None, "!", _SEQ):
            self.refuse(at, path, f"YAML tag {_short_tag(event.tag)} is not allowed")
            return None, size
        return items, size

    def budget(self) -> int:
        """How many values aliases may add to this document."""
        return max(MAX_EXPANDED_NODES, self.built)

    def refuse_if_over(self, at: Position, path: PathKey) -> None:
        """Refuse the document at the collection that aliases have made too big, if they
        have. (Its callers first compare with ``MAX_EXPANDED_NODES`` inline: one comparison
        per value built.)"""
        budget = self.budget()
        if self.aliased > budget:
            raise _Refused(
                at,
                (*self.base, *path),
                f"aliases expand this document past {budget:,} values (an alias bomb?); "
                "refusing to build it",
            )

    @contextlib.contextmanager
    def aside(self, path: PathKey) -> Iterator[Document]:
        """Build into a document of its own whose root is written at ``path``."""
        outer, outer_base = self.doc, self.base
        self.doc, self.base = Document(None), (*outer_base, *path)
        try:
            yield self.doc
        finally:
            self.doc, self.base = outer, outer_base

    def anchored(self, event: Any, at: Position, path: PathKey) -> tuple[Any, int]:
        """A value with an anchor: built in a document of its own, kept for its aliases,
        and copied into place."""
        name = self.claim(event)
        self.open[name] = (at, (*self.base, *path))
        with self.aside(path) as own:
            value, size = self.node(event, at, ())
        del self.open[name]
        text = event.value if type(event) is _ScalarEvent else None
        self.anchors[name] = _Anchored(value, size, own, at, text)
        self.place(own, path)
        return value, size

    def claim(self, event: Any) -> str:
        """The event's anchor, taken (a second one of the same name is refused)."""
        name: str = event.anchor
        if name in self.anchors:
            found = self.anchors[name]
            first = found.at if found is not None else self.open[name][0]
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {name!r}; first occurrence",
                yaml.Mark("<unicode string>", 0, first.line - 1, first.column - 1, None, 0),
                "second occurrence",
                event.start_mark,
            )
        self.anchors[name] = None
        return name

    def lookup(self, event: Any) -> _Anchored:
        """What an alias names; the document is refused if it is still being built."""
        name = event.anchor
        if name not in self.anchors:
            raise yaml.composer.ComposerError(
                None, None, f"found undefined alias {name!r}", event.start_mark
            )
        anchored = self.anchors[name]
        if anchored is None:
            at, where = self.open[name]
            raise _Refused(at, where, _RECURSIVE)
        return anchored

    def alias(self, event: Any, path: PathKey) -> tuple[Any, int]:
        """A copy of the anchored value, with its positions, at ``path``."""
        anchored = self.lookup(event)
        self.aliased += anchored.size
        if self.aliased > self.budget():
            return None, anchored.size  # refused by the collection it is in, not copied
        self.place(anchored.doc, path)
        return copy.deepcopy(anchored.value), anchored.size

    def place(self, own: Document, path: PathKey) -> None:
        """Copy the positions (and refusals) of a value built on its own to ``path``."""
        doc = self.doc
        for sub, where in own.positions.items():
            doc.positions[(*path, *sub)] = where
        for sub, where in own.key_positions.items():
            doc.key_positions[(*path, *sub)] = where
        doc.refused.update((*path, *sub) for sub in own.refused)

    def scalar(self, event: Any, at: Position, path: PathKey, *, key: bool = False) -> Any:
        """The scalar's value; a refused one is None (a refused key leaves its mapping be)."""
        tag, text = event.tag, event.value
        if tag is None or tag == "!":
            return resolve_plain(text) if event.implicit[0] else text
        if tag == _STR:
            return text
        report = self.error if key else self.refuse
        if tag not in _SCALAR_TAGS:
            report(at, path, f"YAML tag {_short_tag(tag)} is not allowed")
            return None
        value = resolve_plain(text)
        wanted: dict[str, tuple[type, ...]] = {
            _INT: (int,),
            _FLOAT: (int, float),
            _BOOL: (bool,),
            _NULL: (type(None),),
        }
        if (isinstance(value, bool) and tag != _BOOL) or not isinstance(value, wanted[tag]):
            report(at, path, f"{shown(repr(text))} is not a valid {_short_tag(tag)}")
            return None
        return float(value) if tag == _FLOAT and isinstance(value, int) else value

    def key(self, event: Any, path: PathKey) -> tuple[str | None, Position, bool]:
        """A mapping key: its text (None if it is not a scalar, reported), where it is
        written, and whether it is ``<<`` (a merge)."""
        kind = type(event)
        if kind is _ScalarEvent and event.tag is None and event.anchor is None:
            at = _UNPLACED
            if self.every_position:
                at = Position(event.start_mark.line + 1, event.start_mark.column + 1)
            # An untagged key is its text (``1: x`` is the key "1"); a plain ``<<`` merges.
            return event.value, at, event.value == "<<" and event.implicit[0]
        if kind is _AliasEvent:
            anchored = self.lookup(event)
            if anchored.text is None:
                self.error(
                    anchored.at, path, "a mapping key must be a plain value, not a collection"
                )
                return None, anchored.at, False
            value = anchored.value
            return (value if isinstance(value, str) else anchored.text), anchored.at, False
        at = _mark_position(event.start_mark)
        if kind is not _ScalarEvent:
            self.discard(event)
            self.error(at, path, "a mapping key must be a plain value, not a collection")
            return None, at, False
        if event.tag == _MERGE:
            return "<<", at, True
        value = self.scalar(event, at, path, key=True)
        if event.anchor is not None:  # an anchored key: the alias may be a key elsewhere
            own = Document(value, positions={(): at})
            self.anchors[self.claim(event)] = _Anchored(value, 1, own, at, event.value)
        return (value if isinstance(value, str) else event.value), at, False

    def discard(self, event: Any) -> None:
        """Build the value that starts with ``event`` aside, and drop it."""
        reported = len(self.diagnostics)
        try:
            with self.aside(()):
                self.value(event, ())
        finally:
            del self.diagnostics[reported:]

    def mapping(self, at: Position, path: PathKey) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        merged_positions: dict[str, _Merged] = {}
        size = 1
        parser = self.parser
        while type(event := parser.get_event()) is not _MappingEndEvent:
            self.built += 1  # a key is written text too
            key, key_at, merge = self.key(event, path)
            if merge:
                size += self.merge(path, merged, merged_positions)
                if self.aliased > MAX_EXPANDED_NODES:
                    self.refuse_if_over(at, path)
                continue
            if key is None:
                self.discard(parser.get_event())
                continue
            # Interned: the same few keys are written once per shot, 100,000 times over.
            key = sys.intern(key)
            child = (*path, key)
            if key in result:
                if not self.every_position:
                    raise _NeedsPositions
                first = self.doc.key_positions[child]
                self.error(
                    key_at,
                    child,
                    f"key {key!r} is written twice in this mapping (first at line {first.line})",
                )
                self.discard(parser.get_event())
                continue
            if self.every_position:
                self.doc.key_positions[child] = key_at
            result[key], item_size = self.value(parser.get_event(), child)
            size += item_size
            if self.aliased > MAX_EXPANDED_NODES:
                self.refuse_if_over(at, path)
        for key, value in merged.items():
            if key not in result:
                result[key] = value
                found = merged_positions[key]
                self.doc.refused.update((*path, key, *sub) for sub in found.refused)
                if self.every_position:
                    self.doc.key_positions[(*path, key)] = found.key_at
                    self.doc.positions.setdefault((*path, key), found.value_at)
        return result, size

    def merge(
        self, path: PathKey, merged: dict[str, Any], merged_positions: dict[str, _Merged]
    ) -> int:
        """``<<: *a`` or ``<<: [*a, *b]``: earlier sources win, the mapping's own keys win.
        Returns the size of what was merged in."""
        with self.aside(path) as own:
            value, size = self.value(self.parser.get_event(), ())
        sources: list[tuple[Any, PathKey]] = (
            [(item, (index,)) for index, item in enumerate(value)]
            if isinstance(value, list)
            else [(value, ())]
        )
        for source, prefix in sources:
            if not isinstance(source, dict):
                where = own.positions.get(prefix, Position(1, 1))
                self.error(where, path, "a << merge takes a mapping or a list of mappings")
                continue
            start = own.positions.get(prefix, Position(1, 1))
            for key, item in source.items():
                if key in merged:
                    continue
                merged[key] = item
                inside = (*prefix, key)
                merged_positions[key] = _Merged(
                    own.key_positions.get(inside, start),
                    own.positions.get(inside, start),
                    [sub[len(inside) :] for sub in own.refused if sub[: len(inside)] == inside],
                )
                for sub, where in own.positions.items():
                    if sub[: len(inside)] == inside:
                        self.doc.positions.setdefault((*path, *sub[len(prefix) :]), where)
                for sub, where in own.key_positions.items():
                    if sub[: len(inside)] == inside:
                        self.doc.key_positions.setdefault((*path, *sub[len(prefix) :]), where)
        return size


def parse_path(text: str) -> PathKey:
    """``shots[3].images[1]`` -> ``("shots", 3, "images", 1)``."""
    parts: list[str | int] = []
    for piece in re.findall(r"\[(\d+)\]|([^.\[\]]+)", text):
        parts.append(int(piece[0]) if piece[0] else piece[1])
    return tuple(parts)


def _reader_position(data: bytes, char_index: int) -> Position:
    text = data.decode("utf-8", errors="replace")[:char_index]
    line = text.count("\n") + 1
    return Position(line, char_index - (text.rfind("\n") + 1) + 1)


def _mark_position(mark: yaml.Mark | None) -> Position:
    return Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)


def _char_at(lines: list[str], mark: yaml.Mark | None) -> str:
    """The character a parser mark points at ("" past the end of its line or the text)."""
    if mark is None or mark.line >= len(lines):
        return ""
    line = lines[mark.line]
    return line[mark.column] if mark.column < len(line) else ""


def _quoted_form(line: str, colon: int) -> str | None:
    """``prompt: Scene: a cat`` with its value quoted, if the line is ``key: value``.

    ``colon`` is the column of the ``:`` the parser stopped at; the key is what comes before
    the line's first ``": "``, which must lie before it.
    """
    body = line.lstrip(" ")
    indent = line[: len(line) - len(body)]
    if body.startswith("- "):
        indent, body = indent + "- ", body[2:]
    if body.startswith("{"):
        return None  # a flow mapping: its entries are separated by commas, not lines
    first = body.find(": ")
    if first < 0 or len(indent) + first >= colon:
        return None
    key, value = body[:first], body[first + 2 :].split(" #")[0].strip()
    if not value or value[0] in "\"'{[|>":
        return None
    if '"' in value and "'" not in value:
        return f"{key.strip()}: '{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{key.strip()}: "{escaped}"'


def _quoted_before(text: str, mark: yaml.Mark | None) -> yaml.ScalarToken | None:
    """The quoted scalar that ends right where the parser stopped, if one does.

    Text right after a closing quote is what a quote closed too early leaves behind: a
    quote never closed on its own line (closed by the next quote, lines later), or an
    apostrophe inside ``'...'``.
    """
    if mark is None:
        return None
    last = None
    try:
        for token in yaml.scan(text, Loader=_BaseLoader):
            if (token.start_mark.line, token.start_mark.column) >= (mark.line, mark.column):
                break
            last = token
    except yaml.YAMLError:
        pass
    if not isinstance(last, yaml.ScalarToken) or last.style not in ("'", '"'):
        return None
    end = last.end_mark
    return last if (end.line, end.column) == (mark.line, mark.column) else None


def _explain(error: yaml.MarkedYAMLError, text: str) -> tuple[Position, str]:
    """Where a parse error is and what it says, in the user's words for the usual mistakes.

    Three mistakes are common enough to be named: ``": "`` inside a plain value (``prompt:
    Scene: a cat``), a tab in the indentation, and a quote that is never closed (which the
    parser notices only at the end of the file, so the opening quote is shown instead).
    """
    lines = text.split("\n")
    problem_mark, context_mark = error.problem_mark, error.context_mark
    problem = error.problem or ""
    if problem.startswith("found unexpected end of stream") and (error.context or "").startswith(
        "while scanning a quoted scalar"
    ):
        quote = _char_at(lines, context_mark) or '"'
        return _mark_position(context_mark), (
            f"invalid YAML: this {quote} is never closed (the quoted value runs to the end of "
            f"the file); add the closing {quote}"
        )
    if _char_at(lines, problem_mark) == "\t" or "tab character" in problem:
        return _mark_position(problem_mark), (
            "invalid YAML: a tab in the indentation; YAML indents with spaces only, "
            "so replace the tab with spaces"
        )
    colon_in_value = problem.startswith("mapping values are not allowed") or (
        problem.startswith("did not find expected ','") and _char_at(lines, problem_mark) == ":"
    )
    if colon_in_value and problem_mark is not None:
        line = lines[problem_mark.line] if problem_mark.line < len(lines) else ""
        quoted = _quoted_form(line.split("\r")[0], problem_mark.column)
        advice = (
            f"quote it: {quoted}"
            if quoted
            else "put the value in quotes, or, if this line starts a key of its own, "
            "indent it like its neighbours"
        )
        return _mark_position(problem_mark), (
            f'invalid YAML: a plain value cannot contain ": " (a colon and a space); {advice}'
        )
    closed_early = _quoted_before(text, problem_mark)
    if closed_early is not None:
        quote, start, end = closed_early.style, closed_early.start_mark, closed_early.end_mark
        if start.line < end.line:
            return _mark_position(start), (
                f"invalid YAML: the value quoted here runs on to line {end.line + 1}, where text "
                f"follows its end; is the closing {quote} missing on this line?"
            )
        inside = "''" if quote == "'" else '\\"'
        return _mark_position(problem_mark), (
            f"invalid YAML: text after a closing {quote}; inside {quote}...{quote} write "
            f"{inside} for a {quote}, or quote the value with the other quote"
        )
    mark = problem_mark or context_mark
    problem = problem or error.context or "invalid YAML"
    context = f" ({error.context})" if error.context and error.problem else ""
    return _mark_position(mark), f"invalid YAML: {problem}{context}"


def load_yaml(data: bytes, file: str) -> tuple[Document | None, list[Diagnostic]]:
    """Compose and build one YAML document; on any problem, the located diagnostics."""

    def located(where: Position, message: str) -> list[Diagnostic]:
        return [Diagnostic(file, where.line, where.column, "", message)]

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        where = _reader_position(data[: error.start], len(data[: error.start].decode()))
        return None, located(where, f"not UTF-8 text (byte 0x{data[error.start]:02x})")
    try:
        doc, diagnostics = _build(text, file)
    except yaml.reader.ReaderError as error:
        where = _reader_position(data, error.position)
        return None, located(where, f"not a YAML text file (binary data?): {error.reason}")
    except yaml.MarkedYAMLError as error:
        return None, located(*_explain(error, text))
    except yaml.YAMLError as error:
        return None, located(Position(1, 1), f"invalid YAML: {error}")
    except RecursionError:
        return None, located(Position(1, 1), "invalid YAML: nested too deeply")
    except _Refused as refused:
        where = refused.at
        return None, [
            Diagnostic(file, where.line, where.column, format_path(refused.path), refused.message)
        ]
    if doc is None:
        return None, located(Position(1, 1), "the manifest is empty")
    return doc, diagnostics


def _build(text: str, file: str) -> tuple[Document | None, list[Diagnostic]]:
    """The document, first with its collections' positions only (what a manifest without
    problems needs), built again with all of them if it has a problem to report."""
    try:
        doc = _Builder(text, file, every_position=False).document()
    except _NeedsPositions:
        builder = _Builder(text, file)
        return builder.document(), builder.diagnostics
    if doc is not None:
        doc.rebuild = lambda: _Builder(text, file).document() or Document(None)
    return doc, []
