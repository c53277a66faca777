"""The manifest reference and the schema cannot drift apart."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import jsonschema

from runner.manifest import SHOT_FIELDS, VIDEO_FIELDS
from runner.model import REQUEST_FIELDS
from runner.schema import load_schema, schema_path
from runner.view import ASSUMED_NOTE

ROOT = Path(__file__).resolve().parents[2]


def doc_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "manifest_doc", ROOT / "tools" / "manifest_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_manifest_reference_is_generated_from_the_schema() -> None:
    """docs/manifest.md is exactly what tools/manifest_doc.py makes of the schema."""
    generator = doc_generator()
    expected = generator.render(json.loads((ROOT / "schemas" / "manifest.schema.json").read_text()))
    assert (ROOT / "docs" / "manifest.md").read_text() == expected, (
        "run: python tools/manifest_doc.py"
    )


def test_schema_is_valid_draft_2020_12() -> None:
    """The schema itself passes the draft 2020-12 meta-schema."""
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_runner_reads_the_schema_of_the_source_tree() -> None:
    """In a source checkout, the runner validates with schemas/manifest.schema.json."""
    assert schema_path().read_bytes() == (ROOT / "schemas" / "manifest.schema.json").read_bytes()


def test_schema_and_loader_know_the_same_shot_fields() -> None:
    """Every field the loader merges from defaults is a field of the schema, and back."""
    schema = load_schema()
    assert set(schema["$defs"]["shot"]["properties"]) == {"id", *SHOT_FIELDS}
    assert set(schema["properties"]["defaults"]["properties"]) == set(SHOT_FIELDS)


def test_schema_names_every_field_extra_may_not_set() -> None:
    """The extra description lists exactly the fields the loader refuses."""
    description = load_schema()["$defs"]["extra"]["description"]
    assert all(f"`{name}`" in description for name in (*REQUEST_FIELDS, *VIDEO_FIELDS))


def test_manifest_reference_explains_the_footnote_plan_prints() -> None:
    """The reference quotes plan's footnote on unset seconds word for word."""
    assert f'"{ASSUMED_NOTE}"' in (ROOT / "docs" / "manifest.md").read_text()
