"""An ``output_dir`` no file system can hold is refused by ``validate`` at its location, and
``run`` stops on it before anything is sent. Through the real CLI, ``python -m runner``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def shotrunner(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOTRUNNER_")}
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env={**env, "NO_COLOR": "1", "SHOTRUNNER_API_KEY": "sk-never-used"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def manifest_with(folder: Path, output_dir: str) -> Path:
    path = folder / "m.yaml"
    path.write_text(
        f"version: 1\noutput_dir: {output_dir}\nshots:\n  - id: s01\n    prompt: gulls\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ('"a\\0b"', "it contains a NUL character, which no path can hold"),
        ("renders/" + "x" * 256, "a folder name in it is longer than 255 bytes"),
        (
            '"r\\e]0;owned\\a"',
            "it contains a control character (a tab, a line end or a terminal escape)",
        ),
    ],
    ids=["nul", "long-name", "terminal-escape"],
)
def test_an_unusable_output_dir_is_refused_at_validate(
    tmp_path: Path, written: str, problem: str
) -> None:
    """validate: exit 2, FILE:LINE:COL of output_dir, what makes it unusable."""
    manifest = manifest_with(tmp_path, written)
    result = shotrunner("validate", str(manifest), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"{manifest}:2:13: error: output_dir cannot be used: {problem} (at output_dir)\n"
    )


def test_an_output_dir_under_a_file_is_refused(tmp_path: Path) -> None:
    """A path whose parent is a file cannot become a folder: refused with the file named."""
    (tmp_path / "notes.txt").write_text("a file")
    manifest = manifest_with(tmp_path, "notes.txt/renders")
    result = shotrunner("validate", str(manifest), cwd=tmp_path)
    assert result.returncode == 2
    assert f"output_dir cannot be used: {tmp_path / 'notes.txt'} is a file" in result.stderr


def test_run_stops_on_an_unusable_output_dir_without_a_traceback(tmp_path: Path) -> None:
    """run refuses the same manifest with exit 2 before any request (the API base is a port
    nobody listens on: a request would fail differently)."""
    manifest = manifest_with(tmp_path, '"a\\0b"')
    result = shotrunner("run", str(manifest), "--api-base", "http://127.0.0.1:9/v1", cwd=tmp_path)
    assert result.returncode == 2
    assert "output_dir cannot be used: it contains a NUL character" in result.stderr
    assert "Traceback" not in result.stderr
