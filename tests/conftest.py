"""Shared fixtures. Each area keeps its own fixtures in its own plugin module."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.plugins.sim_fixtures"]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a real key or API base from the developer's environment."""
    for name in list(os.environ):
        if name.startswith("SHOTRUNNER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")
