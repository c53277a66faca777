"""The guard of tests/conftest.py that fails a test run which wrote into the repository."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import repo_files, tree_changes


def test_the_guard_sees_new_changed_and_removed_files_but_not_caches(tmp_path: Path) -> None:
    """A file written, rewritten or deleted shows; a tool's cache folder does not."""
    (tmp_path / "kept.txt").write_text("a")
    (tmp_path / "edited.txt").write_text("a")
    (tmp_path / "gone.txt").write_text("a")
    before = repo_files(tmp_path)
    (tmp_path / "renders").mkdir()
    (tmp_path / "renders" / "state.db").write_text("new")
    (tmp_path / "edited.txt").write_text("longer")
    os.utime(tmp_path / "edited.txt", ns=(1, 1))
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"")
    assert tree_changes(before, repo_files(tmp_path)) == [
        f"new: {Path('renders') / 'state.db'}",
        "changed: edited.txt",
        "removed: gone.txt",
    ]
