"""One frame of a delivered clip, taken exactly and stored as a PNG beside the shot that uses it.

PyAV decodes in-process (its wheels ship FFmpeg's libraries, so no ffmpeg program is needed)
and encodes the PNG too. Frames are decoded in order, never sought: a seek lands on a
keyframe, and "the frame at 2.5 s" must be the frame shown at 2.5 s. ``first`` is the first
decoded frame, ``last`` the last one, a time the last frame whose presentation time is at or
before it. The PNG is written through ``runner.files`` (a new file renamed into place, never
through a link), at ``<shot>/inputs/<from-shot>-take<k>-<frame>.png``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import InputError

if TYPE_CHECKING:
    import av.video.frame

    from runner.model import ImageRef

#: Half a millisecond: a frame's time is a fraction of its stream's time base.
_EPSILON = 0.0005


def extract(clip: Path, frame: str) -> bytes:
    """The PNG bytes of ``frame`` (``first``, ``last`` or seconds) of the clip at ``clip``.

    Raises ``InputError`` when the clip cannot be decoded or the time is past its end.
    """
    import av

    try:
        with av.open(str(clip)) as container:
            if not container.streams.video:
                raise InputError(f"{clip} holds no video to take a frame from")
            chosen = _pick(container.decode(video=0), frame, clip)
            return _png(chosen)
    except av.FFmpegError as error:
        raise InputError(f"cannot take a frame from {clip}: {error}") from None


def _pick(
    frames: object,
    frame: str,
    clip: Path,
) -> av.video.frame.VideoFrame:
    chosen = None
    at = None if frame in ("first", "last") else float(frame)
    end = 0.0
    for decoded in frames:  # type: ignore[attr-defined]
        if frame == "first":
            return decoded  # type: ignore[no-any-return]
        time = float(decoded.time or 0.0)
        if at is not None and time > at + _EPSILON:
            break
        chosen = decoded
        duration = float(decoded.duration * decoded.time_base) if decoded.duration else 0.0
        end = time + duration
    if chosen is None:
        raise InputError(f"{clip} holds no frame to take")
    picked: av.video.frame.VideoFrame = chosen
    if at is not None and end > 0 and at > end - _EPSILON:
        raise InputError(f"frame {frame} s is past the end of {clip.name} ({end:g} s long)")
    return picked


def _png(frame: av.video.frame.VideoFrame) -> bytes:
    import av

    rgb = frame.reformat(format="rgb24")
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.width, rgb.height, "rgb24"
    packets = list(codec.encode(rgb)) + list(codec.encode(None))
    return b"".join(bytes(packet) for packet in packets)


def store_frame(image: ImageRef) -> bytes:
    """Take the frame an image entry names from its source clip, store it at ``image.path``
    and return its bytes."""
    from runner.files import folder_in, write_atomic

    assert image.clip_path is not None and image.path is not None and image.frame is not None
    data = extract(image.clip_path, image.frame)
    inputs = image.path.parent
    folder_in(inputs, inputs.parents[1])
    write_atomic(image.path, data)
    return data


def frame_uri(image: ImageRef) -> str:
    """The frame an image entry names, stored beside its shot and given as a data URI."""
    data = store_frame(image)
    return f"data:image/png;base64,{base64.b64encode(data).decode('ascii')}"
