"""The YAML mistakes users make most, through the real ``validate``: a message in the user's
words, at the place to fix, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def validate(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "runner", "validate", "m.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "version: 1\nshots:\n  - id: a\n    prompt: Scene: a cat\n",
            'm.yaml:4:18: error: invalid YAML: a plain value cannot contain ": " (a colon and '
            'a space); quote it: prompt: "Scene: a cat" (at <document>)\n',
            id="block",
        ),
        pytest.param(
            'version: 1\nshots:\n  - prompt: Scene: "Go" she says\n    id: a\n',
            'm.yaml:3:18: error: invalid YAML: a plain value cannot contain ": " (a colon and '
            "a space); quote it: prompt: 'Scene: \"Go\" she says' (at <document>)\n",
            id="value_with_double_quotes",
        ),
        pytest.param(
            "version: 1\nshots:\n  - id: a\n    prompt: Scene: a cat  # the hero\n",
            'm.yaml:4:18: error: invalid YAML: a plain value cannot contain ": " (a colon and '
            'a space); quote it: prompt: "Scene: a cat" (at <document>)\n',
            id="with_a_comment",
        ),
        pytest.param(
            "version: 1\nshots:\n  - {id: a, prompt: Scene: a cat}\n",
            'm.yaml:3:26: error: invalid YAML: a plain value cannot contain ": " (a colon and '
            "a space); put the value in quotes, or, if this line starts a key of its own, "
            "indent it like its neighbours (at <document>)\n",
            id="flow",
        ),
    ],
)
def test_a_colon_in_a_plain_value_shows_the_quoted_form(
    tmp_path: Path, text: str, expected: str
) -> None:
    """``prompt: Scene: a cat``: the colon is named and the quoted line is shown."""
    done = validate(tmp_path, text)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", expected)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("version: 1\nshots:\n\t- id: a\n\t  prompt: x\n", "3:1", id="before_dash"),
        pytest.param("version: 1\nshots:\n  - id: a\n\tprompt: x\n", "4:1", id="before_key"),
    ],
)
def test_a_tab_in_the_indentation_is_called_a_tab(tmp_path: Path, text: str, where: str) -> None:
    """A tab where YAML wants spaces says "tab", at the tab."""
    done = validate(tmp_path, text)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"m.yaml:{where}: error: invalid YAML: a tab in the indentation; YAML indents with "
        "spaces only, so replace the tab with spaces (at <document>)\n"
    )


@pytest.mark.parametrize("quote", ['"', "'"])
def test_an_unclosed_quote_points_at_the_opening_quote(tmp_path: Path, quote: str) -> None:
    """The parser finds the end of the file; the message points where the quote opened."""
    text = (
        "version: 1\nshots:\n"
        f"  - id: a\n    prompt: {quote}a cat at dawn\n"
        "  - id: b\n    prompt: a dog\n"
    )
    done = validate(tmp_path, text)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"m.yaml:4:13: error: invalid YAML: this {quote} is never closed (the quoted value runs "
        f"to the end of the file); add the closing {quote} (at <document>)\n"
    )


def test_other_parse_errors_keep_the_parsers_words(tmp_path: Path) -> None:
    """A mistake without a better explanation still says what the parser found, located."""
    done = validate(tmp_path, "version: 1\nshots:\n  - id: a\n    prompt: x\n   seconds: 4\n")
    assert done.returncode == 2
    assert done.stderr.startswith("m.yaml:5:4: error: invalid YAML: did not find expected '-'")


def test_a_quote_closed_lines_later_points_at_where_it_opened(tmp_path: Path) -> None:
    """An unclosed quote that the next shot's quote closes: the opening quote is shown."""
    text = (
        'version: 1\nshots:\n  - id: a\n    prompt: "a cat at dawn\n'
        '  - id: b\n    prompt: "a dog"\n'
    )
    done = validate(tmp_path, text)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "m.yaml:4:13: error: invalid YAML: the value quoted here runs on to line 6, where text "
        'follows its end; is the closing " missing on this line? (at <document>)\n'
    )


def test_an_apostrophe_inside_single_quotes_is_explained(tmp_path: Path) -> None:
    """``'it's'``: the quote ends early; the message says how to write one inside."""
    done = validate(tmp_path, "version: 1\nshots:\n  - id: a\n    prompt: 'it's a cat'\n")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "m.yaml:4:17: error: invalid YAML: text after a closing '; inside '...' write '' for "
        "a ', or quote the value with the other quote (at <document>)\n"
    )


def test_a_value_quoted_over_two_lines_is_still_valid(tmp_path: Path) -> None:
    """A quoted value may go on over lines: that is YAML, not a mistake."""
    done = validate(tmp_path, 'version: 1\nshots:\n  - id: a\n    prompt: "a cat\n      at dawn"\n')
    assert (done.returncode, done.stderr) == (0, "")
