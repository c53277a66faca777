"""Which URLs may be an API base: checked before anything is sent, without the HTTP stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runner.api.base import check_base
from runner.errors import ConfigError


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("https://API.example.test/v1/", "https://api.example.test/v1"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("https://someone:hunter2@api.example.test/v1", "https://api.example.test/v1"),
        ("http://[::1]:9/v1", "http://[::1]:9/v1"),
        ("  https://api.example.test  ", "https://api.example.test"),
    ],
)
def test_a_base_is_used_without_credentials_or_trailing_slash(given: str, used: str) -> None:
    """A base keeps scheme, host, port and path; a user:password and a trailing slash go."""
    assert check_base(given) == used


@pytest.mark.parametrize(
    "given",
    [
        "",
        "api.example.test/v1",
        "ftp://api.example.test/v1",
        "http://",
        "http://host:port/v1",
        "https://api.example.test/v1?token=Q-secret",
        "https://api.example.test/v1?",
        "https://api.example.test/v1#Q-secret",
        "https://api.example.test/v1#",
    ],
)
def test_what_is_not_a_base_is_a_config_error(given: str) -> None:
    """Not http(s), no host, a bad port, a query or a fragment (even empty): ConfigError,
    whose message never repeats a query or fragment."""
    with pytest.raises(ConfigError) as caught:
        check_base(given)
    assert "Q-secret" not in caught.value.message


def test_checking_a_base_imports_no_http_stack() -> None:
    """A command can check its base before importing httpx or aiohttp."""
    code = (
        "import sys; from runner.api.base import check_base; check_base('https://h/v1'); "
        "print(sorted({'httpx', 'aiohttp'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
