"""Whatever the file holds, checking it gives diagnostics, never an exception."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.diagnostics import has_errors
from runner.manifest import SHOT_FIELDS, check_manifest
from runner.yamlsrc import load_yaml

# No "/", "\" or "~": a string used as an image path stays inside the test's folder.
words = st.text(st.characters(blacklist_characters="/\\~", blacklist_categories=["Cs"]), max_size=8)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | words
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(words, inner, max_size=3),
    max_leaves=6,
)
fields = st.sampled_from([*SHOT_FIELDS, "id", "promt"])
shots = st.dictionaries(fields, values, max_size=5) | values
documents = st.fixed_dictionaries(
    {"version": st.just(1) | values, "shots": st.lists(shots, max_size=3) | values},
    optional={
        "defaults": st.dictionaries(fields, values, max_size=4) | values,
        "vars": st.dictionaries(words, values, max_size=3) | values,
        "name": values,
        "output_dir": values,
    },
)


def _check(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.yaml"
        path.write_bytes(data)
        manifest, diagnostics = check_manifest(path)
    assert (manifest is None) == has_errors(diagnostics)
    assert all(d.line >= 1 and d.column >= 1 for d in diagnostics)


@settings(max_examples=150, deadline=None)
@given(documents)
def test_any_shaped_document_gets_diagnostics(document: dict[str, Any]) -> None:
    """Any value in any field, at any level, is judged without an exception."""
    _check(yaml.safe_dump(document).encode())


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gets_diagnostics(text: str) -> None:
    """Any text, YAML or not, is judged without an exception."""
    _check(text.encode("utf-8", errors="surrogatepass"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_load_to_a_document_or_diagnostics(data: bytes) -> None:
    """Any bytes give either a document or located diagnostics from the YAML layer."""
    doc, diagnostics = load_yaml(data, "m.yaml")
    assert doc is not None or diagnostics
