"""Hostile folders end to end: links planted where shotrunner writes, read-only and full
folders, export targets that cannot be written. The real CLI in a subprocess, the real
simulator on loopback."""

from __future__ import annotations

import ctypes
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.sim import RunningSim
from tests.e2e.conftest import POLL, Batch, RunBatch, cli_env

#: What a planted link points at: a file of the victim's that must never change.
PRECIOUS = b"the victim's own file\n"
#: Capabilities that let root ignore permission bits (linux/capability.h).
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3
_PR_CAPBSET_DROP = 24


def _as_user(*, unprivileged: bool = False, fsize: int | None = None) -> Callable[[], None]:
    """What the child does before ``exec``: umask 022; ``unprivileged`` makes root obey
    permission bits (CI runs as root, which a read-only folder would not stop); ``fsize``
    caps the size of any file it writes (a full disk, where none can be mounted)."""

    def prepare() -> None:
        os.umask(0o022)
        if unprivileged and os.geteuid() == 0:
            libc = ctypes.CDLL(None, use_errno=True)
            for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
                if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "cannot drop a capability")
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return prepare


def shotrunner(
    *args: str, unprivileged: bool = False, fsize: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``shotrunner ARGS`` in a new process under umask 022, as a user (see ``_as_user``)."""
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=_as_user(unprivileged=unprivileged, fsize=fsize),
    )


def run_args(batch: Batch, sim: RunningSim) -> list[str]:
    return [
        "run",
        str(batch.manifest),
        "--out",
        str(batch.out),
        "--api-base",
        sim.base_url,
        "--poll-interval",
        POLL,
    ]


@pytest.fixture
def precious(tmp_path: Path) -> Path:
    """A file outside the batch that planted links point at."""
    path = tmp_path / "victim" / "precious.txt"
    path.parent.mkdir()
    path.write_bytes(PRECIOUS)
    return path


@pytest.fixture
def finished(sim: RunningSim, batch: Batch, run_batch: RunBatch) -> Batch:
    """The batch, run to the end: four clips delivered."""
    result = run_batch(sim.base_url)
    assert result.returncode == 0, result.stderr
    return batch


def _mode(path: Path) -> str:
    return stat.filemode(path.stat().st_mode)


def _leftovers(folder: Path) -> list[str]:
    """Temp and part files left in ``folder`` (links planted by a test aside)."""
    return sorted(
        p.name for p in folder.rglob("*part*") if not p.is_symlink() and p.name != "precious"
    )


# --- links planted in the batch ---------------------------------------------------------


def test_a_link_planted_at_a_sidecar_part_is_not_followed(
    sim: RunningSim, batch: Batch, precious: Path
) -> None:
    """A link at ``<shot>/take-1.json.part`` leaves its target untouched; the sidecar is
    written beside it."""
    (batch.out / "s01").mkdir(parents=True)
    planted = batch.out / "s01" / "take-1.json.part"
    planted.symlink_to(precious)
    result = shotrunner(*run_args(batch, sim))
    assert result.returncode == 0, result.stderr
    assert precious.read_bytes() == PRECIOUS
    assert '"shot": "s01"' in (batch.out / "s01" / "take-1.json").read_text()


def test_a_shot_folder_linked_outside_the_batch_is_refused(
    sim: RunningSim, batch: Batch, tmp_path: Path
) -> None:
    """A shot folder that is a link leading out of the batch: exit 2, a message naming it,
    nothing sent, nothing written there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    batch.out.mkdir()
    (batch.out / "s02").symlink_to(elsewhere, target_is_directory=True)
    result = shotrunner(*run_args(batch, sim))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{batch.out / 's02'} is a symbolic link leading outside the batch" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(elsewhere.iterdir()) == []
    assert sim.recorder.requests == []


def test_a_shot_folder_linked_inside_the_batch_is_used(sim: RunningSim, batch: Batch) -> None:
    """A shot folder may be a link to another folder of the same batch."""
    (batch.out / "kept").mkdir(parents=True)
    (batch.out / "s03").symlink_to(batch.out / "kept", target_is_directory=True)
    result = shotrunner(*run_args(batch, sim))
    assert result.returncode == 0, result.stderr
    assert (batch.out / "kept" / "take-1.mp4").is_file()


@pytest.mark.parametrize("target", ["s01", ".", "s01/.history", "kept"])
def test_a_shot_folder_linked_to_another_shots_folder_is_refused(
    sim: RunningSim, batch: Batch, target: str
) -> None:
    """s02 linked to s01's folder (or into it, or to the batch itself, or to where s03's
    link leads): both shots' take-1.mp4 would be one file. Exit 2, nothing sent."""
    (batch.out / "s01" / ".history").mkdir(parents=True)
    (batch.out / "kept").mkdir()
    (batch.out / "s03").symlink_to(batch.out / "kept", target_is_directory=True)
    (batch.out / "s02").symlink_to(batch.out / target, target_is_directory=True)
    result = shotrunner(*run_args(batch, sim))
    assert result.returncode == 2, result.stdout + result.stderr
    # s02 and s03 both lead to kept: whichever is listed second is named.
    assert "s02 is a symbolic link to" in result.stderr or target == "kept"
    assert "two shots would deliver their clips into one folder" in result.stderr
    assert sim.recorder.requests == []


def test_a_batch_folder_that_is_a_link_is_refused(
    sim: RunningSim, batch: Batch, tmp_path: Path
) -> None:
    """``--out`` naming a link: exit 2 with the real path to pass instead; nothing sent."""
    real = tmp_path / "real"
    real.mkdir()
    batch.out.symlink_to(real, target_is_directory=True)
    result = shotrunner(*run_args(batch, sim))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"the batch folder {batch.out} is a symbolic link" in result.stderr
    assert f"--out {real}" in result.stderr
    assert list(real.iterdir()) == []
    assert sim.recorder.requests == []


# --- what shotrunner writes: the user's umask -------------------------------------------


def test_files_are_written_with_the_users_umask(finished: Batch, tmp_path: Path) -> None:
    """Under umask 022 the contact sheet, sidecars and exported files (clips, cut list,
    timelines, animatic) are -rw-r--r--, like the clips (a temp file's -rw------- is not kept)."""
    assert shotrunner("report", str(finished.manifest), "--out", str(finished.out)).returncode == 0
    to = tmp_path / "cut"
    exported = shotrunner(
        "export",
        str(finished.manifest),
        "--out",
        str(finished.out),
        "--to",
        str(to),
        *("--format", "csv", "--format", "otio", "--format", "edl"),
    )
    assert exported.returncode == 0, exported.stderr
    written = [
        to / "cut.otio",
        to / "cut.edl",
        finished.out / "index.html",
        finished.out / "s01" / "take-1.json",
        finished.out / "s01" / "take-1.mp4",
        to / "01-s01.mp4",
        to / "cut.csv",
        to / "animatic.mp4",
    ]
    assert {path.name: _mode(path) for path in written} == {
        path.name: "-rw-r--r--" for path in written
    }


# --- export ------------------------------------------------------------------------------


def test_links_planted_in_the_export_folder_are_not_followed(
    finished: Batch, tmp_path: Path, precious: Path
) -> None:
    """Links at the export's part names leave their targets untouched; the export is whole."""
    to = tmp_path / "cut"
    to.mkdir()
    names = (".01-s01.mp4.part", ".cut.csv.part", ".animatic.part.mp4", ".animatic.mp4.part")
    for name in names:
        (to / name).symlink_to(precious)
    result = shotrunner(
        "export", str(finished.manifest), "--out", str(finished.out), "--to", str(to)
    )
    assert result.returncode == 0, result.stderr
    assert precious.read_bytes() == PRECIOUS
    assert (to / "01-s01.mp4").read_bytes() == (finished.out / "s01" / "take-1.mp4").read_bytes()
    assert (to / "cut.csv").read_text().startswith("index,shot,take")
    assert (to / "animatic.mp4").stat().st_size > 0
    assert _leftovers(to) == []


def test_export_to_a_path_under_a_file_is_one_line_exit_2(finished: Batch, tmp_path: Path) -> None:
    """``--to`` below a file: exit 2, one line naming the path and the cause."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    to = blocker / "cut"
    result = shotrunner(
        "export", str(finished.manifest), "--out", str(finished.out), "--to", str(to)
    )
    assert result.returncode == 2
    cause = "a file is in the way where a folder must be"
    assert result.stderr == f"error: cannot write {to}: {cause}\n"


def test_export_to_a_read_only_folder_is_one_line_exit_2_and_leaves_nothing(
    finished: Batch, tmp_path: Path
) -> None:
    """``--to`` a folder the user cannot write: exit 2, one line, no part file; once it is
    writable, the same export goes through."""
    to = tmp_path / "cut"
    to.mkdir()
    to.chmod(0o555)
    args = ("export", str(finished.manifest), "--out", str(finished.out), "--to", str(to))
    result = shotrunner(*args, unprivileged=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: cannot write {to / '01-s01.mp4'}: Permission denied\n"
    assert list(to.iterdir()) == []
    to.chmod(0o755)
    again = shotrunner(*args, unprivileged=True)
    assert again.returncode == 0, again.stderr
    assert (to / "04-s04.mp4").is_file()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a small tmpfs filled to the last byte (skipped where nothing can be
    mounted); the filler is ``<folder>/filler``."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        with (
            (mount / "filler").open("wb", buffering=0) as filler,
            pytest.raises(OSError, match="No space left"),
        ):
            while True:
                filler.write(b"\0" * 4096)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_export_to_a_full_disk_is_one_line_exit_2_and_the_next_export_continues(
    finished: Batch, full_disk: Path
) -> None:
    """A disk that fills up under the export: exit 2, one line naming the file and the
    cause, no part file; once there is room, the same export goes through."""
    to = full_disk / "cut"
    args = ("export", str(finished.manifest), "--out", str(finished.out), "--to", str(to))
    result = shotrunner(*args, "--no-animatic")
    assert result.returncode == 2
    assert result.stderr == (
        f"error: cannot write {to / '01-s01.mp4'}: no space left on the device\n"
    )
    assert _leftovers(full_disk) == []
    (full_disk / "filler").unlink()
    again = shotrunner(*args, "--no-animatic")
    assert again.returncode == 0, again.stderr
    assert (to / "cut.csv").is_file()


def test_export_past_the_file_size_limit_is_one_line_exit_2(
    finished: Batch, tmp_path: Path
) -> None:
    """Where no disk can be filled, a file size limit fails the writes the same way: exit 2,
    one line, no part file left. (The batch is read-only so that reading its WAL database
    writes no shared-memory file, which the limit would refuse first.)"""
    to = tmp_path / "cut"
    _read_only(finished.out)
    args = ("export", str(finished.manifest), "--out", str(finished.out), "--to", str(to))
    result = shotrunner(*args, "--no-animatic", unprivileged=True, fsize=4096)
    assert result.returncode == 2
    assert result.stderr == f"error: cannot write {to / '01-s01.mp4'}: File too large\n"
    assert _leftovers(to) == []


# --- a read-only batch ---------------------------------------------------------------------


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o555 if path.is_dir() else 0o444)


def test_a_read_only_batch_can_be_read(finished: Batch, tmp_path: Path) -> None:
    """status, plan and export read a batch folder the user cannot write."""
    _read_only(finished.out)
    where = ("--out", str(finished.out))
    status = shotrunner("status", str(finished.manifest), *where, "--json", unprivileged=True)
    assert status.returncode == 0, status.stderr
    assert '"state": "done"' in status.stdout
    plan = shotrunner("plan", str(finished.manifest), *where, unprivileged=True)
    assert plan.returncode == 0, plan.stderr
    assert "0 task(s) to submit" in plan.stdout
    to = tmp_path / "cut"
    export = shotrunner(
        "export", str(finished.manifest), *where, "--to", str(to), unprivileged=True
    )
    assert export.returncode == 0, export.stderr
    assert (to / "04-s04.mp4").is_file()


#: A writer that commits to the WAL and is killed before it checkpoints (as ``kill -9`` would).
_KILLED_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("pragma wal_autocheckpoint=0")
conn.execute("update renders set state = 'failed', error = 'only in the WAL'")
conn.commit()
os._exit(0)
"""


def test_a_read_only_batch_is_read_with_what_waits_in_its_wal(finished: Batch) -> None:
    """A writer killed before its checkpoint left transactions in the WAL: status on the
    read-only folder still sees them (reading the database file alone would not)."""
    db = finished.out / "state.db"
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(db)], check=True)
    assert (finished.out / "state.db-wal").stat().st_size > 0
    _read_only(finished.out)
    status = shotrunner(
        "status", str(finished.manifest), "--out", str(finished.out), "--json", unprivileged=True
    )
    assert status.returncode == 0, status.stderr
    assert '"state": "failed"' in status.stdout
    assert '"state": "done"' not in status.stdout


def test_report_on_a_read_only_batch_says_why_it_cannot_write(finished: Batch) -> None:
    """report reads the store but cannot put index.html into a read-only folder: exit 2,
    one line naming the page, no traceback."""
    _read_only(finished.out)
    result = shotrunner(
        "report", str(finished.manifest), "--out", str(finished.out), unprivileged=True
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"error: cannot write {finished.out / 'index.html'}: Permission denied\n"
    )


def test_run_on_a_read_only_batch_is_refused(finished: Batch, sim: RunningSim) -> None:
    """run on a read-only batch folder: exit 2, the folder named, nothing sent."""
    _read_only(finished.out)
    sent = len(sim.recorder.requests)
    result = shotrunner(*run_args(finished, sim), unprivileged=True)
    assert result.returncode == 2
    assert f"the batch folder {finished.out} is read-only" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(sim.recorder.requests) == sent


# --- a disk that fills up during a run -------------------------------------------------------

#: A clip larger than the small disk below: its download fills the disk.
_BIG_CLIP = 2 * 1024 * 1024
#: Free bytes left on a full disk for SQLite to open a database: its shared-memory file.
_OPEN_ROOM = 36 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 1 MiB tmpfs (skipped where nothing can be mounted); ``_grow`` gives it
    room afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=16m", str(mount)], check=True)


def _part_owners(batch: Batch) -> dict[str, str]:
    with batch.db() as conn:
        return {row["path"]: row["task_id"] for row in conn.execute("select * from parts")}


def _stopped_while_downloading(batch: Batch, result: subprocess.CompletedProcess[str]) -> None:
    """The run stopped part-way on the full part file: exit 1, one line naming it; the render
    stays ``downloading`` with its part file and the part's owner record."""
    part = batch.out / "s01" / "take-1.mp4.part"
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (render,) = batch.renders()
    assert render["state"] == "downloading"
    assert part.stat().st_size > 0
    assert _part_owners(batch) == {"s01/take-1.mp4.part": render["task_id"]}
    assert batch.clips() == []


def test_a_disk_that_fills_during_a_download_stops_the_run_and_the_next_run_resumes(
    start_sim: Callable[..., RunningSim], small_disk: Path, tmp_path: Path
) -> None:
    """A clip larger than the disk: the run stops with one line naming the part file and the
    cause (exit 1), and keeps what it downloaded; once there is room, the next run fetches
    the same task's clip (nothing submitted again) and delivers it whole."""
    sim = start_sim(clip_bytes=_BIG_CLIP)
    batch = Batch(manifest=tmp_path / "batch.yaml", out=small_disk / "out", shots=[])
    batch.write({"s01": "waves at dusk"})
    result = shotrunner(*run_args(batch, sim), "-q")
    _stopped_while_downloading(batch, result)
    part = batch.out / "s01" / "take-1.mp4.part"
    assert result.stderr == f"error: cannot write {part}: no space left on the device\n"
    _grow(small_disk)
    again = shotrunner(*run_args(batch, sim))
    assert again.returncode == 0, again.stdout + again.stderr
    (clip,) = batch.clips()
    assert clip.stat().st_size == _BIG_CLIP
    assert [r["creates_sent"] for r in batch.renders()] == [1]
    assert _part_owners(batch) == {}


def test_a_file_size_limit_during_a_download_stops_the_run_and_the_next_run_resumes(
    start_sim: Callable[..., RunningSim], batch: Batch
) -> None:
    """Where no disk can be filled, a file size limit fails the download's writes the same
    way: one line, exit 1, the part kept; the next run, without the limit, delivers."""
    sim = start_sim(clip_bytes=_BIG_CLIP)
    batch.write({"s01": "waves at dusk"})
    result = shotrunner(*run_args(batch, sim), "-q", fsize=1024 * 1024)
    _stopped_while_downloading(batch, result)
    part = batch.out / "s01" / "take-1.mp4.part"
    assert result.stderr == f"error: cannot write {part}: File too large\n"
    again = shotrunner(*run_args(batch, sim))
    assert again.returncode == 0, again.stdout + again.stderr
    (clip,) = batch.clips()
    assert clip.stat().st_size == _BIG_CLIP
    assert [r["creates_sent"] for r in batch.renders()] == [1]


def test_a_state_database_on_a_full_disk_is_one_line(
    sim: RunningSim, small_disk: Path, tmp_path: Path
) -> None:
    """A disk that filled up between two runs: SQLite cannot write ``state.db`` ("database or
    disk is full"): one line naming it, no traceback, nothing sent; once there is room, the
    run goes on."""
    batch = Batch(manifest=tmp_path / "batch.yaml", out=small_disk / "out", shots=[])
    batch.write({"s01": "waves at dusk"})
    first = shotrunner(*run_args(batch, sim))
    assert first.returncode == 0, first.stdout + first.stderr
    filler = small_disk / "filler"
    with filler.open("wb", buffering=0) as out, pytest.raises(OSError, match="No space left"):
        while True:
            out.write(b"\0" * 4096)
    # Room for SQLite to open the database (its 32 KiB shared-memory file), none to grow it.
    os.truncate(filler, filler.stat().st_size - _OPEN_ROOM)
    batch.write({"s01": "waves at dusk", "s02": "a lighthouse"})
    sent = len(sim.recorder.requests)
    result = shotrunner(*run_args(batch, sim), "-q")
    assert (result.returncode, "Traceback" in result.stderr) == (1, False), result.stderr
    assert result.stderr == (
        f"error: cannot write {batch.out / 'state.db'}: no space left on the device "
        "(SQLite: database or disk is full)\n"
    )
    assert len(sim.recorder.requests) == sent
    filler.unlink()
    again = shotrunner(*run_args(batch, sim))
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(batch.clips()) == 2
