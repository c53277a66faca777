"""``runner.files`` and the clip files of ``runner.delivery``: no write goes through a link
planted in the way, nothing half-written is left behind, modes follow the umask."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.delivery import copy_to_part, move_to_history, write_sidecar
from runner.files import (
    CannotWrite,
    UnsafeFolder,
    check_batch_folder,
    folder_in,
    open_part,
    replacing,
    write_atomic,
    writing,
)

PRECIOUS = b"not yours to overwrite\n"


@pytest.fixture
def precious(tmp_path: Path) -> Path:
    path = tmp_path / "precious"
    path.write_bytes(PRECIOUS)
    return path


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def shot(tmp_path: Path) -> Path:
    """A shot folder inside a batch folder."""
    folder = tmp_path / "batch" / "s01"
    folder.mkdir(parents=True)
    return folder


def test_write_atomic_replaces_a_link_at_the_target_instead_of_writing_through_it(
    tmp_path: Path, precious: Path
) -> None:
    """A link at the target name is replaced by the new file; its target keeps its bytes."""
    target = tmp_path / "index.html"
    target.symlink_to(precious)
    write_atomic(target, b"<html>")
    assert not target.is_symlink()
    assert target.read_bytes() == b"<html>"
    assert precious.read_bytes() == PRECIOUS


def test_new_files_take_the_umask_not_a_private_mode(tmp_path: Path, umask_022: None) -> None:
    """Under umask 022 a written file is -rw-r--r--."""
    target = tmp_path / "index.html"
    write_atomic(target, b"page")
    assert stat.filemode(target.stat().st_mode) == "-rw-r--r--"


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    """An error inside ``replacing`` removes the temp file and keeps the old target."""
    target = tmp_path / "cut.csv"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"), replacing(target) as out:
        out.write(b"new, half")
        raise OSError(errno.ENOSPC, "disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.csv"]


def test_writing_turns_an_os_error_into_one_line_naming_the_path(tmp_path: Path) -> None:
    """ENOSPC reads as the disk being full, with the path it hit."""
    target = tmp_path / "clip.mp4"
    with pytest.raises(CannotWrite) as raised, writing(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert raised.value.message == f"cannot write {target}: no space left on the device"


def test_open_part_to_append_refuses_a_link(tmp_path: Path, precious: Path) -> None:
    """A clip's part file resumed by name: a link there is not opened."""
    part = tmp_path / "take-1.mp4.part"
    part.symlink_to(precious)
    with pytest.raises(OSError) as raised:
        open_part(part, append=True)
    assert raised.value.errno == errno.ELOOP
    assert precious.read_bytes() == PRECIOUS


def test_open_part_anew_removes_a_dangling_link_and_creates_a_file(tmp_path: Path) -> None:
    """A new part file where a dangling link stood: the link goes, its target is never
    created."""
    part = tmp_path / "take-1.mp4.part"
    aim = tmp_path / "elsewhere" / "created-by-the-link"
    aim.parent.mkdir()
    part.symlink_to(aim)
    with open_part(part, append=False) as out:
        out.write(b"clip")
    assert not part.is_symlink()
    assert part.read_bytes() == b"clip"
    assert not aim.exists()


def test_copy_to_part_does_not_write_through_a_planted_link(
    shot: Path, precious: Path, tmp_path: Path
) -> None:
    """Another job's copy of a clip goes into a new part file, not the planted link's
    target."""
    source = tmp_path / "source.mp4"
    source.write_bytes(b"\x00\x00\x00\x18ftypisom clip")
    (shot / "take-1.mp4.part").symlink_to(precious)
    part = copy_to_part(source, shot / "take-1.mp4")
    assert part.read_bytes() == source.read_bytes()
    assert not part.is_symlink()
    assert precious.read_bytes() == PRECIOUS


def test_copy_to_part_refuses_a_shot_folder_leading_out_of_the_batch(
    tmp_path: Path, precious: Path
) -> None:
    """A shot folder that is a link out of the batch: refused, nothing written there."""
    batch = tmp_path / "batch"
    outside = tmp_path / "outside"
    batch.mkdir()
    outside.mkdir()
    (batch / "s01").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeFolder, match="leading outside the batch folder"):
        copy_to_part(precious, batch / "s01" / "take-1.mp4")
    assert list(outside.iterdir()) == []


def test_history_that_is_a_link_out_of_the_batch_is_refused(shot: Path, tmp_path: Path) -> None:
    """``.history`` planted as a link leading out: the clip stays where it is."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (shot / ".history").symlink_to(outside, target_is_directory=True)
    clip = shot / "take-1.mp4"
    clip.write_bytes(b"paid for")
    with pytest.raises(UnsafeFolder, match=r"\.history is a symbolic link"):
        move_to_history(clip, "abc-g1")
    assert clip.read_bytes() == b"paid for"
    assert list(outside.iterdir()) == []


def test_a_sidecar_is_written_beside_a_planted_part_link(shot: Path, precious: Path) -> None:
    """``take-1.json.part`` planted as a link: the sidecar is written, the target untouched."""
    (shot / "take-1.json.part").symlink_to(precious)
    write_sidecar(shot / "take-1.mp4", {"shot": "s01"})
    assert (shot / "take-1.json").read_text() == '{\n  "shot": "s01"\n}\n'
    assert precious.read_bytes() == PRECIOUS


def test_folder_in_follows_a_link_that_stays_inside(tmp_path: Path) -> None:
    """A shot folder linked to another folder of the batch is entered."""
    batch = tmp_path / "batch"
    (batch / "real").mkdir(parents=True)
    (batch / "s01").symlink_to(batch / "real", target_is_directory=True)
    assert folder_in(batch / "s01" / ".history", batch) == batch / "s01" / ".history"
    assert (batch / "real" / ".history").is_dir()


def test_a_batch_folder_holding_a_link_out_is_refused(tmp_path: Path) -> None:
    """Any link in the batch folder leading out of it (a planted shot folder, state.db)."""
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "state.db").symlink_to(tmp_path / "somewhere-else.db")
    with pytest.raises(UnsafeFolder, match=r"state\.db is a symbolic link leading outside"):
        check_batch_folder(batch)


def test_a_sidecar_write_clears_the_leftovers_of_one_killed_half_way(shot: Path) -> None:
    """A temp file of a killed sidecar write (or the fixed part name of earlier versions) is
    removed by the next sidecar write; nothing else in the folder is."""
    for name in (".take-1.json.0123456789ab.part", "take-1.json.part", "take-2.json"):
        (shot / name).write_text("{")
    write_sidecar(shot / "take-1.mp4", {"shot": "s01"})
    assert sorted(p.name for p in shot.iterdir()) == ["take-1.json", "take-2.json"]
