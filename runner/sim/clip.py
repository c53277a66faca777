"""The MP4 the simulator serves: one shipped clip, made distinct per task.

``assets/clip.mp4`` is a two-second 256x144 H.264 (constrained baseline, yuv420p) clip with
its ``moov`` box before ``mdat`` (faststart), made once with::

    ffmpeg -f lavfi -i "testsrc=size=256x144:rate=12:duration=2" -c:v libx264 \\
      -profile:v baseline -level 3.0 -pix_fmt yuv420p -crf 42 -preset veryslow \\
      -movflags +faststart -an -map_metadata -1 -fflags +bitexact -flags:v +bitexact clip.mp4

Each task's clip is that file followed by one top-level ``free`` box naming the task. Players
skip ``free`` boxes and nothing in the file points past ``mdat``, so the clip still plays; the
box's padding gives a clip any exact size, produced in chunks so that a huge clip never sits
in memory.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from importlib import resources

#: A box's size field is 32 bits; bigger boxes use the 64-bit "largesize" form.
_MAX_SMALL_BOX = 0xFFFFFFFF
_CHUNK = 256 * 1024
_ZEROS = bytes(_CHUNK)


@functools.cache
def base_clip() -> bytes:
    """The shipped clip's bytes."""
    return resources.files("runner.sim").joinpath("assets/clip.mp4").read_bytes()


def _label(task_id: str) -> bytes:
    return f"shotrunner-sim task={task_id}\n".encode()


def _box_header(box_size: int) -> bytes:
    if box_size <= _MAX_SMALL_BOX:
        return struct.pack(">I4s", box_size, b"free")
    return struct.pack(">I4sQ", 1, b"free", box_size)


def _box_size(task_id: str, clip_bytes: int | None) -> int:
    """The size of the task's ``free`` box: its label, padded so the clip has ``clip_bytes``."""
    label = len(_label(task_id))
    smallest = 8 + label
    if clip_bytes is None:
        return smallest
    wanted = clip_bytes - len(base_clip())
    if wanted > _MAX_SMALL_BOX:
        return max(wanted, 16 + label)
    return max(wanted, smallest)


def clip_size(task_id: str, clip_bytes: int | None) -> int:
    """The size of the task's clip: ``clip_bytes`` unless that is below the smallest possible."""
    return len(base_clip()) + _box_size(task_id, clip_bytes)


def iter_clip(
    task_id: str, clip_bytes: int | None, start: int = 0, stop: int | None = None
) -> Iterator[bytes]:
    """Yield the bytes ``[start, stop)`` of the task's clip in chunks of a bounded size."""
    box_size = _box_size(task_id, clip_bytes)
    head = base_clip() + _box_header(box_size) + _label(task_id)
    total = len(base_clip()) + box_size
    stop = total if stop is None else min(stop, total)
    position = start
    if position < len(head):
        piece = head[position : min(stop, len(head))]
        if piece:
            yield piece
        position += len(piece)
    while position < stop:
        size = min(_CHUNK, stop - position)
        yield _ZEROS if size == _CHUNK else _ZEROS[:size]
        position += size


def clip_bytes_of(task_id: str, clip_bytes: int | None) -> bytes:
    """The whole clip in memory: for small clips and tests."""
    return b"".join(iter_clip(task_id, clip_bytes))
