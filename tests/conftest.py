"""Shared fixtures. Each area keeps its own fixtures in its own plugin module.

Also the guard that keeps tests out of the repository's own tree: a test run that leaves a
new, changed or removed file there fails, naming the files. Tests work in ``tmp_path``; a
default output folder inside the repository (``examples/manifests/renders/``, which the
README's first command fills) is neither read nor written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.plugins.sim_fixtures"]

REPO = Path(__file__).resolve().parents[1]
#: Folders of tools' caches and environments, written by the tools, not by the tests.
NOT_WATCHED = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "__pycache__",
        ".pytest_cache",
        ".hypothesis",
        ".mypy_cache",
        ".ruff_cache",
    }
)
_BEFORE = pytest.StashKey[dict[str, tuple[int, int]]]()


def repo_files(root: Path = REPO) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` outside the tools' caches: relative path -> (size, mtime)."""
    files: dict[str, tuple[int, int]] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in NOT_WATCHED]
        for name in names:
            path = os.path.join(folder, name)
            try:
                stat = os.lstat(path)
            except FileNotFoundError:
                continue
            files[os.path.relpath(path, root)] = (stat.st_size, stat.st_mtime_ns)
    return files


def tree_changes(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> list[str]:
    """What differs between two listings, one ``new|changed|removed: path`` line each."""
    lines = [f"new: {p}" for p in sorted(after.keys() - before.keys())]
    lines += [
        f"changed: {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]
    ]
    lines += [f"removed: {p}" for p in sorted(before.keys() - after.keys())]
    return lines


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not _is_worker(session.config):
        session.config.stash[_BEFORE] = repo_files()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    changes = tree_changes(before, repo_files())
    if not changes:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "the tests wrote into the repository's tree (use tmp_path or --out):\n  " + (
        "\n  ".join(changes[:50])
    )
    if reporter is not None:
        reporter.write_sep("=", "repository tree changed", red=True)
        reporter.write_line(message)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a real key or API base from the developer's environment."""
    for name in list(os.environ):
        if name.startswith("SHOTRUNNER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")
