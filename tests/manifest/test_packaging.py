"""A non-editable install works: the wheel carries the schema and validates on its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.manifest.conftest import copy_examples

ROOT = Path(__file__).resolve().parents[2]


def _python(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.slow
def test_installed_wheel_validates_with_its_packaged_schema(tmp_path: Path) -> None:
    """A wheel installed into a plain folder finds runner/schemas/ inside it and validates."""
    dist, target, elsewhere = tmp_path / "dist", tmp_path / "target", tmp_path / "elsewhere"
    built = _python("-m", "pip", "-q", "wheel", "--no-deps", "-w", dist, ".", cwd=ROOT)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("shotrunner-*.whl")
    installed = _python(
        "-m", "pip", "-q", "install", "--no-deps", "--target", target, wheel, cwd=tmp_path
    )
    assert installed.returncode == 0, installed.stderr
    copy_examples(elsewhere / "manifests")
    # The installed copy must come first, before the editable install of the source tree.
    path = [str(target), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}

    where = _python(
        "-c",
        "import runner, runner.schema as s; print(runner.__file__); print(s.schema_path())",
        cwd=elsewhere,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.splitlines() == [
        str(target / "runner" / "__init__.py"),
        str(target / "runner" / "schemas" / "manifest.schema.json"),
    ]
    assert (target / "runner" / "schemas" / "manifest.schema.json").read_bytes() == (
        ROOT / "schemas" / "manifest.schema.json"
    ).read_bytes()
    validated = _python(
        "-m", "runner", "validate", "manifests/storyboard.yaml", cwd=elsewhere, env=env
    )
    assert (validated.returncode, validated.stdout, validated.stderr) == (
        0,
        "manifests/storyboard.yaml: valid, 4 shot(s), 6 job(s)\n",
        "",
    )
