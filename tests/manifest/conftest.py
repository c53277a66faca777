"""Fixtures for the manifest tests: a folder with real images, a manifest writer, the CLI."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "manifests"
#: What ``copy_examples`` leaves out: the batch folders a run of an example writes there.
NOT_EXAMPLES = shutil.ignore_patterns("renders")

WriteManifest = Callable[[str], Path]


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding the example images under frames/ and refs/."""
    for sub in ("frames", "refs"):
        shutil.copytree(EXAMPLES / sub, tmp_path / sub)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def copy_examples(target: Path) -> Path:
    """The example manifests and their images copied to ``target``, without any batch folder.

    Tests run the examples from a copy: the README's first command fills the examples'
    default output folder, which no test may read or write.
    """
    shutil.copytree(EXAMPLES, target, ignore=NOT_EXAMPLES)
    return target


@pytest.fixture
def write_manifest(workdir: Path) -> WriteManifest:
    """Write YAML text (dedented) to m.yaml in the working folder and return its path."""

    def write(text: str, name: str = "m.yaml") -> Path:
        path = workdir / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def run_cli() -> Callable[..., CliResult]:
    """Invoke the real command line in-process; stdout and stderr kept apart."""

    def invoke(*args: str) -> CliResult:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return invoke
