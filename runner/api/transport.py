"""aiohttp underneath httpx: an ``httpx.AsyncBaseTransport`` that sends over one aiohttp session.

The client is written against ``httpx.AsyncClient``; this transport is only what moves its
requests. httpcore's connection pool spends 1.3-2.0 ms of CPU per request with a hundred
requests in flight (it walks every pooled connection on each request and response); aiohttp's
spends about 0.1 ms. Tests put ``httpx.MockTransport`` in its place, so everything above it is
the same code under test as in a run.

What this module owns is the meaning of a failure. The client counts ``httpx.ConnectError``,
``ConnectTimeout`` and ``PoolTimeout`` as "never sent" (a create may be retried without a
second charge) and every other transport error as "sent, the answer was lost". So only
failures that aiohttp raises before a byte of the request was written (name resolution, a
refused or timed-out connection, the wait for a free connection, a proxy that refuses the
tunnel) become ``ConnectError`` or ``ConnectTimeout``; anything later, or of unknown phase,
becomes ``RemoteProtocolError``, ``ReadError`` or ``ReadTimeout``. (aiohttp's
``ClientConnectionError`` is the parent of errors of every phase, a server hanging up after
reading the request included: it is never taken to mean "not sent".)

Proxies come from the environment (``runner.api.proxies``); redirects are never followed here;
bodies come back as they were sent (httpx decodes them by their ``Content-Encoding``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import ssl
from collections.abc import AsyncIterator, Iterator

import httpx
from yarl import URL

from runner.api.proxies import check_proxy, proxies_from_environment, proxy_for
from runner.errors import ConfigError

#: What ``ssl.create_default_context`` (and aiohttp's unverified context) call to load them.
_DEFAULT_CERTIFICATE_LOADERS = ("load_default_certs", "set_default_verify_paths")


@contextlib.contextmanager
def _no_default_certificates() -> Iterator[None]:
    """While inside, a new SSL context loads no CA certificates by default.

    aiohttp makes two default SSL contexts when it is imported, each loading the system's CA
    certificates: about 0.07 CPU s, a twentieth of a whole run of a hundred minute-long jobs.
    The transport never uses either (it gives every https request its own context, made on
    the first one), so they are made without certificates. They can then verify no server:
    a request that used one by mistake would fail, never pass unchecked.
    """
    saved = {name: getattr(ssl.SSLContext, name) for name in _DEFAULT_CERTIFICATE_LOADERS}
    for name in saved:
        setattr(ssl.SSLContext, name, _load_none)
    try:
        yield
    finally:
        for name, method in saved.items():
            setattr(ssl.SSLContext, name, method)


def _load_none(context: ssl.SSLContext, *purpose: object) -> None:
    """Loads no certificates (in place of the default ones)."""


with _no_default_certificates():
    import aiohttp

#: httpx's own default pool size (``httpx.Limits(max_connections=100)``).
DEFAULT_MAX_CONNECTIONS = 100
#: httpx's default keep-alive expiry: an idle connection is dropped before a typical
#: server closes it, so that a request is rarely written onto a connection being closed.
DEFAULT_KEEPALIVE_EXPIRY = 5.0
_CHUNK = 64 * 1024
#: The chunk of a compressed body: decoded, at most about a megabyte.
_ENCODED_CHUNK = 1024
#: Bodies above this many bytes are sent as a stream (aiohttp's own threshold for a warning).
_LARGE_BODY = 1024 * 1024
# aiohttp would add its own Accept, Accept-Encoding, User-Agent and Content-Type where a request
# lacks them; the request goes out with httpx's headers alone.
_NO_AUTO_HEADERS = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})
# aiohttp frames the body itself (Content-Length for the bytes it is given).
_FRAMING = frozenset({"transfer-encoding"})


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests over one ``aiohttp.ClientSession``, made on first use.

    Timeouts are httpx's, read from each request's ``timeout`` extension: ``connect`` bounds
    making the connection, ``read`` each wait for bytes (headers or the next chunk of a body),
    and ``pool`` plus ``connect`` the wait for a free connection and the connecting together
    (aiohttp times the two as one). aiohttp has no write timeout: the client's deadline on a
    whole request bounds a body the server stops reading.
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
        # Made on the first https request: a run over http:// never loads the certificates.
        self._tls: ssl.SSLContext | None = None
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
                # httpx decodes by Content-Encoding, once.
                auto_decompress=False,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` as httpx built it; the answer's body is still to be read.

        The URL goes out exactly as httpx encoded it (re-quoting would change escaped task
        ids), with exactly the request's headers (aiohttp adds only Content-Length).
        """
        session = self._open_session()
        timeout = request.extensions.get("timeout", {})
        failure: httpx.TransportError
        try:
            body = await request.aread()
            url = request.url
            if url.userinfo:
                # httpx has made any user:password an Authorization header already; aiohttp
                # would refuse the two together (a bare ValueError).
                url = url.copy_with(userinfo=b"")
            target = URL(str(url), encoded=True)
            response = await session.request(
                request.method,
                target,
                headers=[
                    (name, value)
                    for name, value in request.headers.multi_items()
                    if name.lower() not in _FRAMING
                ],
                # aiohttp writes a large bytes body in one go (and warns); a stream goes in
                # chunks. Creates carry images as data URIs, so they can be megabytes.
                data=io.BytesIO(body) if len(body) > _LARGE_BODY else (body or None),
                allow_redirects=False,
                proxy=self._proxy(target),
                ssl=self._tls_context() if target.scheme == "https" else True,
                timeout=_client_timeout(
                    timeout.get("connect"), timeout.get("pool"), timeout.get("read")
                ),
            )
        except (aiohttp.ClientError, OSError) as error:
            failure = httpx_error(error)
        else:
            extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
            if response.reason:
                extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
            return httpx.Response(
                response.status,
                headers=response.raw_headers,
                stream=_Body(response),
                request=request,
                extensions=extensions,
            )
        # Raised outside the ``except``: aiohttp's error (whose request_info holds the headers,
        # Authorization included) does not travel along as the context.
        raise failure

    def _tls_context(self) -> ssl.SSLContext:
        """The context every https request verifies its server with: the system's CA
        certificates (or ``SSL_CERT_FILE``'s), as aiohttp's own default would have."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
            self._tls.set_alpn_protocols(["http/1.1"])
        return self._tls

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


class _Body(httpx.AsyncByteStream):
    """An aiohttp answer's body as httpx's stream; its failures mapped as the module says.

    httpx decodes each chunk whole, and deflate inflates up to about a thousandfold: a
    compressed body is therefore handed up in small chunks (``_ENCODED_CHUNK``), so that no
    decoded chunk of a compression bomb is more than about a megabyte, and the client's caps
    on what it reads bound its memory too.
    """

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        encoded = response.headers.get("Content-Encoding", "identity").strip().lower()
        self._chunk = _CHUNK if encoded in ("", "identity") else _ENCODED_CHUNK

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        failure: httpx.TransportError
        try:
            while chunk := await content.read(self._chunk):
                yield chunk
            return
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
        # Any other ClientConnectionError included: its phase is unknown, so it counts as sent.
        kind, detail = httpx.RemoteProtocolError, str(error) or "connection error"
    return kind(f"{name}: {detail}")


@functools.lru_cache(maxsize=64)
def _client_timeout(
    connect: float | None, pool: float | None, read: float | None
) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts from httpx's. No total, so a download that keeps moving is not cut
    (the client bounds a whole API request itself)."""
    return aiohttp.ClientTimeout(
        total=None,
        # aiohttp's ``connect`` spans the wait for a free connection and the connecting itself.
        connect=None if connect is None or pool is None else connect + pool,
        sock_connect=connect,
        sock_read=read,
    )
