"""Property tests for var substitution in prompts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.manifest import UnknownVar, substitute

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


def escape(text: str) -> str:
    return text.replace("$", "$$")


@given(st.text())
def test_escaped_dollars_come_back_as_written(text: str) -> None:
    """Doubling every $ makes any text come through substitution unchanged."""
    assert substitute(escape(text), {}) == text


@given(st.dictionaries(names, st.text(), min_size=1), st.text(), st.text())
def test_a_var_is_replaced_by_its_value_verbatim(
    variables: dict[str, str], before: str, after: str
) -> None:
    """${name} becomes the value as is, even when the value holds $ or ${...}."""
    name = sorted(variables)[0]
    template = f"{escape(before)}${{{name}}}{escape(after)}"
    assert substitute(template, variables) == before + variables[name] + after


@given(names, st.text())
def test_an_unknown_name_raises(name: str, text: str) -> None:
    """A ${name} without a value is an error, never left in the prompt."""
    with pytest.raises(UnknownVar) as caught:
        substitute(escape(text) + f"${{{name}}}", {})
    assert caught.value.name == name


@given(st.text(alphabet=st.characters(blacklist_characters="{$")))
def test_a_lone_dollar_is_kept(text: str) -> None:
    """A $ not followed by $ or {name} stays as it is."""
    assert substitute(f"${text}", {}) == f"${text}"
