"""Image sources of a shot: local files, URLs and data URIs.

A local file is recognised by its bytes (PNG, JPEG, WebP or GIF; the name is not trusted),
capped at 20 MiB (counted as it is read) and hashed with sha256. Only regular files are read:
a FIFO, a device or a socket is refused without waiting on it. A file outside the manifest's
folder is allowed (frames kept in a shared library) but named by ``outside``, for a warning.
Files are resolved once per absolute path, so a manifest whose 10,000 shots share one image
reads it once. The data URI that a request carries is built only when the request is
(``data_uri``), so a batch never holds every image's base64 in memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

from runner.errors import InputError
from runner.model import ImageRef

MAX_IMAGE_BYTES = 20 * 1024 * 1024
_CHUNK = 1024 * 1024
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_DATA_RE = re.compile(r"^data:(image/[A-Za-z0-9.+-]+);base64,(.*)\Z", re.DOTALL)
_KNOWN = "PNG, JPEG, WebP or GIF"


class ImageProblem(Exception):
    """An image source that cannot be used; ``message`` says why, for a diagnostic."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def sniff(head: bytes) -> str | None:
    """The media type that the first bytes of an image announce, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


class ImageResolver:
    """Resolves image sources relative to one manifest's folder, caching local files."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self._files: dict[str, ImageRef | ImageProblem] = {}

    def resolve(self, source: str) -> ImageRef:
        """The ``ImageRef`` for a source as written in a manifest; raises ``ImageProblem``."""
        if source.startswith("data:"):
            return _data_image(source)
        scheme = _SCHEME_RE.match(source)
        if scheme or "://" in source:
            return _url_image(source, scheme.group(1) if scheme else "")
        return self._file_image(source)

    def outside(self, image: ImageRef) -> Path | None:
        """Where a local image really is, when that is outside the manifest's folder (by
        ``..``, an absolute path or a link leading out); None for one inside, or no file."""
        if image.kind != "file" or image.path is None:
            return None
        real = image.path.resolve()
        folder = self.base_dir.resolve()
        return None if real.is_relative_to(folder) else real

    def _file_image(self, source: str) -> ImageRef:
        if "\0" in source:
            raise ImageProblem(f"image {source!r} holds a NUL character, which no file name can")
        path = os.path.abspath(os.path.join(self.base_dir, os.path.expanduser(source)))
        cached = self._files.get(path)
        if cached is None:
            try:
                cached = _read_file_image(source, Path(path))
            except ImageProblem as problem:
                cached = problem
            self._files[path] = cached
        if isinstance(cached, ImageProblem):
            raise cached
        if cached.source != source:
            cached = ImageRef(
                source=source,
                kind="file",
                sha256=cached.sha256,
                path=cached.path,
                media_type=cached.media_type,
                size=cached.size,
            )
        return cached


def _kind_of(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _read_regular(source: str, path: Path) -> bytes:
    """The bytes of the regular file at ``path`` (a link to one is fine), at most
    ``MAX_IMAGE_BYTES``; raises ``ImageProblem`` for anything else."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; the
    # fstat below refuses it (and any other non-regular file) before a byte is read.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageProblem(f"image file not found: {source} (looked for {path})") from None
    except OSError as error:
        if os.path.isdir(path):
            raise ImageProblem(f"image {source} is a directory, not an image file") from None
        raise ImageProblem(f"cannot read image {source}: {error.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ImageProblem(f"image {source} is {_kind_of(info.st_mode)}, not an image file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > MAX_IMAGE_BYTES:
            raise ImageProblem(
                f"image {source} is {_mib(info.st_size)}; the limit is {_mib(MAX_IMAGE_BYTES)}"
            )
        # Counted as read, not taken from fstat: a file that grows while it is read cannot
        # pass the limit.
        try:
            data = handle.read(MAX_IMAGE_BYTES + 1)
        except OSError as error:
            raise ImageProblem(f"cannot read image {source}: {error.strerror}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem(f"image {source} is larger than the limit of {_mib(MAX_IMAGE_BYTES)}")
    return data


def _read_file_image(source: str, path: Path) -> ImageRef:
    data = _read_regular(source, path)
    media_type = sniff(data[:16])
    if media_type is None:
        raise ImageProblem(
            f"{source} is not a {_KNOWN} image (its bytes say so, whatever its name)"
        )
    return ImageRef(
        source=source,
        kind="file",
        sha256=hashlib.sha256(data).hexdigest(),
        path=path,
        media_type=media_type,
        size=len(data),
    )


def _url_image(source: str, scheme: str) -> ImageRef:
    if scheme.lower() not in ("http", "https"):
        shown = f"{scheme}:" if scheme else "this"
        raise ImageProblem(f"image URL {source!r}: {shown} URLs are not supported; use http(s)://")
    try:
        parts = urlsplit(source)
    except ValueError as error:
        raise ImageProblem(f"image URL {source!r} is malformed: {error}") from None
    if not parts.hostname or any(c.isspace() for c in source):
        raise ImageProblem(f"image URL {source!r} is malformed: it needs a host and no spaces")
    return ImageRef(source=source, kind="url")


def _data_image(source: str) -> ImageRef:
    shown = source[:40] + ("…" if len(source) > 40 else "")
    match = _DATA_RE.match(source)
    if match is None:
        raise ImageProblem(f"bad data URI {shown!r}: expected data:image/<type>;base64,<bytes>")
    declared, payload = match.groups()
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES + 3:
        raise ImageProblem(f"data URI image is larger than the limit of {_mib(MAX_IMAGE_BYTES)}")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageProblem(f"bad data URI {shown!r}: its payload is not valid base64") from None
    media_type = sniff(data[:16])
    if media_type is None:
        raise ImageProblem(f"bad data URI {shown!r}: its bytes are not a {_KNOWN} image")
    if declared.lower().replace("image/jpg", "image/jpeg") != media_type:
        raise ImageProblem(
            f"bad data URI {shown!r}: it says {declared} but its bytes are {media_type}"
        )
    return ImageRef(
        source=source,
        kind="data",
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=media_type,
        size=len(data),
    )


def data_uri(image: ImageRef) -> str:
    """What a request carries for ``image``: a local file's bytes read now, else its source.

    Raises ``InputError`` when a local file vanished or changed since it was validated,
    since sending other bytes than the fingerprint promised would render the wrong clip.
    """
    if image.kind != "file" or image.path is None:
        return image.source
    try:
        data = _read_regular(image.source, image.path)
    except ImageProblem as problem:
        raise InputError(
            f"image {image.source} can no longer be read ({problem.message}); "
            "validate the manifest again"
        ) from None
    if hashlib.sha256(data).hexdigest() != image.sha256:
        raise InputError(
            f"image {image.source} changed after the manifest was validated; "
            "run the command again to use its new content"
        )
    return f"data:{image.media_type};base64,{base64.b64encode(data).decode('ascii')}"
