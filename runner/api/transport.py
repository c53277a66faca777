"""Sending the client's requests over one aiohttp session, and what its failures mean.

httpcore's connection pool spends 1.3-2.0 ms of CPU per request with a hundred requests in
flight (it walks every pooled connection on each request and response); aiohttp's spends about
0.1 ms, and httpx's request and response objects on top of it cost as much again. So the
client calls ``AiohttpTransport.open``, which sends one request straight through aiohttp and
returns an ``Opened`` answer whose body is still to be read; ``open_over`` does the same over
any httpx transport (tests use ``httpx.MockTransport``), so the client's code is one and the
same in tests and in a run.

What this module owns is the meaning of a failure. The client counts ``httpx.ConnectError``,
``ConnectTimeout`` and ``PoolTimeout`` as "never sent" (a create may be retried without a
second charge) and every other transport error as "sent, the answer was lost". So only
failures that aiohttp raises before a byte of the request was written (name resolution, a
refused or timed-out connection, the wait for a free connection) become ``ConnectError`` or
``ConnectTimeout``; anything later, or of unknown phase, becomes ``RemoteProtocolError``,
``ReadError`` or ``ReadTimeout``.
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
import httpx
from yarl import URL

from runner.api.proxies import check_proxy, proxies_from_environment, proxy_for
from runner.errors import ConfigError

#: httpx's own default pool size (``httpx.Limits(max_connections=100)``).
DEFAULT_MAX_CONNECTIONS = 100
#: httpx's default keep-alive expiry: an idle connection is dropped before a typical
#: server closes it, so that a request is rarely written onto a connection being closed.
DEFAULT_KEEPALIVE_EXPIRY = 5.0
_CHUNK = 64 * 1024
#: Bodies above this many bytes are sent as a stream (aiohttp's own threshold for a warning).
_LARGE_BODY = 1024 * 1024
# aiohttp would add its own Accept, Accept-Encoding, User-Agent and Content-Type where a request
# lacks them; the client's headers are sent as they are.
_NO_AUTO_HEADERS = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})


#: httpx's timeout extension: ``connect``, ``read``, ``write`` and ``pool`` in seconds.
Timeouts = Mapping[str, float | None]
Headers = Mapping[str, str]


class Opened(Protocol):
    """An answer whose status line and headers have come; its body is still to be read.

    Failures while reading are httpx's transport errors, mapped as this module says.
    Closing gives the connection back (or drops it, if unread body is still on it).
    """

    @property
    def status(self) -> int: ...

    @property
    def reason(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def iter_bytes(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes: ...

    async def aclose(self) -> None: ...


async def open_over(
    transport: httpx.AsyncBaseTransport,
    method: str,
    url: str,
    headers: Headers,
    body: bytes | None,
    timeout: Timeouts,
) -> Opened:
    """Send one request through any httpx transport; its body decodes by Content-Encoding."""
    request = httpx.Request(
        method, url, headers=headers, content=body, extensions={"timeout": dict(timeout)}
    )
    response = await transport.handle_async_request(request)
    response.request = request
    return _HttpxOpened(response)


class _HttpxOpened:
    __slots__ = ("_response",)

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def reason(self) -> str:
        return self._response.reason_phrase

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return self._response.aiter_bytes()

    async def read(self) -> bytes:
        return await self._response.aread()

    async def aclose(self) -> None:
        await self._response.aclose()


class AiohttpTransport:
    """Send requests over one ``aiohttp.ClientSession``, made on first use.

    Redirects are never followed here. Timeouts are httpx's, given with each request:
    ``connect`` bounds making the connection, ``read`` each wait
    for bytes (headers or the next chunk of a body), and ``pool`` plus ``connect`` the wait for
    a free connection and the connecting together (aiohttp times the two as one). aiohttp has
    no write timeout, so a request with a body (a create) gets a total one instead
    (``total_for_body``): a server that stops reading it cannot hold the request forever.
    """

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        # Read once: the environment does not change during a run.
        self._proxies = proxies_from_environment()
        self._proxy_of_host: dict[str, str | None] = {}

    def _open_session(self) -> aiohttp.ClientSession:
        # Made here, inside the running loop: aiohttp binds a session to the loop it is made in.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections, keepalive_timeout=self._keepalive_expiry
                ),
                # The key is the credential: no cookie is kept or sent to any host.
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=_NO_AUTO_HEADERS,
                trust_env=False,
                raise_for_status=False,
            )
        return self._session

    async def open(
        self,
        method: str,
        url: str,
        headers: Headers,
        body: bytes | None,
        timeout: Timeouts,
    ) -> Opened:
        """Send one request straight through aiohttp; the answer's body is still to be read.

        ``url`` must already be encoded: it is sent exactly as it is (re-quoting would change
        escaped task ids). The request carries exactly ``headers``; aiohttp adds only Host and
        Content-Length. The body is decoded by its ``Content-Encoding``.
        """
        session = self._open_session()
        failure: httpx.TransportError
        try:
            target = URL(url, encoded=True)
            response = await session.request(
                method,
                target,
                headers=headers,
                # aiohttp writes a large bytes body in one go (and warns); a stream goes in
                # chunks. Creates carry images as data URIs, so they can be megabytes.
                data=io.BytesIO(body) if body and len(body) > _LARGE_BODY else body,
                allow_redirects=False,
                proxy=self._proxy(target),
                timeout=_client_timeout(
                    timeout.get("connect"),
                    timeout.get("pool"),
                    timeout.get("read"),
                    total_for_body(timeout, len(body)) if body else None,
                ),
            )
        except (aiohttp.ClientError, OSError) as error:
            failure = httpx_error(error)
        else:
            return _AiohttpOpened(response)
        # Raised outside the ``except``: aiohttp's error (whose request_info holds the headers,
        # Authorization included) does not travel along as the context.
        raise failure

    def _proxy(self, url: URL) -> str | None:
        if url.scheme != "https" or not self._proxies:
            return None
        key = f"{url.host}:{url.port}"
        if key not in self._proxy_of_host:
            try:
                check_proxy(str(url), self._proxies)
            except ConfigError as error:
                raise httpx.UnsupportedProtocol(error.message) from None
            self._proxy_of_host[key] = proxy_for(str(url), self._proxies)
        return self._proxy_of_host[key]

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class _AiohttpOpened:
    __slots__ = ("_response", "headers", "reason", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.reason = response.reason or ""
        self.headers: Mapping[str, str] = response.headers

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        content = self._response.content
        failure: httpx.TransportError
        try:
            while chunk := await content.read(_CHUNK):
                yield chunk
            return
        except (aiohttp.ClientError, OSError) as error:
            failure = httpx_error(error)
        raise failure

    async def read(self) -> bytes:
        failure: httpx.TransportError
        try:
            return await self._response.read()
        except (aiohttp.ClientError, OSError) as error:
            failure = httpx_error(error)
        raise failure

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            # The rest of the body is still on the connection: it cannot carry another request.
            self._response.close()


def httpx_error(error: BaseException) -> httpx.TransportError:
    """The httpx error for an aiohttp failure: "never sent" kinds only before sending began.

    The message names aiohttp's error and what happened, never the URL: aiohttp puts the whole
    URL, query and signature included, into some of its messages.
    """
    kind: type[httpx.TransportError]
    name = type(error).__name__
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        # aiohttp's connect timeout covers both the wait for a free connection and connecting.
        kind, detail = httpx.ConnectTimeout, "no connection within the timeout"
    elif isinstance(error, aiohttp.ClientHttpProxyError):
        # The proxy refused the tunnel (407, 403, 502...): nothing reached the API.
        kind, detail = httpx.ConnectError, f"the proxy refused the tunnel (HTTP {error.status})"
    elif isinstance(error, aiohttp.ClientConnectorError):
        # Raised only by the connector, while resolving, connecting or shaking hands (TLS).
        kind, detail = httpx.ConnectError, f"cannot connect to {error.host}:{error.port}"
        detail += f": {error.os_error.strerror or error.os_error}"
    elif isinstance(error, aiohttp.NonHttpUrlClientError):
        kind, detail = httpx.UnsupportedProtocol, "not an http(s) URL"
    elif isinstance(error, aiohttp.InvalidURL):
        kind, detail = httpx.LocalProtocolError, "unusable URL"
    elif isinstance(error, asyncio.TimeoutError):
        # aiohttp's read timeout, or a timeout of unknown phase: the request may have gone.
        kind, detail = httpx.ReadTimeout, "no data within the read timeout"
    elif isinstance(error, aiohttp.ServerDisconnectedError):
        kind, detail = httpx.RemoteProtocolError, "server disconnected without a whole answer"
    elif isinstance(error, aiohttp.ClientPayloadError):
        kind, detail = httpx.RemoteProtocolError, f"broken response body ({error})"
    elif isinstance(error, aiohttp.ClientResponseError):
        kind, detail = httpx.RemoteProtocolError, f"unreadable response ({error.message})"
    elif isinstance(error, OSError):
        # A reset or a closed transport after the connection was made: some bytes may be out.
        kind, detail = httpx.ReadError, error.strerror or str(error) or "connection error"
    else:
        kind, detail = httpx.RemoteProtocolError, str(error) or "connection error"
    return kind(f"{name}: {detail}")


#: The slowest upload a request body is given time for, in bytes per second (with
#: ``total_for_body``): an 8 MiB create with images gets 80 s more than an empty one.
MIN_UPLOAD_RATE = 100_000


def total_for_body(timeout: Timeouts, size: int) -> float | None:
    """The whole time allowed to a request with a body of ``size`` bytes: every httpx timeout
    (connect, pool, write, read) once, plus the body at ``MIN_UPLOAD_RATE``. None when any is
    unset."""
    parts = [timeout.get(name) for name in ("connect", "pool", "write", "read")]
    if any(part is None for part in parts):
        return None
    return sum(part for part in parts if part is not None) + size / MIN_UPLOAD_RATE


@functools.lru_cache(maxsize=64)
def _client_timeout(
    connect: float | None, pool: float | None, read: float | None, total: float | None = None
) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts from httpx's. No total for a request without a body, so a download
    that keeps moving is not cut; ``total`` for one with a body (see ``total_for_body``)."""
    return aiohttp.ClientTimeout(
        total=total,
        # aiohttp's ``connect`` spans the wait for a free connection and the connecting itself.
        connect=None if connect is None or pool is None else connect + pool,
        sock_connect=connect,
        sock_read=read,
    )
