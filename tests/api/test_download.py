"""Downloads against MockTransport: streaming, resume, length checks, expiry, the key's reach."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from runner.api.client import DEFAULT_MAX_CLIP_BYTES, ApiClient
from runner.api.errors import (
    ApiError,
    AuthError,
    BadClip,
    DownloadError,
    LinkExpired,
    TransientError,
)
from tests.api.conftest import BASE, FILES, KEY, Handler, answer, mp4

MakeClient = Callable[[Handler], ApiClient]
CLIP = mp4(10_240)
CLIP_URL = f"{FILES}/clips/video_1.mp4?sig=abc&expires=99"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_host(data: bytes = CLIP, *, ranges: bool = True) -> tuple[Handler, list[httpx.Request]]:
    """A file host serving ``data``, honouring ``Range: bytes=N-`` when ``ranges``."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        match = re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range", ""))
        if ranges and match:
            start = int(match.group(1))
            if start >= len(data):
                return httpx.Response(416, headers={"Content-Range": f"bytes */{len(data)}"})
            return httpx.Response(
                206,
                content=data[start:],
                headers={"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"},
            )
        return httpx.Response(200, content=data)

    return handler, seen


class BrokenStream(httpx.AsyncByteStream):
    """A body that yields ``head`` and then fails the way a dropped connection does."""

    def __init__(self, head: bytes) -> None:
        self.head = head

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        raise httpx.ReadError("connection reset")


async def test_download_writes_and_hashes_the_file(client_for: MakeClient, tmp_path: Path) -> None:
    """A plain download streams the whole body into the part file and returns its hash and size."""
    handler, _ = file_host()
    part = tmp_path / "take-1.mp4.part"
    result = await client_for(handler).download(CLIP_URL, part)
    assert part.read_bytes() == CLIP
    assert (result.sha256, result.bytes) == (sha(CLIP), len(CLIP))


async def test_download_does_not_rename(client_for: MakeClient, tmp_path: Path) -> None:
    """The part file stays where it is; renaming is the caller's job."""
    handler, _ = file_host()
    await client_for(handler).download(CLIP_URL, tmp_path / "clip" / "take-1.mp4.part")
    assert [p.name for p in (tmp_path / "clip").iterdir()] == ["take-1.mp4.part"]


async def test_download_reports_progress(client_for: MakeClient, tmp_path: Path) -> None:
    """on_progress sees the bytes so far rising to the total, with the total known."""
    handler, _ = file_host()
    calls: list[tuple[int, int | None]] = []
    await client_for(handler).download(
        CLIP_URL, tmp_path / "a.part", on_progress=lambda done, total: calls.append((done, total))
    )
    assert calls[-1] == (len(CLIP), len(CLIP))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


async def test_no_key_to_another_origin(client_for: MakeClient, tmp_path: Path) -> None:
    """A download from the file host carries no Authorization header."""
    handler, seen = file_host()
    await client_for(handler).download(CLIP_URL, tmp_path / "a.part")
    assert "Authorization" not in seen[0].headers


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.test/v1/videos/v/content",  # other scheme
        "https://api.example.test:8443/v1/videos/v/content",  # other port
        "https://sub.api.example.test/v1/videos/v/content",  # other host
    ],
)
async def test_no_key_to_a_near_origin(client_for: MakeClient, tmp_path: Path, url: str) -> None:
    """Scheme, host and port must all match the API's for the key to go along."""
    handler, seen = file_host()
    await client_for(handler).download(url, tmp_path / "a.part")
    assert "Authorization" not in seen[0].headers


async def test_content_route_carries_the_key(client_for: MakeClient, tmp_path: Path) -> None:
    """The gateway's /content route is on the API origin, so it gets the key."""
    handler, seen = file_host()
    client = client_for(handler)
    await client.download(client.content_url("video_1"), tmp_path / "a.part")
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert client.content_url("video_1") == str(seen[0].url)


async def test_no_key_after_a_cross_origin_redirect(client_for: MakeClient, tmp_path: Path) -> None:
    """/content redirecting to the file host: the key goes to the API hop only."""
    serve, seen = file_host()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example.test":
            seen.append(request)
            return httpx.Response(302, headers={"Location": CLIP_URL})
        return serve(request)

    client = client_for(handler)
    result = await client.download(client.content_url("video_1"), tmp_path / "a.part")
    api_hop, file_hop = seen
    assert api_hop.headers["Authorization"] == f"Bearer {KEY}"
    assert file_hop.url.host == "files.example.test"
    assert "Authorization" not in file_hop.headers
    assert result.sha256 == sha(CLIP)
    assert client.requests_sent == 2


async def test_relative_redirects_are_followed(client_for: MakeClient, tmp_path: Path) -> None:
    """A relative Location is resolved against the URL that gave it."""
    serve, seen = file_host()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old.mp4":
            return httpx.Response(307, headers={"Location": "/clips/new.mp4"})
        return serve(request)

    await client_for(handler).download(f"{FILES}/old.mp4", tmp_path / "a.part")
    assert str(seen[0].url) == f"{FILES}/clips/new.mp4"


async def test_redirect_loop_is_a_download_error(client_for: MakeClient, tmp_path: Path) -> None:
    """Endless redirects end in DownloadError instead of spinning."""
    handler = answer(302, headers={"Location": CLIP_URL})
    with pytest.raises(DownloadError):
        await client_for(handler).download(CLIP_URL, tmp_path / "a.part")


async def test_redirect_to_an_unusable_url_is_an_api_error(
    client_for: MakeClient, tmp_path: Path
) -> None:
    """A Location that is not a URL (a non-numeric port) is an ApiError, not an httpx error."""
    handler = answer(302, headers={"Location": "http://files.example.test:port/x.mp4"})
    with pytest.raises(ApiError) as caught:
        await client_for(handler).download(CLIP_URL, tmp_path / "a.part")
    assert "Invalid port" in caught.value.message


async def test_resume_sends_range_and_hashes_the_whole(
    client_for: MakeClient, tmp_path: Path
) -> None:
    """An existing part file is continued with Range; the hash covers the resumed prefix too."""
    handler, seen = file_host()
    part = tmp_path / "a.part"
    part.write_bytes(CLIP[:4000])
    result = await client_for(handler).download(CLIP_URL, part)
    assert seen[0].headers["Range"] == "bytes=4000-"
    assert part.read_bytes() == CLIP
    assert (result.sha256, result.bytes) == (sha(CLIP), len(CLIP))


async def test_resume_progress_starts_at_the_prefix(client_for: MakeClient, tmp_path: Path) -> None:
    """Progress of a resumed download counts the bytes already on disk."""
    handler, _ = file_host()
    part = tmp_path / "a.part"
    part.write_bytes(CLIP[:4000])
    calls: list[tuple[int, int | None]] = []
    await client_for(handler).download(
        CLIP_URL, part, on_progress=lambda done, total: calls.append((done, total))
    )
    assert calls[0] == (4000, len(CLIP))


async def test_200_to_a_range_request_restarts(client_for: MakeClient, tmp_path: Path) -> None:
    """A server that ignores Range sends the whole file; the part file starts over cleanly."""
    handler, seen = file_host(ranges=False)
    part = tmp_path / "a.part"
    part.write_bytes(b"stale bytes from an older try")
    result = await client_for(handler).download(CLIP_URL, part)
    assert seen[0].headers["Range"] == "bytes=29-"
    assert part.read_bytes() == CLIP
    assert result.sha256 == sha(CLIP)


async def test_no_range_without_a_part_file(client_for: MakeClient, tmp_path: Path) -> None:
    """A fresh download asks for the whole file."""
    handler, seen = file_host()
    await client_for(handler).download(CLIP_URL, tmp_path / "a.part")
    assert "Range" not in seen[0].headers


async def test_206_from_the_wrong_offset_discards_the_part(
    client_for: MakeClient, tmp_path: Path
) -> None:
    """A 206 that does not start where the part file ends: DownloadError, part file removed."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            206, content=CLIP[10:], headers={"Content-Range": "bytes 10-10239/10240"}
        )

    part = tmp_path / "a.part"
    part.write_bytes(CLIP[:4000])
    with pytest.raises(DownloadError):
        await client_for(handler).download(CLIP_URL, part)
    assert not part.exists()


async def test_416_with_a_whole_part_file_is_done(client_for: MakeClient, tmp_path: Path) -> None:
    """A part file already as long as the clip (416, size matches) is hashed and returned."""
    handler, _ = file_host()
    part = tmp_path / "a.part"
    part.write_bytes(CLIP)
    result = await client_for(handler).download(CLIP_URL, part)
    assert (result.sha256, result.bytes) == (sha(CLIP), len(CLIP))


async def test_416_with_an_oversized_part_restarts(client_for: MakeClient, tmp_path: Path) -> None:
    """A part file longer than the clip cannot be trusted: DownloadError, part file removed."""
    handler, _ = file_host()
    part = tmp_path / "a.part"
    part.write_bytes(CLIP + b"junk")
    with pytest.raises(DownloadError):
        await client_for(handler).download(CLIP_URL, part)
    assert not part.exists()


async def test_short_body_is_a_download_error(client_for: MakeClient, tmp_path: Path) -> None:
    """A body shorter than Content-Length raises DownloadError (transient, sent)."""
    handler = answer(200, content=CLIP[:5000], headers={"Content-Length": str(len(CLIP))})
    with pytest.raises(DownloadError) as caught:
        await client_for(handler).download(CLIP_URL, tmp_path / "a.part")
    assert isinstance(caught.value, TransientError)
    assert caught.value.sent is True
    assert "5000 of 10240" in caught.value.message


async def test_short_body_leaves_a_resumable_part(client_for: MakeClient, tmp_path: Path) -> None:
    """After a short body the next download continues from where it stopped."""
    answers = iter(["short", "rest"])
    serve, seen = file_host()

    def handler(request: httpx.Request) -> httpx.Response:
        if next(answers) == "short":
            return httpx.Response(200, content=CLIP[:6000], headers={"Content-Length": "10240"})
        return serve(request)

    client = client_for(handler)
    part = tmp_path / "a.part"
    with pytest.raises(DownloadError):
        await client.download(CLIP_URL, part)
    result = await client.download(CLIP_URL, part)
    assert seen[0].headers["Range"] == "bytes=6000-"
    assert result.sha256 == sha(CLIP)


async def test_long_body_is_a_download_error(client_for: MakeClient, tmp_path: Path) -> None:
    """A body longer than Content-Length raises DownloadError and discards the part file."""
    handler = answer(200, content=CLIP + b"extra", headers={"Content-Length": str(len(CLIP))})
    part = tmp_path / "a.part"
    with pytest.raises(DownloadError):
        await client_for(handler).download(CLIP_URL, part)
    assert not part.exists()


async def test_broken_stream_keeps_what_arrived(client_for: MakeClient, tmp_path: Path) -> None:
    """A connection dropped mid-body is a DownloadError; the bytes received stay for a resume."""
    length = {"Content-Length": str(len(CLIP))}
    handler = answer(200, stream=BrokenStream(CLIP[:3000]), headers=length)
    part = tmp_path / "a.part"
    with pytest.raises(DownloadError) as caught:
        await client_for(handler).download(CLIP_URL, part)
    assert caught.value.sent is True
    assert part.read_bytes() == CLIP[:3000]


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_expired_link(client_for: MakeClient, tmp_path: Path, status: int) -> None:
    """403, 404 and 410 on a download mean the signed URL expired: LinkExpired."""
    handler = answer(status, text="Signature expired")
    with pytest.raises(LinkExpired) as caught:
        await client_for(handler).download(CLIP_URL, tmp_path / "a.part")
    assert caught.value.status == status
    assert "Signature expired" in caught.value.message
    assert "sig=abc" not in caught.value.message


async def test_403_on_content_route_is_an_expired_link(
    client_for: MakeClient, tmp_path: Path
) -> None:
    """Even on the API origin, a download's 403 is an expired link, not a bad key."""
    handler = answer(403)
    client = client_for(handler)
    with pytest.raises(LinkExpired):
        await client.download(client.content_url("v"), tmp_path / "a.part")


async def test_401_on_content_route_is_auth(client_for: MakeClient, tmp_path: Path) -> None:
    """A 401 from the API's own /content route means the key was refused."""
    handler = answer(401)
    client = client_for(handler)
    with pytest.raises(AuthError):
        await client.download(client.content_url("v"), tmp_path / "a.part")


async def test_401_on_file_host_is_an_expired_link(client_for: MakeClient, tmp_path: Path) -> None:
    """The file host never saw the key, so its 401 is about the link."""
    handler = answer(401)
    with pytest.raises(LinkExpired):
        await client_for(handler).download(CLIP_URL, tmp_path / "a.part")


async def test_5xx_on_download_is_transient(client_for: MakeClient, tmp_path: Path) -> None:
    """A file host's 503 is transient and leaves any part file alone."""
    handler = answer(503)
    part = tmp_path / "a.part"
    part.write_bytes(b"abc")
    with pytest.raises(TransientError):
        await client_for(handler).download(CLIP_URL, part)
    assert part.read_bytes() == b"abc"


async def test_encoded_body_is_stored_decoded(client_for: MakeClient, tmp_path: Path) -> None:
    """A host that compresses anyway still yields the clip's own bytes on disk."""
    handler = answer(200, content=gzip.compress(CLIP), headers={"Content-Encoding": "gzip"})
    part = tmp_path / "a.part"
    result = await client_for(handler).download(CLIP_URL, part)
    assert part.read_bytes() == CLIP
    assert result.sha256 == sha(CLIP)


async def test_download_asks_for_identity_encoding(client_for: MakeClient, tmp_path: Path) -> None:
    """Downloads ask for the bytes as stored so that lengths and ranges mean what they say."""
    handler, seen = file_host()
    await client_for(handler).download(CLIP_URL, tmp_path / "a.part")
    assert seen[0].headers["Accept-Encoding"] == "identity"


async def test_partial_range_is_not_whole(client_for: MakeClient, tmp_path: Path) -> None:
    """A 206 that stops before the end of the clip is a DownloadError, keeping what arrived."""
    headers = {"Content-Range": f"bytes 4000-5999/{len(CLIP)}"}
    handler = answer(206, content=CLIP[4000:6000], headers=headers)
    part = tmp_path / "a.part"
    part.write_bytes(CLIP[:4000])
    with pytest.raises(DownloadError):
        await client_for(handler).download(CLIP_URL, part)
    assert part.read_bytes() == CLIP[:6000]


# -- what arrives must be a clip, of a bounded size ---------------------------------------------


class Counted(httpx.AsyncByteStream):
    """``total`` bytes in 64 KiB chunks starting with ``head``, no length announced; counts
    what was pulled."""

    def __init__(self, total: int, head: bytes = b"") -> None:
        self.total, self.head, self.pulled = total, head, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            chunk = (self.head if not self.pulled else b"") + bytes(65536)
            self.pulled += len(chunk)
            yield chunk


def capped(handler: Handler, cap: int) -> ApiClient:
    return ApiClient(BASE, KEY, transport=httpx.MockTransport(handler), max_clip_bytes=cap)


@pytest.mark.parametrize("with_length", [True, False])
async def test_zeros_are_not_a_clip(
    client_for: MakeClient, tmp_path: Path, with_length: bool
) -> None:
    """A body of zeros (or any body that does not start like a video) is BadClip, a
    DownloadError (download again from a fresh URL), its part file removed; the client stops
    reading it after the first chunk."""
    body = Counted(64 * 1024 * 1024)
    headers = {"Content-Length": str(body.total)} if with_length else {}
    part = tmp_path / "a.part"
    with pytest.raises(BadClip) as caught:
        await client_for(answer(200, stream=body, headers=headers)).download(CLIP_URL, part)
    assert isinstance(caught.value, DownloadError) and caught.value.sent is True
    assert not part.exists()
    assert body.pulled <= 2 * 65536


async def test_an_html_page_is_not_a_clip(client_for: MakeClient, tmp_path: Path) -> None:
    """A 200 carrying an HTML page (a captive portal, a CDN error) is BadClip."""
    page = answer(200, text="<html><title>Sign in</title></html>" * 100)
    with pytest.raises(BadClip):
        await client_for(page).download(CLIP_URL, tmp_path / "a.part")


async def test_a_tiny_body_is_not_a_clip(client_for: MakeClient, tmp_path: Path) -> None:
    """A body too short to hold a container's header is BadClip, not a 3-byte clip."""
    with pytest.raises(BadClip):
        await client_for(answer(200, content=b"abc")).download(CLIP_URL, tmp_path / "a.part")


async def test_webm_is_a_clip(client_for: MakeClient, tmp_path: Path) -> None:
    """A WebM/Matroska file (EBML header) is accepted as a media container."""
    webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + bytes(1000)
    result = await client_for(answer(200, content=webm)).download(CLIP_URL, tmp_path / "a.part")
    assert result.bytes == len(webm)


async def test_a_resumed_part_that_is_not_a_clip_is_removed(
    client_for: MakeClient, tmp_path: Path
) -> None:
    """A part file whose start is not a video (written by an older run, say) is not
    completed by a 206: BadClip, part file removed."""
    handler, _ = file_host(b"\x00" * 8 + CLIP[8:])
    part = tmp_path / "a.part"
    part.write_bytes(b"\x00" * 4000)
    with pytest.raises(BadClip):
        await client_for(handler).download(CLIP_URL, part)
    assert not part.exists()


async def test_a_whole_part_that_is_not_a_clip_is_not_done(
    client_for: MakeClient, tmp_path: Path
) -> None:
    """A 416 for a part file of the clip's size still checks what the part file holds."""
    junk = b"\x00" * len(CLIP)
    handler, _ = file_host(junk)
    part = tmp_path / "a.part"
    part.write_bytes(junk)
    with pytest.raises(BadClip):
        await client_for(handler).download(CLIP_URL, part)
    assert not part.exists()


async def test_an_unannounced_clip_over_the_cap_stops_at_the_cap(tmp_path: Path) -> None:
    """With no Content-Length, a clip is cut as soon as it passes ``max_clip_bytes``: BadClip,
    part file removed, the stream read no further."""
    body = Counted(64 * 1024 * 1024, head=CLIP[:64])
    part = tmp_path / "a.part"
    client = capped(answer(200, stream=body), cap=1024 * 1024)
    try:
        with pytest.raises(BadClip) as caught:
            await client.download(CLIP_URL, part)
    finally:
        await client.aclose()
    assert "1,048,576" in caught.value.message
    assert not part.exists()
    assert body.pulled <= 1024 * 1024 + 2 * 65536


async def test_an_announced_clip_over_the_cap_is_not_read(tmp_path: Path) -> None:
    """A Content-Length over the cap fails before a byte of the body is read."""
    body = Counted(64 * 1024 * 1024, head=CLIP[:64])
    headers = {"Content-Length": str(body.total)}
    client = capped(answer(200, stream=body, headers=headers), cap=1024 * 1024)
    try:
        with pytest.raises(BadClip):
            await client.download(CLIP_URL, tmp_path / "a.part")
    finally:
        await client.aclose()
    assert body.pulled == 0


async def test_a_clip_at_the_cap_is_whole(tmp_path: Path) -> None:
    """The cap is inclusive: a clip of exactly ``max_clip_bytes`` downloads."""
    client = capped(answer(200, content=CLIP), cap=len(CLIP))
    try:
        result = await client.download(CLIP_URL, tmp_path / "a.part")
    finally:
        await client.aclose()
    assert result.bytes == len(CLIP)


def test_the_default_cap_is_4_gib() -> None:
    """Clips up to 4 GiB download unless the client is given another cap."""
    assert DEFAULT_MAX_CLIP_BYTES == 4 * 1024**3


# -- time: the request has a deadline, the body has progress ------------------------------------


async def test_a_download_whose_headers_never_come_is_cut_at_the_deadline(tmp_path: Path) -> None:
    """A file host that holds the request without answering fails the download at the
    request deadline (DownloadError, download again)."""

    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, content=CLIP)

    transport = httpx.MockTransport(silent)
    async with ApiClient(BASE, KEY, transport=transport, request_timeout=0.3) as client:
        with pytest.raises(DownloadError) as caught:
            await client.download(CLIP_URL, tmp_path / "a.part")
    assert "no answer within 0.3 s" in caught.value.message


async def test_a_body_that_keeps_moving_outlasts_the_deadline(tmp_path: Path) -> None:
    """The deadline covers the request up to the answer's headers: a clip whose body keeps
    arriving downloads however long it takes (its pieces here span twice the deadline)."""

    class Slow(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for start in range(0, len(CLIP), 1024):
                await asyncio.sleep(0.06)
                yield CLIP[start : start + 1024]

    transport = httpx.MockTransport(answer(200, stream=Slow()))
    async with ApiClient(BASE, KEY, transport=transport, request_timeout=0.3) as client:
        result = await client.download(CLIP_URL, tmp_path / "a.part")
    assert result.sha256 == sha(CLIP)


async def test_a_clip_in_an_encoding_not_asked_for_is_not_read(
    client_for: MakeClient, tmp_path: Path
) -> None:
    """A clip body encoded as brotli (asked for as identity) is a DownloadError, unread; a
    part file from before is left as it was."""
    handler = answer(200, content=b"\x0b" * 100, headers={"Content-Encoding": "br"})
    part = tmp_path / "a.part"
    part.write_bytes(CLIP[:100])
    with pytest.raises(DownloadError) as caught:
        await client_for(handler).download(CLIP_URL, part)
    assert "not asked for" in caught.value.message
    assert part.read_bytes() == CLIP[:100]


async def test_a_link_planted_at_the_part_file_is_not_followed(
    client_for: MakeClient, tmp_path: Path
) -> None:
    """A symlink planted where the part file goes is replaced; its target is never written."""
    handler, _ = file_host()
    outside = tmp_path / "outside.txt"
    folder = tmp_path / "shot"
    folder.mkdir()
    part = folder / "take-1.mp4.part"
    part.symlink_to(outside)  # dangling: the download would create the target
    await client_for(handler).download(CLIP_URL, part)
    assert not outside.exists()
    assert not part.is_symlink()
    assert part.read_bytes() == CLIP
