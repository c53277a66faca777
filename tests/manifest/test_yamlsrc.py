"""The YAML layer: 1.2-style scalars, positions, merges, aliases, refused tags."""

from __future__ import annotations

import pytest

from runner import yamlsrc
from runner.yamlsrc import Position, format_path, load_yaml, parse_path


def load(text: str) -> object:
    doc, diagnostics = load_yaml(text.encode(), "f.yaml")
    assert doc is not None, diagnostics
    assert diagnostics == []
    return doc.value


@pytest.mark.parametrize(
    ("plain", "value"),
    [
        ("16:9", "16:9"),
        ("08", 8),
        ("010", 10),
        ("0o17", "0o17"),
        ("0x1f", "0x1f"),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("True", True),
        ("false", False),
        ("~", None),
        ("", None),
        ("1.5", 1.5),
        ("-3", -3),
        ("1_000", "1_000"),
        ("2026-01-01", "2026-01-01"),
    ],
)
def test_plain_scalars_follow_the_core_schema(plain: str, value: object) -> None:
    """Plain scalars resolve by YAML 1.2 core rules: no sexagesimal, octal or yes/no."""
    assert load(f"a: {plain}\n") == {"a": value}


def test_quoted_scalars_stay_strings() -> None:
    """A quoted scalar is always a string, whatever it looks like."""
    assert load("a: '08'\nb: \"true\"\n") == {"a": "08", "b": "true"}


def test_standard_explicit_tags_are_honoured() -> None:
    """!!int and !!str convert as the YAML spec says."""
    assert load("a: !!int '08'\nb: !!str 8\n") == {"a": 8, "b": "8"}


def test_every_value_keeps_its_line_and_column() -> None:
    """Positions are recorded for values and for keys, counting from 1."""
    doc, _ = load_yaml(b"shots:\n  - id: a\n    images: [x, y]\n", "f.yaml")
    assert doc is not None
    assert doc.where(("shots", 0, "images", 1)) == Position(3, 17)
    assert doc.where(("shots", 0, "images"), key=True) == Position(3, 5)


def test_merge_keys_apply_with_the_mapping_own_keys_winning() -> None:
    """<< merges a mapping; keys written in the mapping itself override merged ones."""
    value = load("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n")
    assert value == {"base": {"x": 1, "y": 2}, "use": {"x": 1, "y": 3}}


def test_merge_of_several_mappings_prefers_the_first() -> None:
    """With <<: [*a, *b], a key of a wins over the same key of b."""
    value = load("a: &a {x: 1}\nb: &b {x: 2, z: 3}\nc:\n  <<: [*a, *b]\n")
    assert isinstance(value, dict)
    assert value["c"] == {"x": 1, "z": 3}


def test_merged_values_are_located_where_they_are_written() -> None:
    """A merged key's value points at the anchored mapping's text."""
    doc, _ = load_yaml(b"a: &a {x: 1}\nc:\n  <<: *a\n", "f.yaml")
    assert doc is not None
    assert doc.where(("c", "x")) == Position(1, 11)


def test_a_document_without_problems_finds_its_values_positions_when_asked() -> None:
    """Loaded without problems, a document keeps its collections' positions; the first
    question about another value builds them all, the same as a document with problems
    gets at once."""
    text = b"shots:\n  - id: s01\n    images: [a.png, b.png]\n"
    doc, diagnostics = load_yaml(text, "f.yaml")
    assert doc is not None and diagnostics == []
    assert doc.rebuild is not None
    assert set(doc.positions) == {(), ("shots",), ("shots", 0), ("shots", 0, "images")}
    assert doc.where(("shots", 0)) == Position(2, 5) and doc.rebuild is not None
    assert doc.where(("shots", 0, "images", 1)) == Position(3, 21)
    assert doc.rebuild is None
    assert doc.where(("shots", 0, "id"), key=True) == Position(2, 5)
    assert doc.written(("shots", 0, "id")) and not doc.written(("shots", 0, "prompt"))
    broken, diagnostics = load_yaml(text + b"    id: s02\n", "f.yaml")
    assert broken is not None and broken.rebuild is None
    assert diagnostics[0].message.startswith("key 'id' is written twice")
    assert (diagnostics[0].line, diagnostics[0].column) == (4, 5)


def test_aliases_are_expanded() -> None:
    """An alias reuses the anchored value."""
    assert load("a: &l [1, 2]\nb: *l\n") == {"a": [1, 2], "b": [1, 2]}


def test_recursive_alias_is_refused() -> None:
    """A node that contains an alias to itself is refused with a location."""
    doc, diagnostics = load_yaml(b"a: &x [1, *x]\n", "f.yaml")
    assert doc is None
    assert "recursive alias" in diagnostics[0].message


def test_multiple_documents_are_refused() -> None:
    """A manifest is one YAML document."""
    doc, diagnostics = load_yaml(b"a: 1\n---\nb: 2\n", "f.yaml")
    assert doc is None
    assert diagnostics[0].line == 2


def test_non_string_keys_are_kept_as_written() -> None:
    """A key like 1 stays the string '1', so the schema reports it as an unknown key."""
    assert load("1: x\n") == {"1": "x"}


def test_paths_format_and_parse_back() -> None:
    """Paths print as shots[3].images[1] and parse back to the same tuple."""
    path = ("shots", 3, "images", 1)
    assert format_path(path) == "shots[3].images[1]"
    assert parse_path("shots[3].images[1]") == path


def test_an_undefined_alias_is_named_where_it_is_used() -> None:
    """An alias to no anchor is refused at the alias, naming it."""
    doc, diagnostics = load_yaml(b"a: 1\nb: *nope\n", "f.yaml")
    assert doc is None
    assert (diagnostics[0].line, diagnostics[0].column) == (2, 4)
    assert "undefined alias 'nope'" in diagnostics[0].message


def test_every_item_of_a_long_list_keeps_its_position() -> None:
    """Items built from a list (whose nodes are dropped as they are built) keep where they
    were written, and an alias elsewhere in the file still finds its anchor's content."""
    items = "".join(f"  - {{id: s{i}, n: {i}}}\n" for i in range(50))
    for extra in ("", "b: &b {x: 1}\nc: *b\n"):
        doc, diagnostics = load_yaml(f"a:\n{items}{extra}".encode(), "f.yaml")
        assert doc is not None and diagnostics == []
        assert [item["n"] for item in doc.value["a"]] == list(range(50))
        assert doc.where(("a", 49, "n")) == Position(51, 18)
        if extra:
            assert doc.value["c"] == {"x": 1}


def test_aliases_may_add_as_many_values_as_the_text_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The alias bound grows with the document: a long manifest whose shots all merge one
    anchored mapping is accepted, while the same aliases in a short text are a bomb."""
    monkeypatch.setattr(yamlsrc, "MAX_EXPANDED_NODES", 100)
    look = "look: &look {seconds: 8, resolution: 720p, aspect_ratio: '16:9'}\n"
    shots = "".join(f"  - {{<<: *look, id: s{i}, prompt: p{i}}}\n" for i in range(60))
    doc, diagnostics = load_yaml(f"{look}shots:\n{shots}".encode(), "f.yaml")
    assert doc is not None and diagnostics == []  # 60 x 4 values added, 60 x 6 written
    assert doc.value["shots"][59] == {"id": "s59", "prompt": "p59", **doc.value["look"]}
    assert doc.where(("shots", 59, "resolution")) == Position(1, 38)
    bomb = "".join("  - *look\n" for _ in range(60))
    doc, diagnostics = load_yaml(f"{look}shots:\n{bomb}".encode(), "f.yaml")
    assert doc is None
    assert "past 100 values (an alias bomb?)" in diagnostics[0].message
    assert (diagnostics[0].line, diagnostics[0].path) == (3, "shots")


def test_an_aliased_value_is_a_copy_with_its_positions() -> None:
    """Each alias gets its own copy of the anchored value, located at the anchor's text."""
    doc, diagnostics = load_yaml(b"a: &x {n: [1, 2]}\nb: *x\n", "f.yaml")
    assert doc is not None and diagnostics == []
    assert doc.value["a"] == doc.value["b"] and doc.value["a"] is not doc.value["b"]
    assert doc.value["a"]["n"] is not doc.value["b"]["n"]
    assert doc.where(("b", "n", 1)) == Position(1, 15)


def test_a_duplicate_anchor_and_a_collection_key_are_refused() -> None:
    doc, diagnostics = load_yaml(b"a: &x 1\nb: &x 2\n", "f.yaml")
    assert doc is None and "duplicate anchor 'x'" in diagnostics[0].message
    doc, diagnostics = load_yaml(b"? [a, b]\n: 1\nc: 2\n", "f.yaml")
    assert doc is not None and doc.value == {"c": 2}
    assert [d.message for d in diagnostics] == [
        "a mapping key must be a plain value, not a collection"
    ]


def test_an_alias_to_a_scalar_may_be_a_key() -> None:
    assert load("k: &k name\n*k : 1\n") == {"k": "name", "name": 1}
