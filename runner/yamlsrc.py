"""YAML with a position for every value: the manifest's source layer.

PyYAML composes the node tree (libyaml's parser when available); the values are built
here from the nodes so that the rules are ours, not YAML 1.1's:

- plain scalars follow the YAML 1.2 core schema, narrowed: only ``true``/``false`` are
  booleans, ``null``/``~``/empty are null, integers are decimal (``08`` is 8; ``0o``/``0x``
  stay strings), and there are no sexagesimal numbers (``16:9`` is the string "16:9");
- a key written twice in one mapping is an error;
- anchors, aliases and ``<<`` merges work, but the expanded size is bounded so that an
  alias bomb is refused before it is built;
- only the standard tags (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``,
  ``!!map``, ``!!seq``, ``!!merge``) are accepted: nothing constructs objects.

Every problem comes back as a located ``Diagnostic``, never as an exception. The parse
errors of the usual mistakes (``: `` in a plain value, a tab in the indentation, a quote
left open) are explained in the user's words, at the place to fix (``_explain``).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from runner.diagnostics import Diagnostic

try:
    _BaseLoader: type[Any] = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

PathKey = tuple[str | int, ...]

#: Nodes a document may expand to through aliases and merges; a bigger one is an alias bomb.
MAX_EXPANDED_NODES = 1_000_000

_TAG = "tag:yaml.org,2002:"
_PLAIN = "!shotrunner/plain"  # an untagged plain scalar, resolved here by the core rules
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE = _TAG + "map", _TAG + "seq", _TAG + "merge"
_SCALAR_TAGS = {_PLAIN, _STR, _INT, _FLOAT, _BOOL, _NULL}

_NON_STRING_STARTS = frozenset("0123456789+-.~nNtTfF")
_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INF_RE = re.compile(r"[-+]?\.(inf|Inf|INF)\Z")
_NAN_RE = re.compile(r"\.(nan|NaN|NAN)\Z")


@dataclass(frozen=True, slots=True)
class Position:
    line: int
    column: int


class _Node:
    """A composed value before it is built: its tag, its content and where it starts.

    Lighter than PyYAML's nodes (no marks, which hold a dictionary each): 100,000 shots
    composed as PyYAML's nodes took 400 MiB before a single value was built. ``at`` is
    shared with the built document's positions.
    """

    __slots__ = ("at", "tag", "value")

    def __init__(self, tag: str, value: Any, at: Position) -> None:
        self.tag = tag
        self.value = value
        self.at = at


class _Scalar(_Node):
    value: str


class _Sequence(_Node):
    value: list[_Node]


class _Mapping(_Node):
    value: list[tuple[_Node, _Node]]


def _at(mark: yaml.Mark) -> Position:
    return Position(mark.line + 1, mark.column + 1)


class _Composer:
    """The node tree of one document from libyaml's events (PyYAML's composer, with our
    nodes): untagged plain scalars are tagged ``_PLAIN`` so that ``_Builder`` resolves them
    by our rules, other untagged scalars ``!!str``."""

    def __init__(self, text: str) -> None:
        self.parser = _BaseLoader(text)
        self.anchors: dict[str, _Node] = {}

    def document(self) -> _Node | None:
        """The single document's root (None for an empty stream)."""
        try:
            self.parser.get_event()  # stream start
            if isinstance(self.parser.peek_event(), yaml.StreamEndEvent):
                return None
            start = self.parser.get_event().start_mark  # document start
            root = self.node()
            self.parser.get_event()  # document end
            if not isinstance(self.parser.peek_event(), yaml.StreamEndEvent):
                raise yaml.composer.ComposerError(
                    "expected a single document in the stream",
                    start,
                    "but found another document",
                    self.parser.get_event().start_mark,
                )
            return root
        finally:
            self.parser.dispose()

    def node(self) -> _Node:
        event = self.parser.get_event()
        kind = type(event)
        if kind is yaml.AliasEvent:
            if event.anchor not in self.anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {event.anchor!r}", event.start_mark
                )
            return self.anchors[event.anchor]
        tag, at = event.tag, _at(event.start_mark)
        if kind is yaml.ScalarEvent:
            if tag is None or tag == "!":
                tag = _PLAIN if event.implicit[0] else _STR
            return self.anchored(event, _Scalar(tag, event.value, at))
        if tag is None or tag == "!":
            tag = _SEQ if kind is yaml.SequenceStartEvent else _MAP
        if kind is yaml.SequenceStartEvent:
            items: list[_Node] = []
            node: _Node = self.anchored(event, _Sequence(tag, items, at))
            while not isinstance(self.parser.peek_event(), yaml.SequenceEndEvent):
                items.append(self.node())
        else:
            pairs: list[tuple[_Node, _Node]] = []
            node = self.anchored(event, _Mapping(tag, pairs, at))
            while not isinstance(self.parser.peek_event(), yaml.MappingEndEvent):
                key = self.node()
                pairs.append((key, self.node()))
        self.parser.get_event()  # the collection's end
        return node

    def anchored(self, event: Any, node: _Node) -> _Node:
        """``node``, registered under the event's anchor (if any) before its content is
        composed, so that an alias inside it is recursive, as in PyYAML."""
        anchor = event.anchor
        if anchor is None:
            return node
        if anchor in self.anchors:
            first = self.anchors[anchor].at
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                yaml.Mark("<unicode string>", 0, first.line - 1, first.column - 1, None, 0),
                "second occurrence",
                event.start_mark,
            )
        self.anchors[anchor] = node
        return node


@dataclass(slots=True)
class Document:
    """A loaded YAML document: plain Python values plus where each came from.

    ``positions`` maps a path (``("shots", 3, "images", 1)``) to where its value starts;
    ``key_positions`` maps a mapping entry's path to where its key is written;
    ``refused`` holds the paths whose value was refused (a forbidden tag, a tagged scalar
    that is not of its tag's type): they hold None, and the problem is already reported.
    """

    value: Any
    positions: dict[PathKey, Position] = field(default_factory=dict)
    key_positions: dict[PathKey, Position] = field(default_factory=dict)
    refused: set[PathKey] = field(default_factory=set)

    def where(self, path: PathKey, *, key: bool = False) -> Position:
        """The position of ``path`` (its key if asked and known), else of its nearest parent."""
        if key and path in self.key_positions:
            return self.key_positions[path]
        while path:
            found = self.positions.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return self.positions.get((), Position(1, 1))


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
        return int(text, 10)
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


class _Builder:
    def __init__(self, file: str, *, consume: bool = False) -> None:
        self.file = file
        #: Drop each list item's node once it is built, so that the tree and the values are
        #: never both whole in memory; only where no alias can lead back to a node.
        self.consume = consume
        self.doc = Document(None)
        self.diagnostics: list[Diagnostic] = []

    def error(self, node: _Node, path: PathKey, message: str) -> None:
        where = node.at
        self.diagnostics.append(
            Diagnostic(self.file, where.line, where.column, format_path(path), message)
        )

    def refuse(self, node: _Node, path: PathKey, message: str) -> None:
        """Report ``node`` and record that its value, at ``path``, stands as None."""
        self.error(node, path, message)
        self.doc.refused.add(path)

    def build(self, node: _Node, path: PathKey) -> Any:
        self.doc.positions[path] = node.at
        if isinstance(node, _Scalar):
            return self.scalar(node, path)
        if isinstance(node, _Sequence):
            if node.tag != _SEQ:
                self.refuse(node, path, f"YAML tag {_short_tag(node.tag)} is not allowed")
                return None
            items = node.value
            if not self.consume:
                return [self.build(item, (*path, i)) for i, item in enumerate(items)]
            items.reverse()
            return [self.build(items.pop(), (*path, i)) for i in range(len(items))]
        if node.tag != _MAP or not isinstance(node, _Mapping):
            self.refuse(node, path, f"YAML tag {_short_tag(node.tag)} is not allowed")
            return None
        return self.mapping(node, path)

    def scalar(self, node: _Scalar, path: PathKey, *, key: bool = False) -> Any:
        """The scalar's value; a refused one is None (a refused key leaves its mapping be)."""
        tag, text = node.tag, node.value
        if tag == _PLAIN:
            return resolve_plain(text)
        if tag == _STR:
            return text
        report = self.error if key else self.refuse
        if tag not in _SCALAR_TAGS:
            report(node, path, f"YAML tag {_short_tag(tag)} is not allowed")
            return None
        value = resolve_plain(text)
        wanted: dict[str, tuple[type, ...]] = {
            _INT: (int,),
            _FLOAT: (int, float),
            _BOOL: (bool,),
            _NULL: (type(None),),
        }
        if (isinstance(value, bool) and tag != _BOOL) or not isinstance(value, wanted[tag]):
            report(node, path, f"{text!r} is not a valid {_short_tag(tag)}")
            return None
        return float(value) if tag == _FLOAT and isinstance(value, int) else value

    def mapping(self, node: _Mapping, path: PathKey) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        merged_positions: dict[str, _Merged] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, _Scalar) and (
                key_node.tag == _MERGE or (key_node.tag == _PLAIN and key_node.value == "<<")
            ):
                self.merge(value_node, path, merged, merged_positions)
                continue
            if not isinstance(key_node, _Scalar):
                self.error(key_node, path, "a mapping key must be a plain value, not a collection")
                continue
            key_value = self.scalar(key_node, path, key=True)
            # Interned: the same few keys are written once per shot, 100,000 times over.
            key = sys.intern(key_value if isinstance(key_value, str) else key_node.value)
            child = (*path, key)
            if key in result:
                first = self.doc.key_positions[child]
                self.error(
                    key_node,
                    child,
                    f"key {key!r} is written twice in this mapping (first at line {first.line})",
                )
                continue
            self.doc.key_positions[child] = key_node.at
            result[key] = self.build(value_node, child)
        for key, value in merged.items():
            if key not in result:
                result[key] = value
                found = merged_positions[key]
                self.doc.key_positions[(*path, key)] = found.key_at
                self.doc.positions.setdefault((*path, key), found.value_at)
                self.doc.refused.update((*path, *sub) for sub in found.refused)
        return result

    def merge(
        self,
        node: _Node,
        path: PathKey,
        merged: dict[str, Any],
        merged_positions: dict[str, _Merged],
    ) -> None:
        """``<<: *a`` or ``<<: [*a, *b]``: earlier sources win, the mapping's own keys win."""
        sources = node.value if isinstance(node, _Sequence) else [node]
        for source in sources:
            if not isinstance(source, _Mapping):
                self.error(source, path, "a << merge takes a mapping or a list of mappings")
                continue
            scratch = _Builder(self.file)
            value = scratch.build(source, ())
            self.diagnostics.extend(
                Diagnostic(
                    d.file,
                    d.line,
                    d.column,
                    format_path((*path, *parse_path(d.path))) if d.path else format_path(path),
                    d.message,
                )
                for d in scratch.diagnostics
            )
            if not isinstance(value, dict):
                continue
            for key, item in value.items():
                if key in merged:
                    continue
                merged[key] = item
                merged_positions[key] = _Merged(
                    scratch.doc.key_positions.get((key,), source.at),
                    scratch.doc.positions.get((key,), source.at),
                    [sub for sub in scratch.doc.refused if sub and sub[0] == key],
                )
                for sub, where in scratch.doc.positions.items():
                    if sub and sub[0] == key:
                        self.doc.positions.setdefault((*path, *sub), where)
                for sub, where in scratch.doc.key_positions.items():
                    if sub and sub[0] == key:
                        self.doc.key_positions.setdefault((*path, *sub), where)


def parse_path(text: str) -> PathKey:
    """``shots[3].images[1]`` -> ``("shots", 3, "images", 1)``."""
    parts: list[str | int] = []
    for piece in re.findall(r"\[(\d+)\]|([^.\[\]]+)", text):
        parts.append(int(piece[0]) if piece[0] else piece[1])
    return tuple(parts)


def _expanded_size(root: _Node) -> tuple[_Node | None, str]:
    """Find a node whose expansion passes the bound (or that contains itself).

    Sizes are memoised per node, so shared (aliased) subtrees are measured once and the
    check is linear in the composed document, not in its expansion.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[_Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            size = 1
            for child in _children(node):
                size += sizes[id(child)]
            sizes[key] = size
            if size > MAX_EXPANDED_NODES:
                return node, (
                    f"aliases expand this document past {MAX_EXPANDED_NODES:,} values "
                    "(an alias bomb?); refusing to build it"
                )
            continue
        if key in sizes:
            continue
        if key in active:
            return node, _RECURSIVE
        active.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in active:
                return child, _RECURSIVE
            if id(child) not in sizes:
                stack.append((child, False))
    return None, ""


_RECURSIVE = "an alias refers to a node that contains it (a recursive alias)"


def _children(node: _Node) -> list[_Node]:
    if isinstance(node, _Sequence):
        return list(node.value)
    if isinstance(node, _Mapping):
        return [n for pair in node.value for n in pair]
    return []


def _path_to(root: _Node, target: _Node) -> PathKey:
    """The path where ``target`` is written: its first place in document order.

    An anchor comes before its aliases in the text, so the first place found is the
    anchored node itself, the one whose position a diagnostic shows. A mapping's key
    nodes take the mapping's path. Each node is entered once, so this stays linear.
    """
    seen: set[int] = set()
    stack: list[tuple[_Node, PathKey]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[_Node, PathKey]] = []
        if isinstance(node, _Sequence):
            children = [(child, (*path, i)) for i, child in enumerate(node.value)]
        elif isinstance(node, _Mapping):
            for key, value in node.value:
                named = isinstance(key, _Scalar) and key.value != "<<"
                children += [(key, path), (value, (*path, key.value) if named else path)]
        stack.extend(reversed(children))
    return ()


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
        composer = _Composer(text)
        root = composer.document()
    except yaml.reader.ReaderError as error:
        where = _reader_position(data, error.position)
        return None, located(where, f"not a YAML text file (binary data?): {error.reason}")
    except yaml.MarkedYAMLError as error:
        return None, located(*_explain(error, text))
    except yaml.YAMLError as error:
        return None, located(Position(1, 1), f"invalid YAML: {error}")
    except RecursionError:
        return None, located(Position(1, 1), "invalid YAML: nested too deeply")
    if root is None:
        return None, located(Position(1, 1), "the manifest is empty")
    # Without an anchor there is no alias, so nothing can expand: skip the walk.
    bomb, reason = _expanded_size(root) if "&" in text else (None, "")
    if bomb is not None:
        where, path = bomb.at, format_path(_path_to(root, bomb))
        return None, [Diagnostic(file, where.line, where.column, path, reason)]
    builder = _Builder(file, consume=not composer.anchors)
    try:
        builder.doc.value = builder.build(root, ())
    except RecursionError:
        return None, located(root.at, "invalid YAML: nested too deeply")
    return builder.doc, builder.diagnostics
