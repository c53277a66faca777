"""A non-editable install works: the wheel carries the schema and validates on its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.manifest.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]


def _pip(*args: str | Path, cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "-q", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_installed_wheel_validates_with_its_packaged_schema(tmp_path: Path) -> None:
    """A wheel installed into a plain folder finds runner/schemas/ inside it and validates."""
    dist, target, elsewhere = tmp_path / "dist", tmp_path / "target", tmp_path / "elsewhere"
    _pip("wheel", "--no-deps", "-w", dist, ".", cwd=ROOT)
    (wheel,) = dist.glob("shotrunner-*.whl")
    _pip("install", "--no-deps", "--target", target, wheel, cwd=tmp_path)
    shutil.copytree(EXAMPLES, elsewhere / "manifests")
    # The installed copy must come first, before the editable install of the source tree.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    where = run(
        "-c", "import runner, runner.schema as s; print(runner.__file__); print(s.schema_path())"
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.splitlines() == [
        str(target / "runner" / "__init__.py"),
        str(target / "runner" / "schemas" / "manifest.schema.json"),
    ]
    assert (target / "runner" / "schemas" / "manifest.schema.json").read_bytes() == (
        ROOT / "schemas" / "manifest.schema.json"
    ).read_bytes()
    validated = run("-m", "runner", "validate", "manifests/storyboard.yaml")
    assert (validated.returncode, validated.stdout, validated.stderr) == (
        0,
        "manifests/storyboard.yaml: valid, 4 shot(s), 6 job(s)\n",
        "",
    )
