"""Odd image files: FIFOs and other non-regular files are refused without waiting on them,
sizes are counted as read, and images outside the manifest's folder are named in a warning.
Through the real CLI, ``python -m runner``, where it is what a user sees."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.images import MAX_IMAGE_BYTES, ImageProblem, ImageResolver
from tests.plugins.images import tiny_png


def shotrunner(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``shotrunner ARGS`` in a new process; the timeout is a liveness bound (a hang fails)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOTRUNNER_")}
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env={**env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def manifest_with(folder: Path, image: str) -> Path:
    """A one-shot first_frame manifest in ``folder`` using ``image`` as written."""
    path = folder / "m.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            shots:
              - id: s01
                mode: first_frame
                prompt: a harbour at dawn
                images: ["{image}"]
            """
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The manifest's folder, with a real frame inside it."""
    folder = tmp_path / "project"
    (folder / "frames").mkdir(parents=True)
    (folder / "frames" / "f.png").write_bytes(tiny_png())
    return folder


def test_a_fifo_as_image_is_refused_without_waiting(project: Path) -> None:
    """validate on a FIFO named as an image returns at once: exit 2, located, named a FIFO."""
    os.mkfifo(project / "frames" / "pipe.png")
    manifest = manifest_with(project, "frames/pipe.png")
    result = shotrunner("validate", str(manifest), cwd=project)
    assert result.returncode == 2
    assert result.stderr == (
        f"{manifest}:6:14: error: image frames/pipe.png is a FIFO (named pipe), "
        "not an image file (at shots[0].images[0])\n"
    )


def test_a_device_as_image_is_refused(project: Path) -> None:
    """/dev/zero would pass any size check taken before reading: it is not a regular file."""
    manifest = manifest_with(project, "/dev/zero")
    result = shotrunner("validate", str(manifest), cwd=project)
    assert result.returncode == 2
    assert "image /dev/zero is a device, not an image file" in result.stderr


def test_the_size_cap_counts_bytes_read_not_what_fstat_says(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that grows past the cap after its size was taken (here: fstat reporting less
    than what is read) is still refused."""
    big = project / "frames" / "big.png"
    big.write_bytes(tiny_png() + b"\0" * MAX_IMAGE_BYTES)
    real_fstat = os.fstat

    def shrinking(fd: int) -> os.stat_result:
        info = real_fstat(fd)
        return os.stat_result((*info[:6], 1024, *info[7:]))

    monkeypatch.setattr("runner.images.os.fstat", shrinking)
    with pytest.raises(ImageProblem, match=r"larger than the limit of 20\.0 MiB"):
        ImageResolver(project).resolve("frames/big.png")


def test_an_image_outside_the_manifests_folder_is_named_in_a_warning(
    project: Path, tmp_path: Path
) -> None:
    """``../`` out of the manifest's folder: allowed (exit 0) but named, with where it is,
    by validate and by plan."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "shared.png").write_bytes(tiny_png())
    manifest = manifest_with(project, "../library/shared.png")
    warning = (
        f"{manifest}:6:14: warning: image ../library/shared.png is outside the manifest's "
        f"folder (at {library / 'shared.png'}); it is uploaded with the shot "
        "(at shots[0].images[0])\n"
    )
    validated = shotrunner("validate", str(manifest), cwd=project)
    assert validated.returncode == 0, validated.stderr
    assert warning in validated.stderr
    planned = shotrunner("plan", str(manifest), "--out", str(tmp_path / "out"), cwd=project)
    assert planned.returncode == 0, planned.stderr
    assert warning in planned.stderr


def test_a_link_leading_out_of_the_folder_is_named_in_a_warning(
    project: Path, tmp_path: Path
) -> None:
    """A name inside the folder that is a link to a file outside it is named too."""
    outside = tmp_path / "Pictures" / "holiday.png"
    outside.parent.mkdir()
    outside.write_bytes(tiny_png())
    (project / "frames" / "innocent.png").symlink_to(outside)
    manifest = manifest_with(project, "frames/innocent.png")
    result = shotrunner("validate", str(manifest), cwd=project)
    assert result.returncode == 0, result.stderr
    assert f"outside the manifest's folder (at {outside})" in result.stderr


def test_an_absolute_path_outside_is_named_and_one_inside_is_not(
    project: Path, tmp_path: Path
) -> None:
    """An absolute path warns only when it leads out of the manifest's folder."""
    outside = tmp_path / "abs.png"
    outside.write_bytes(tiny_png())
    manifest = manifest_with(project, str(outside))
    assert (
        "outside the manifest's folder" in shotrunner("validate", str(manifest), cwd=project).stderr
    )
    inside = manifest_with(project, str(project / "frames" / "f.png"))
    result = shotrunner("validate", str(inside), cwd=project)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_an_image_path_that_holds_terminal_sequences_is_shown_escaped(
    project: Path, command: str
) -> None:
    """The path of a missing image is manifest text: its OSC (window title) and clear-screen
    sequences are printed as escapes in the located error, never as the sequences."""
    path = manifest_with(project, "frames/x\\e]0;owned\\a\\e[2J.png")
    done = shotrunner(command, str(path), cwd=project)
    assert done.returncode == 2, done.stderr
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "image file not found: frames/x\\x1b]0;owned\\x07\\x1b[2J.png" in done.stderr
