"""Schema problems read as advice: hints for common slips, and the fallback validator."""

from __future__ import annotations

import pytest

from runner import schema
from runner.manifest import check_manifest
from tests.manifest.conftest import WriteManifest


def messages(write_manifest: WriteManifest, text: str) -> list[str]:
    _, diagnostics = check_manifest(write_manifest(text))
    return [d.message for d in diagnostics]


def test_numeric_id_asks_for_quotes(write_manifest: WriteManifest) -> None:
    """id: 01 is a number in YAML; the message says to quote it."""
    found = messages(write_manifest, "version: 1\nshots: [{id: 01, prompt: p}]\n")
    assert found == ["a shot id must be text, not 1; quote it"]


def test_single_image_string_suggests_a_list(write_manifest: WriteManifest) -> None:
    """images: x.png (not a list) suggests [x.png]."""
    found = messages(
        write_manifest, "version: 1\nshots: [{id: a, prompt: p, images: frames/s02.png}]\n"
    )
    assert found == ["shots[0].images must be a list, not 'frames/s02.png'; write [frames/s02.png]"]


def test_misspelt_mode_gets_a_did_you_mean(write_manifest: WriteManifest) -> None:
    """An enum value close to a valid one is suggested."""
    found = messages(
        write_manifest,
        "version: 1\nshots: [{id: a, prompt: p, mode: first-frame, images: [frames/s02.png]}]\n",
    )
    assert found == [
        "mode must be one of text, first_frame, first_last, reference, not 'first-frame'; "
        "did you mean 'first_frame'?"
    ]


def test_bad_var_value_and_name_are_reported(write_manifest: WriteManifest) -> None:
    """vars take string or number values under names that could appear in ${...}."""
    found = messages(
        write_manifest, "version: 1\nvars: {a: [x], 1b: y}\nshots: [{id: a, prompt: p}]\n"
    )
    assert found == [
        "vars.a must be a string or a number, not a list",
        "var name '1b' must be letters, digits and '_', not starting with a digit",
    ]


def test_pure_python_validator_accepts_what_the_fast_one_does(
    write_manifest: WriteManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without jsonschema-rs, a valid manifest is still valid."""
    monkeypatch.setattr(schema, "_fast_validator", lambda: None)
    manifest, diagnostics = check_manifest(
        write_manifest("version: 1\nshots: [{id: a, prompt: p, seconds: '08'}]\n")
    )
    assert manifest is not None and diagnostics == []


@pytest.mark.parametrize("fast", [True, False], ids=["jsonschema-rs", "jsonschema"])
def test_a_pattern_must_match_to_the_very_end(
    write_manifest: WriteManifest, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    """Both validators refuse a value whose only flaw is a final newline, as editors do."""
    if not fast:
        monkeypatch.setattr(schema, "_fast_validator", lambda: None)
    found = messages(
        write_manifest, 'version: 1\nshots: [{id: a, prompt: p, aspect_ratio: "16:9\\n"}]\n'
    )
    assert found == ["aspect_ratio must be W:H in whole numbers, like \"16:9\", not '16:9\\n'"]


def test_swapped_letters_suggest_the_word_they_spell(write_manifest: WriteManifest) -> None:
    """modle is model with two letters swapped, so model is offered rather than mode."""
    found = messages(write_manifest, "version: 1\nshots: [{id: a, prompt: p, modle: m}]\n")
    assert found == ["unknown key 'modle' in a shot; did you mean 'model'?"]


@pytest.mark.parametrize(
    ("word", "choices", "expected"),
    [
        pytest.param("modle", ["mode", "model"], "model", id="swap_beats_drop"),
        pytest.param("seconsd", ["seconds", "second_s"], "seconds", id="swap_at_end"),
        pytest.param("promt", ["prompt", "mode"], "prompt", id="one_dropped"),
        pytest.param("takess", ["takes", "extra"], "takes", id="one_added"),
        pytest.param("resolutian", ["resolution"], "resolution", id="one_changed"),
        pytest.param("first-frame", ["text", "first_frame"], "first_frame", id="difflib"),
        pytest.param("8k", ["720p", "1080p", "2k", "4k"], None, id="too_short"),
        pytest.param("zzz", ["prompt"], None, id="nothing_close"),
    ],
)
def test_closest_prefers_one_edit(word: str, choices: list[str], expected: str | None) -> None:
    """One edit away wins, a swap of neighbours first; short words and far ones get nothing."""
    assert schema.closest(word, choices) == expected
