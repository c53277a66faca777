"""How shotrunner writes files: never through a link planted in its way.

A batch folder may be shared with other users, and an export folder may be anyone's. A
symbolic link planted where shotrunner is about to write (``take-1.json.part``,
``.cut.csv.part``, a shot folder) would otherwise send the bytes to the link's target. So:

- a file is written under a new, randomly named temp file in its own folder, created with
  ``O_CREAT|O_EXCL|O_NOFOLLOW``, then renamed over the target (``replacing``,
  ``write_atomic``, ``copy_atomic``); a rename replaces a link, it never writes through it;
- a part file with a fixed name (a clip's ``.part``, resumed by name) is opened with
  ``O_NOFOLLOW`` and must be a regular file; a new one is created exclusively (``open_part``);
- a folder shotrunner creates or enters below the batch folder (a shot folder, ``.history``)
  must be a real folder or a link that stays inside the batch (``folder_in``); the batch
  folder itself must be a real folder (``check_batch_folder``);
- files get the permissions of the user's umask (``-rw-r--r--`` under umask 022), as any
  program's ``open`` would, not the ``-rw-------`` of ``tempfile``.

A failure to write is ``CannotWrite``: one line naming the path and the cause (exit 2); in a
run, ``NotWritten`` with the same line (exit 1: stopped part-way, the next run continues).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO

from runner.errors import InputError, NotWritten

#: New files: read and write for all, less the user's umask (applied by the kernel).
_FILE_MODE = 0o666
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class UnsafeFolder(InputError):
    """A folder shotrunner would write into is a link leading out of the batch (exit 2)."""


class CannotWrite(InputError):
    """A file or folder could not be written: read-only, not a folder, disk full (exit 2)."""

    def __init__(self, path: Path, cause: str) -> None:
        super().__init__(f"cannot write {path}: {cause}")
        self.path = path


def cannot_write(path: Path, error: OSError) -> CannotWrite:
    """The one-line ``CannotWrite`` for an ``OSError`` met while writing ``path``."""
    cause = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        cause = "no space left on the device"
    elif error.errno == errno.EDQUOT:
        cause = "the disk quota is exceeded"
    elif error.errno in (errno.ENOTDIR, errno.EEXIST) and not _is_folder(path):
        cause = "a file is in the way where a folder must be"
    elif error.errno == errno.EROFS:
        cause = "the file system is read-only"
    return CannotWrite(path, cause)


@contextlib.contextmanager
def writing(path: Path, *, run: bool = False) -> Iterator[None]:
    """``with writing(path):`` an ``OSError`` met in the block becomes ``CannotWrite`` naming
    ``path``, so the user reads one line and no traceback. ``run=True`` is a run's write (a
    clip, a part file): the same line as ``NotWritten`` (exit 1), a run stopped part-way
    that the next one continues, rather than a command refused."""
    try:
        yield
    except OSError as error:
        problem = cannot_write(path, error)
        if run:
            raise NotWritten(problem.message) from None
        raise problem from None


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


# --- files --------------------------------------------------------------------------------


def create_new(path: Path) -> IO[bytes]:
    """Open a file that must not exist yet, for writing; a link there is never followed."""
    fd = os.open(path, _CREATE, _FILE_MODE)
    return os.fdopen(fd, "wb")


def _temp_beside(target: Path) -> tuple[Path, IO[bytes]]:
    """A new file with a random name in ``target``'s folder (hidden, ending in ``.part``)."""
    while True:
        temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
        try:
            return temp, create_new(temp)
        except FileExistsError:
            continue


@contextlib.contextmanager
def replacing(target: Path) -> Iterator[IO[bytes]]:
    """``with replacing(target) as out:`` what is written to ``out`` becomes ``target`` whole
    when the block ends, or not at all: on any failure the temp file is removed."""
    temp, out = _temp_beside(target)
    try:
        yield out
        out.close()
        os.replace(temp, target)
    except BaseException:
        out.close()
        temp.unlink(missing_ok=True)
        raise


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` as ``target``, whole or not at all, through a new temp file."""
    with replacing(target) as out:
        out.write(data)


def copy_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target``, whole or not at all, through a new temp file."""
    with source.open("rb") as src, replacing(target) as out:
        shutil.copyfileobj(src, out, 1 << 20)


def open_part(part: Path, *, append: bool) -> IO[bytes]:
    """A clip's part file (a fixed name, resumed by name), opened without following a link.

    ``append`` continues the regular file there; otherwise whatever is there (an old part, a
    planted link) is removed (a link itself, never its target) and a new file created.
    """
    if append:
        fd = os.open(part, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "not a regular file", str(part))
        return os.fdopen(fd, "ab")
    with contextlib.suppress(FileNotFoundError):
        part.unlink()
    return create_new(part)


# --- folders ------------------------------------------------------------------------------


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def folder_in(folder: Path, root: Path) -> Path:
    """Create or enter ``folder``, a folder below ``root`` (a shot folder, ``.history``).

    Every part below ``root`` must be a real folder, or a link whose target stays inside
    ``root``; a link leading out raises ``UnsafeFolder``. Missing folders are created one
    by one (``mkdir`` never follows a link: a name taken by one fails and is checked).
    """
    relative = folder.relative_to(root)
    real_root = root.resolve()
    current = root
    for name in relative.parts:
        current = current / name
        try:
            os.mkdir(current)
            continue
        except FileExistsError:
            pass
        if current.is_symlink():
            target = current.resolve()
            if not _inside(target, real_root):
                raise UnsafeFolder(
                    f"{current} is a symbolic link leading outside the batch folder "
                    f"{root} (to {target}); shotrunner does not write through it"
                )
        if not current.is_dir():
            raise OSError(errno.ENOTDIR, "not a folder", str(current))
    return folder


def check_batch_folder(output_dir: Path) -> None:
    """Refuse a batch folder that is itself a link, or that holds a link leading out of it.

    The batch folder is the user's to name: a link there could have been planted by anyone
    who can write its parent, so its real path must be given instead. Inside it, shot
    folders may be links only to folders inside the batch; a link leading out (planted as a
    shot folder, say) would send clips elsewhere. One ``scandir``: no ``stat`` per entry.
    """
    if output_dir.is_symlink():
        target = output_dir.resolve()
        raise UnsafeFolder(
            f"the batch folder {output_dir} is a symbolic link (to {target}); shotrunner "
            f"writes only into a real folder: pass --out {target} if that is the batch"
        )
    try:
        entries = list(os.scandir(output_dir))
    except OSError:  # not there yet, or not a folder: creating it will say so
        return
    real_root = output_dir.resolve()
    for entry in entries:
        if entry.is_symlink():
            target = Path(entry.path).resolve()
            if not _inside(target, real_root):
                raise UnsafeFolder(
                    f"{entry.path} is a symbolic link leading outside the batch folder "
                    f"(to {target}); remove it, or make it a real folder"
                )


def check_shot_folders(output_dir: Path, shot_ids: Collection[str]) -> None:
    """Refuse a shot folder that is a link to another shot's folder, into it, to the batch
    folder itself, or to the folder another shot's link leads to: two shots would deliver
    their clips (``take-1.mp4``, its sidecar) under the same names, each run undoing the
    last. A link to a folder no shot names stays allowed. One ``scandir``, as
    ``check_batch_folder``."""
    try:
        links = [entry for entry in os.scandir(output_dir) if entry.is_symlink()]
    except OSError:
        return
    real_root = output_dir.resolve()
    ids = set(shot_ids)
    taken: dict[Path, str] = {}
    for entry in links:
        if entry.name not in ids:
            continue
        real = Path(entry.path).resolve()
        if not _inside(real, real_root):
            continue  # check_batch_folder refuses it
        parts = real.relative_to(real_root).parts
        if not parts:
            whose = "the batch folder itself"
        elif parts[0] != entry.name and parts[0] in ids:
            whose = f"the folder of shot {parts[0]}"
        elif real in taken:
            whose = f"the folder shot {taken[real]}'s link leads to"
        else:
            taken[real] = entry.name
            continue
        raise UnsafeFolder(
            f"{entry.path} is a symbolic link to {real}, {whose}: two shots would deliver "
            "their clips into one folder; remove the link"
        )


def make_batch_folder(output_dir: Path) -> None:
    """Create the batch folder (and missing parents) as a real folder; see
    ``check_batch_folder``. Raises ``UnsafeFolder`` or ``CannotWrite``."""
    check_batch_folder(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise cannot_write(output_dir, error) from None
    # Created by another process between the check and the mkdir: checked again.
    check_batch_folder(output_dir)


def writable_folder(folder: Path) -> bool:
    """Whether this process may create files in ``folder`` (permissions and a read-only
    mount both count)."""
    return os.access(folder, os.W_OK | os.X_OK)
