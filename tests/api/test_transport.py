"""The aiohttp transport under httpx, over real loopback sockets: which failures count as never
sent, streaming, ranges, encodings, and requests passed on exactly as httpx built them; and the
client's bounds (deadline, answer size) against servers that trickle or flood."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
import ssl
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import pytest
import trustme

from runner.api.client import ApiClient
from runner.api.errors import AuthError, DownloadError, RateLimited, TransientError
from runner.api.transport import AiohttpTransport, httpx_error
from tests.api.conftest import mp4

KEY = "sk-transport-Secret-5d6e7f"
BODY = {"model": "omni-fast", "prompt": "Ocean waves", "seconds": "4"}
TASK = b'{"id": "video_1", "object": "video", "status": "queued", "progress": 0}'
BODY_JSON = json.dumps(BODY).encode()
CLIP = mp4(4096)
Timeouts = dict[str, float | None]
TIMEOUT = httpx.Timeout(2.0, read=0.3).as_dict()

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Handler = Callable[[Reader, Writer], Awaitable[None]]


@dataclass
class Raw:
    """A loopback server running a handler per connection, recording each request it read."""

    url: str
    #: Set when the test ends: handlers that hold a connection open wait for it.
    done: asyncio.Event
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0

    async def hold(self) -> None:
        """Keep the connection open, saying nothing, until the test ends."""
        await self.done.wait()


Serve = Callable[[Handler], Awaitable[Raw]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start raw asyncio servers on port 0; at the end, their connections and servers close."""
    servers: list[asyncio.Server] = []
    done = asyncio.Event()
    writers: list[Writer] = []
    handlers: list[asyncio.Future[None]] = []

    async def start(handler: Handler) -> Raw:
        async def connected(reader: Reader, writer: Writer) -> None:
            raw.connections += 1
            writers.append(writer)
            finished = asyncio.get_running_loop().create_future()
            handlers.append(finished)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass  # the client hung up, which is how a keep-alive connection ends
            finally:
                writer.close()
                finished.set_result(None)

        server = await asyncio.start_server(connected, "127.0.0.1", 0)
        servers.append(server)
        raw = Raw(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", done)
        return raw

    yield start
    done.set()
    for writer in writers:
        writer.close()
    if handlers:
        await asyncio.wait(handlers, timeout=5)
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    """A transport, closed at the end."""
    transport = AiohttpTransport()
    yield transport
    await transport.aclose()


async def send(
    transport: AiohttpTransport,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: Timeouts = TIMEOUT,
) -> httpx.Response:
    """One request through ``transport`` as httpx hands it over (a POST carries BODY as
    JSON); the answer's body still to be read."""
    body = BODY_JSON if method == "POST" else None
    request = httpx.Request(
        method, url, headers=headers, content=body, extensions={"timeout": timeout}
    )
    return await transport.handle_async_request(request)


async def fetch(
    transport: AiohttpTransport,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: Timeouts = TIMEOUT,
) -> tuple[httpx.Response, bytes]:
    """One whole exchange through ``transport``: the answer, closed, and its body decoded."""
    response = await send(transport, method, url, headers=headers, timeout=timeout)
    try:
        return response, await response.aread()
    finally:
        await response.aclose()


@pytest.fixture
async def api() -> AsyncIterator[Callable[[Raw], ApiClient]]:
    """ApiClients on a raw server with the default transport and a short read timeout."""
    clients: list[ApiClient] = []

    def make(raw: Raw) -> ApiClient:
        client = ApiClient(
            f"{raw.url}/v1", KEY, connect_timeout=2, read_timeout=0.3, request_timeout=3
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def read_request(reader: Reader, raw: Raw) -> bytes:
    """One whole request (head and Content-Length body), recorded on ``raw``."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    request = head + await reader.readexactly(length)
    raw.requests.append(request)
    return request


def header_of(request: bytes, name: str) -> str | None:
    """A header's value in a raw request, or None."""
    for line in request.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.decode().partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def answer(status: str, body: bytes, *headers: str) -> bytes:
    """A raw HTTP/1.1 answer with a Content-Length; tests cut it short to break the body."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds, within a deadline."""
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.01)


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def full_backlog() -> Iterator[int]:
    """A port whose listen queue is full: connecting there neither succeeds nor fails."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            with suppress(BlockingIOError):
                filler.connect(listener.getsockname())
        yield listener.getsockname()[1]
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


# -- failures before sending: never sent --------------------------------------------------------


async def test_refused_connection_is_connect_error(transport: AiohttpTransport) -> None:
    """Nothing listening is httpx.ConnectError, which the client counts as never sent."""
    with pytest.raises(httpx.ConnectError):
        await fetch(transport, "POST", f"http://127.0.0.1:{free_port()}/v1/videos")


async def test_connect_timeout_is_connect_timeout(transport: AiohttpTransport) -> None:
    """A connection that is never accepted is httpx.ConnectTimeout after the connect timeout."""
    began = time.monotonic()
    with full_backlog() as port, pytest.raises(httpx.ConnectTimeout):
        url = f"http://127.0.0.1:{port}/v1/videos"
        await fetch(transport, "POST", url, timeout=httpx.Timeout(0.3).as_dict())
    assert time.monotonic() - began < 2


async def test_connect_timeout_create_is_not_sent() -> None:
    """A create whose connection never opens is TransientError(sent=False): safe to retry."""
    with full_backlog() as port:
        client = ApiClient(f"http://127.0.0.1:{port}/v1", KEY, connect_timeout=0.3)
        try:
            with pytest.raises(TransientError) as caught:
                await client.create(BODY, "k")
        finally:
            await client.aclose()
    assert caught.value.sent is False


async def test_waiting_for_a_free_connection_is_not_sent(serve: Serve) -> None:
    """With every connection busy past the pool timeout, the next request fails as never sent,
    and the server never sees it."""

    async def hold(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        await raw.hold()

    raw = await serve(hold)
    timeout = httpx.Timeout(5.0, connect=0.2, pool=0.3).as_dict()
    transport = AiohttpTransport(max_connections=1)
    try:
        first = asyncio.ensure_future(fetch(transport, "GET", f"{raw.url}/a", timeout=timeout))
        await until(lambda: len(raw.requests) == 1)
        with pytest.raises(httpx.ConnectTimeout) as caught:
            await fetch(transport, "GET", f"{raw.url}/b?sig=signature-value", timeout=timeout)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
    finally:
        await transport.aclose()
    assert [request.split(b" ")[1] for request in raw.requests] == [b"/a"]
    assert "signature-value" not in str(caught.value)


# -- failures after the connection opened: sent, the answer lost --------------------------------


async def close_before_reading(reader: Reader, writer: Writer) -> None:
    writer.close()


async def test_close_before_reading_is_not_a_connect_error(
    serve: Serve, transport: AiohttpTransport
) -> None:
    """A server that accepts and hangs up unread may still have the request: not ConnectError."""
    raw = await serve(close_before_reading)
    with pytest.raises(httpx.TransportError) as caught:
        await fetch(transport, "POST", f"{raw.url}/v1/videos")
    assert isinstance(caught.value, httpx.RemoteProtocolError | httpx.ReadError), caught.value


async def test_close_after_reading_is_remote_protocol_error(
    serve: Serve, transport: AiohttpTransport
) -> None:
    """A server that reads the request and hangs up without answering is RemoteProtocolError."""

    async def read_then_close(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)

    raw = await serve(read_then_close)
    with pytest.raises(httpx.RemoteProtocolError):
        await fetch(transport, "POST", f"{raw.url}/v1/videos")
    assert len(raw.requests) == 1


async def test_slow_answer_is_read_timeout(serve: Serve, transport: AiohttpTransport) -> None:
    """No answer within the read timeout is ReadTimeout, after about that long."""

    async def slow(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        await raw.hold()

    raw = await serve(slow)
    began = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await fetch(transport, "POST", f"{raw.url}/v1/videos")
    assert 0.25 <= time.monotonic() - began < 2


async def test_stalled_body_is_read_timeout(serve: Serve, transport: AiohttpTransport) -> None:
    """A body that stops arriving fails with ReadTimeout while streaming, after its first bytes."""

    async def stall(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
        await writer.drain()
        await raw.hold()

    raw = await serve(stall)
    received = b""
    response = await send(transport, "GET", f"{raw.url}/clip")
    try:
        with pytest.raises(httpx.ReadTimeout):
            async for chunk in response.aiter_bytes():
                received += chunk
    finally:
        await response.aclose()
    assert received == b"x" * 100


async def test_short_body_is_remote_protocol_error(
    serve: Serve, transport: AiohttpTransport
) -> None:
    """A body cut short by a hang-up is RemoteProtocolError (sent), not a quiet short read."""

    async def short(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(answer("200 OK", b"x" * 1000)[:-900])
        await writer.drain()

    raw = await serve(short)
    with pytest.raises(httpx.RemoteProtocolError):
        await fetch(transport, "GET", f"{raw.url}/clip")


async def test_garbled_answer_is_remote_protocol_error(
    serve: Serve, transport: AiohttpTransport
) -> None:
    """An answer that is not HTTP is RemoteProtocolError: the request did go out."""

    async def garble(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()

    raw = await serve(garble)
    with pytest.raises(httpx.RemoteProtocolError):
        await fetch(transport, "GET", f"{raw.url}/v1/videos/v")


@pytest.mark.parametrize("server", ["close before reading", "read then close", "slow answer"])
async def test_lost_create_answers_count_as_sent(
    serve: Serve, api: Callable[[Raw], ApiClient], server: str
) -> None:
    """Every failure after the connection opened is TransientError(sent=True) for a create."""

    async def handle(reader: Reader, writer: Writer) -> None:
        if server == "close before reading":
            return
        await read_request(reader, raw)
        if server == "slow answer":
            await raw.hold()

    raw = await serve(handle)
    with pytest.raises(TransientError) as caught:
        await api(raw).create(BODY, "k")
    assert caught.value.sent is True
    assert KEY not in f"{caught.value}{caught.value!r}"


async def test_transport_errors_keep_no_aiohttp_error(
    serve: Serve, transport: AiohttpTransport
) -> None:
    """The httpx error has no cause or context: aiohttp's would hold the request's headers."""

    async def read_then_close(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)

    raw = await serve(read_then_close)
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        await fetch(transport, "GET", f"{raw.url}/v", headers={"Authorization": f"Bearer {KEY}"})
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert "ServerDisconnectedError" in str(caught.value)


# -- what goes out and what comes back ----------------------------------------------------------


async def test_body_streams_before_it_is_whole(serve: Serve, transport: AiohttpTransport) -> None:
    """The first chunk of a body reaches the caller while the server still holds back the rest."""
    rest = asyncio.Event()

    async def two_parts(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(answer("200 OK", b"a" * 10 + b"b" * 10)[:-10])
        await writer.drain()
        await rest.wait()
        writer.write(b"b" * 10)
        await writer.drain()

    raw = await serve(two_parts)
    response = await send(transport, "GET", f"{raw.url}/clip")
    try:
        chunks = response.aiter_bytes()
        assert await anext(chunks) == b"a" * 10
        rest.set()
        assert b"".join([chunk async for chunk in chunks]) == b"b" * 10
    finally:
        await response.aclose()


async def test_download_resumes_with_range(
    serve: Serve, api: Callable[[Raw], ApiClient], tmp_path: Path
) -> None:
    """A part file is continued: the server gets ``Range: bytes=N-`` and its 206 is appended."""
    whole = mp4(10_240)

    async def ranged(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader, raw)
        start = int((header_of(request, "Range") or "bytes=0-")[6:-1])
        writer.write(
            answer(
                "206 Partial Content",
                whole[start:],
                f"Content-Range: bytes {start}-{len(whole) - 1}/{len(whole)}",
            )
        )
        await writer.drain()

    raw = await serve(ranged)
    part = tmp_path / "a.part"
    part.write_bytes(whole[:1000])
    result = await api(raw).download(f"{raw.url}/clip", part)
    assert header_of(raw.requests[0], "Range") == "bytes=1000-"
    assert part.read_bytes() == whole and result.bytes == len(whole)


async def test_stalled_download_keeps_what_arrived(
    serve: Serve, api: Callable[[Raw], ApiClient], tmp_path: Path
) -> None:
    """A download whose body stalls is a DownloadError naming ReadTimeout; its bytes stay."""

    async def stall(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(answer("200 OK", mp4(5000))[:-3000])
        await writer.drain()
        await raw.hold()

    raw = await serve(stall)
    part = tmp_path / "a.part"
    with pytest.raises(DownloadError) as caught:
        await api(raw).download(f"{raw.url}/clip", part)
    assert "ReadTimeout" in caught.value.message
    assert part.stat().st_size == 2000


async def test_encoded_body_is_decoded_once(serve: Serve, transport: AiohttpTransport) -> None:
    """A gzip body is decoded once, by its Content-Encoding, which the answer still names."""
    text = b"hello " * 100

    async def gzipped(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(answer("200 OK", gzip.compress(text), "Content-Encoding: gzip"))
        await writer.drain()

    raw = await serve(gzipped)
    response, content = await fetch(transport, "GET", f"{raw.url}/text")
    assert content == text
    assert response.headers["Content-Encoding"] == "gzip"


async def test_redirects_are_not_followed(serve: Serve, transport: AiohttpTransport) -> None:
    """A 302 comes back as it is, for the client to check where it goes and whether the key may."""

    async def redirect(reader: Reader, writer: Writer) -> None:
        while True:
            await read_request(reader, raw)
            writer.write(answer("302 Found", b"", "Location: /elsewhere"))
            await writer.drain()

    raw = await serve(redirect)
    response, _ = await fetch(transport, "GET", f"{raw.url}/clip")
    assert (response.status_code, response.headers["Location"]) == (302, "/elsewhere")
    assert len(raw.requests) == 1


async def test_request_goes_out_as_httpx_built_it(
    serve: Serve, api: Callable[[Raw], ApiClient]
) -> None:
    """The escaped path, the body and httpx's headers go out unchanged, with none of aiohttp's."""

    async def ok(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(answer("200 OK", TASK, "Content-Type: application/json"))
        await writer.drain()

    raw = await serve(ok)
    await api(raw).retrieve("a/b c")
    request = raw.requests[0]
    assert request.startswith(b"GET /v1/videos/a%2Fb%20c HTTP/1.1\r\n")
    assert (header_of(request, "User-Agent") or "").startswith("shotrunner/")
    assert header_of(request, "Authorization") == f"Bearer {KEY}"
    assert b"aiohttp" not in request.lower()
    assert header_of(request, "Content-Type") is None


async def test_create_sends_the_json_body(serve: Serve, api: Callable[[Raw], ApiClient]) -> None:
    """A create's JSON body and its Content-Type reach the server as httpx encoded them."""

    async def ok(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(answer("200 OK", TASK, "Content-Type: application/json"))
        await writer.drain()

    raw = await serve(ok)
    task = await api(raw).create(BODY, "idem-1")
    request = raw.requests[0]
    assert task.id == "video_1"
    assert header_of(request, "Content-Type") == "application/json"
    assert header_of(request, "Idempotency-Key") == "idem-1"
    assert request.endswith(httpx.Request("POST", raw.url, json=BODY).content)


async def test_connections_are_kept_alive(serve: Serve, transport: AiohttpTransport) -> None:
    """Requests one after another reuse one connection."""

    async def keep_answering(reader: Reader, writer: Writer) -> None:
        while True:
            await read_request(reader, raw)
            writer.write(answer("200 OK", b"ok"))
            await writer.drain()

    raw = await serve(keep_answering)
    for _ in range(3):
        assert (await fetch(transport, "GET", f"{raw.url}/v"))[1] == b"ok"
    assert (raw.connections, len(raw.requests)) == (1, 3)


async def test_unused_transport_closes() -> None:
    """Closing a transport that never sent anything works (its session is made on first use)."""
    transport = AiohttpTransport()
    await transport.aclose()
    await transport.aclose()


# -- creates and polls through httpx over aiohttp --------------------------------------------------


async def test_refused_create_is_not_sent() -> None:
    """A create to a port nobody listens on is TransientError(sent=False): safe to retry."""
    async with ApiClient(f"http://127.0.0.1:{free_port()}/v1", KEY) as client:
        with pytest.raises(TransientError) as caught:
            await client.create(BODY, "k")
    assert caught.value.sent is False
    assert caught.value.__cause__ is None and caught.value.__context__ is None


async def test_gzip_task_is_decoded(serve: Serve, api: Callable[[Raw], ApiClient]) -> None:
    """A poll answered with a gzip-encoded task reads as the task."""

    async def gzipped(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        headers = ("Content-Type: application/json", "Content-Encoding: gzip")
        writer.write(answer("200 OK", gzip.compress(TASK), *headers))
        await writer.drain()

    raw = await serve(gzipped)
    task = await api(raw).retrieve("video_1")
    assert (task.id, task.raw_status) == ("video_1", "queued")
    assert header_of(raw.requests[0], "Accept-Encoding") == "gzip, deflate"


async def test_error_answer_is_classified(serve: Serve, api: Callable[[Raw], ApiClient]) -> None:
    """A 429 with Retry-After over real sockets is RateLimited with the server's wait."""

    async def busy(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        body = b'{"error": {"code": "rate_limited", "message": "upstream saturated"}}'
        writer.write(answer("429 Too Many Requests", body, "Retry-After: 7"))
        await writer.drain()

    raw = await serve(busy)
    with pytest.raises(RateLimited) as caught:
        await api(raw).create(BODY, "k")
    assert caught.value.retry_after == 7
    assert "upstream saturated" in str(caught.value)


async def test_closed_client_sends_nothing(serve: Serve, api: Callable[[Raw], ApiClient]) -> None:
    """After the client is closed, a poll raises instead of opening a new session."""

    async def ok(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(answer("200 OK", TASK, "Content-Type: application/json"))
        await writer.drain()

    raw = await serve(ok)
    client = api(raw)
    await client.retrieve("video_1")
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.retrieve("video_1")
    assert len(raw.requests) == 1


# -- credentials in a download URL ---------------------------------------------------------------


async def test_user_password_in_a_clip_url_on_the_api_is_dropped(
    serve: Serve, api: Callable[[Raw], ApiClient], tmp_path: Path
) -> None:
    """A clip URL on the API's origin with a user:password downloads with the key alone, as the
    base does (aiohttp refuses an Authorization header next to credentials in the URL)."""

    async def clip(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(answer("200 OK", CLIP))
        await writer.drain()

    raw = await serve(clip)
    port = raw.url.rsplit(":", 1)[1]
    result = await api(raw).download(
        f"http://u:p@127.0.0.1:{port}/v1/videos/v/content", tmp_path / "a.part"
    )
    assert result.bytes == len(CLIP)
    assert header_of(raw.requests[0], "Authorization") == f"Bearer {KEY}"


async def test_user_password_in_a_file_host_url_goes_as_basic_auth(
    serve: Serve, api: Callable[[Raw], ApiClient], tmp_path: Path
) -> None:
    """A clip URL on another host with a user:password is fetched with those credentials as
    Basic auth (httpx's meaning of them) and never the key; aiohttp, which would refuse an
    Authorization header next to credentials in the URL, is given the URL without them."""

    async def clip(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(answer("200 OK", CLIP))
        await writer.drain()

    raw = await serve(clip)
    port = raw.url.rsplit(":", 1)[1]
    result = await api(raw).download(f"http://u:p@localhost:{port}/clip", tmp_path / "a.part")
    assert result.bytes == len(CLIP)
    assert header_of(raw.requests[0], "Authorization") == "Basic dTpw"
    assert raw.requests[0].startswith(b"GET /clip HTTP/1.1\r\n")


async def test_key_never_reaches_a_log_record_over_aiohttp(
    serve: Serve, api: Callable[[Raw], ApiClient], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """With every logger at DEBUG (aiohttp's and asyncio's included), a create, a refused poll
    that echoes the key and a download from the API's route leave no record holding it."""
    answers = [
        answer("200 OK", TASK, "Content-Type: application/json"),
        answer("401 Unauthorized", f'{{"message": "Bearer {KEY} refused"}}'.encode()),
        answer("200 OK", CLIP),
    ]

    async def in_turn(reader: Reader, writer: Writer) -> None:
        while answers:
            await read_request(reader, raw)
            writer.write(answers.pop(0))
            await writer.drain()

    raw = await serve(in_turn)
    client = api(raw)
    with caplog.at_level(logging.DEBUG):
        await client.create(BODY, "k")
        with pytest.raises(AuthError):
            await client.retrieve("video_1")
        await client.download(client.content_url("video_1"), tmp_path / "v.part")
    assert len(raw.requests) == 3
    assert all(header_of(r, "Authorization") == f"Bearer {KEY}" for r in raw.requests)
    logged = [record.getMessage() + repr(record.args) for record in caplog.records]
    assert not [line for line in logged if KEY in line]


async def test_a_create_whose_body_the_server_stops_reading_times_out(
    serve: Serve, api: Callable[[Raw], ApiClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp has no write timeout: a create whose body the server never reads is cut by the
    request's deadline, as sent (its start went out)."""
    monkeypatch.setattr("runner.api.client.MIN_UPLOAD_RATE", 10**12)

    async def never_read_the_body(reader: Reader, writer: Writer) -> None:
        raw.requests.append(await reader.readuntil(b"\r\n\r\n"))
        await raw.hold()

    raw = await serve(never_read_the_body)
    began = time.monotonic()
    with pytest.raises(TransientError) as caught:
        # Far more than loopback's socket buffers hold, so the write blocks.
        await api(raw).create({**BODY, "prompt": "x" * 64_000_000}, "k")
    assert caught.value.sent is True
    assert len(raw.requests) == 1
    # The deadline is 3 s (the body's upload time made nil), with room for a slow machine.
    assert time.monotonic() - began < 15


async def test_a_large_create_goes_whole_with_its_length(
    serve: Serve, api: Callable[[Raw], ApiClient]
) -> None:
    """A create of several megabytes (images as data URIs) is streamed, no warning raised, and
    arrives whole with its Content-Length."""
    big = {**BODY, "prompt": "y" * 3_000_000}

    async def ok(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(answer("200 OK", TASK, "Content-Type: application/json"))
        await writer.drain()

    raw = await serve(ok)
    task = await api(raw).create(big, "k")
    assert task.id == "video_1"
    sent = httpx.Request("POST", raw.url, json=big).content
    (request,) = raw.requests
    assert header_of(request, "Content-Length") == str(len(sent))
    assert request.endswith(sent)


# -- what httpx-over-aiohttp must not get wrong --------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        aiohttp.ClientConnectionError("connection lost"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        aiohttp.ClientPayloadError("Response payload is not completed"),
    ],
    ids=["connection-error", "disconnected", "reset", "payload"],
)
def test_connection_errors_of_unknown_phase_count_as_sent(error: Exception) -> None:
    """aiohttp's ClientConnectionError is the parent of failures of every phase (a server that
    read the request and hung up included): neither it nor its later-phase children may become
    a "never sent" ConnectError or ConnectTimeout."""
    mapped = httpx_error(error)
    assert not isinstance(mapped, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    assert isinstance(mapped, httpx.ReadError | httpx.RemoteProtocolError | httpx.ReadTimeout)


async def test_a_trickled_answer_is_cut_at_the_deadline_over_sockets(
    serve: Serve, api: Callable[[Raw], ApiClient]
) -> None:
    """A poll answer trickled a byte every 0.1 s (each gap under the 0.3 s read timeout) is cut
    when the whole request passes its 3 s deadline, as sent; not read for the 30 s it asks."""

    async def trickle(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Content-Length: 300\r\n\r\n")
        for _ in range(300):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.1)

    raw = await serve(trickle)
    began = time.monotonic()
    with pytest.raises(TransientError) as caught:
        await api(raw).retrieve("video_1")
    assert caught.value.sent is True
    assert "no whole answer within 3 s" in caught.value.message
    assert time.monotonic() - began < 20


async def test_a_flood_answer_is_cut_at_the_cap_over_sockets(
    serve: Serve, api: Callable[[Raw], ApiClient]
) -> None:
    """A create answered with a body that never ends (no length, close-delimited) is read only
    to the cap: TransientError(sent=True), the task may exist."""
    written = 0

    async def flood(reader: Reader, writer: Writer) -> None:
        nonlocal written
        await read_request(reader, raw)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
        while written < 512 * 1024 * 1024:
            writer.write(b"[" * 65536)
            written += 65536
            await writer.drain()

    raw = await serve(flood)
    with pytest.raises(TransientError) as caught:
        await api(raw).create(BODY, "k")
    assert caught.value.sent is True
    assert "answer over" in caught.value.message
    assert written < 64 * 1024 * 1024


def gzip_bomb(decoded_mib: int) -> bytes:
    """``decoded_mib`` MiB of zeros, gzip-compressed (about a thousandfold)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join(compressor.compress(block) for _ in range(decoded_mib)) + compressor.flush()


async def test_a_compressed_bomb_keeps_memory_small(
    serve: Serve, api: Callable[[Raw], ApiClient]
) -> None:
    """A poll answered with 128 MiB of zeros gzip-compressed to 128 KiB: the client stops at
    the answer cap, and at no moment holds more than a few MiB (httpx decodes each chunk the
    transport hands up whole, so a compressed body comes up in small chunks)."""
    bomb = gzip_bomb(128)

    async def explode(reader: Reader, writer: Writer) -> None:
        await read_request(reader, raw)
        writer.write(answer("200 OK", bomb, "Content-Encoding: gzip"))
        await writer.drain()

    raw = await serve(explode)
    client = api(raw)
    tracemalloc.start()
    try:
        with pytest.raises(TransientError) as caught:
            await client.retrieve("video_1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "answer over" in caught.value.message
    assert peak < 16 * 1024 * 1024, f"{peak:,} bytes at the peak"


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An https server for ``localhost`` whose certificate a test CA signed: its URL, and the
    CA's bundle (trusted only where a test says so). It answers every request with TASK."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))

    async def answer(reader: Reader, writer: Writer) -> None:
        with suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(TASK), TASK))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    yield f"https://localhost:{server.sockets[0].getsockname()[1]}/v1/videos/x", bundle
    server.close()
    await server.wait_closed()


async def test_https_is_verified_with_the_trusted_certificates(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transport's own TLS context verifies the server against the system's certificates,
    or SSL_CERT_FILE's: a server signed by a CA in that bundle is reached."""
    url, bundle = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    transport = AiohttpTransport()
    try:
        answer, body = await fetch(transport, "GET", url)
    finally:
        await transport.aclose()
    assert (answer.status_code, body) == (200, TASK)


async def test_https_to_an_untrusted_server_is_refused_before_sending(
    tls_server: tuple[str, Path], transport: AiohttpTransport
) -> None:
    """A certificate no trusted CA signed fails the handshake: a ConnectError (never sent)."""
    url, _ = tls_server
    with pytest.raises(httpx.ConnectError, match="cannot connect to localhost"):
        await fetch(transport, "GET", url)


def test_importing_the_transport_leaves_ssl_as_it_was() -> None:
    """aiohttp is imported without loading certificates into its unused default contexts; in a
    fresh interpreter, the contexts made afterwards still load the system's certificates."""
    script = (
        "import ssl, runner.api.transport, aiohttp.connector as c\n"
        "print(c._SSL_CONTEXT_VERIFIED.cert_store_stats()['x509_ca'],"
        " ssl.create_default_context().cert_store_stats()['x509_ca'] > 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["0", "True"]
