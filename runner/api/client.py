"""The HTTP client of the video API: create, retrieve, and stream a finished clip to disk.

Written against ``httpx.AsyncClient``: requests are built and sent by httpx, and its URL,
exceptions and streaming are the client's. Underneath, a run sends through
``runner.api.transport.AiohttpTransport`` (for CPU); tests pass ``httpx.MockTransport``
instead, and nothing else differs.

One attempt per call: every failure becomes a kind from ``runner.api.errors`` and the engine
decides what to do with ``runner.retry``. The client knows nothing of the state store.

The API key travels to the API's own origin (scheme, host, port) and nowhere else: each request,
including every hop of a download's redirects (followed here, not by httpx), is checked.

What a server can send is bounded: an API answer's body (``MAX_ANSWER_BYTES``), a whole API
request (``request_timeout``, connect to the answer's last byte), a clip (``max_clip_bytes``,
and it must start like a media container), every task field (``runner.api.task``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import hashlib
import http.cookiejar
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self
from urllib.parse import quote

import httpx

from runner import __version__
from runner.api.base import check_base
from runner.api.errors import (
    ApiError,
    AuthError,
    BadClip,
    DownloadError,
    LinkExpired,
    NotFound,
    RateLimited,
    Rejected,
    TransientError,
    UnusableAnswer,
)
from runner.api.proxies import check_proxy
from runner.api.task import Task, UnreadableTask, UnusableTaskId, check_task_id
from runner.api.transport import AiohttpTransport
from runner.errors import ConfigError
from runner.files import open_part
from runner.text import shorten

if TYPE_CHECKING:
    from runner.providers.base import Profile

ProgressCallback = Callable[[int, int | None], None]

MAX_REDIRECTS = 10
#: The largest body of an API answer (a task, an error) read: a larger one is a server fault.
MAX_ANSWER_BYTES = 1024 * 1024
#: The largest clip downloaded unless the client is given another ``max_clip_bytes``.
DEFAULT_MAX_CLIP_BYTES = 4 * 1024**3
#: The largest clip taken inline in an API answer (Veo's ``encodedVideo``): the answer is
#: read into memory whole, so it has a bound of its own below ``max_clip_bytes``.
MAX_INLINE_CLIP_BYTES = 128 * 1024**2
#: The default deadline of one API request, from connecting to the answer's last byte.
DEFAULT_REQUEST_TIMEOUT = 120.0
#: The slowest upload a request body is given time for, in bytes per second: an 8 MiB create
#: with images gets 80 s on top of ``request_timeout``.
MIN_UPLOAD_RATE = 100_000
_EXCERPT = 200
_ERROR_BODY_LIMIT = 64 * 1024
_HASH_CHUNK = 1024 * 1024
#: Bytes of a clip's start that tell its container (an ISO BMFF box header: size, type).
_HEAD = 8
_EBML = b"\x1a\x45\xdf\xa3"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]+>")
_LINK_GONE = frozenset({403, 404, 410})
#: Poll URLs kept parsed, the most recently asked: more than the tasks a run has in flight.
_POLL_URLS_KEPT = 4096
# Failures before a byte of the request reached the server: retrying cannot duplicate anything.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)

Origin = tuple[str, str, int | None]
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: The body encodings read: those asked for (gzip, deflate; identity for a clip).
_READABLE_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A download that reached the end: the hash and size of the whole part file."""

    sha256: str
    bytes: int


class _NoCookies(http.cookiejar.CookieJar):
    """The client's cookie jar, which keeps nothing: the key is the only credential, so no
    cookie is kept or sent to any host (and no ``Set-Cookie`` is even parsed)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class _Unread(Exception):
    """An API answer's body that is not read: over ``MAX_ANSWER_BYTES``, or in an encoding
    the client did not ask for. The message says which."""


class ApiClient:
    """One client per run, as an async context manager."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_clip_bytes: int = DEFAULT_MAX_CLIP_BYTES,
        profile: Profile | None = None,
    ) -> None:
        if profile is None:
            from runner.providers.gateway import Gateway

            profile = Gateway()
        #: The provider's API this client speaks (``runner.providers``): its headers, create
        #: call, poll path, task reading, and which video URLs take the key.
        self.profile = profile
        # Checked before anything else: a base with a query or fragment is refused (exit 2).
        try:
            base = httpx.URL(check_base(base_url))
        except httpx.InvalidURL as error:
            raise ConfigError(f"unusable API base: {error}") from None
        self.base_url = str(base)
        self._origin = _origin_of(base)
        check_proxy(self.base_url)
        self._api_key = api_key
        #: HTTP requests sent, redirects and failures included (for benchmarks).
        self.requests_sent = 0
        # Each task's poll URL, parsed once: a task is asked several times, and httpx's
        # parsing of a URL string was about a tenth of a poll's CPU.
        self._poll_urls: OrderedDict[str, httpx.URL] = OrderedDict()
        self._closed = False
        self._request_timeout = request_timeout
        self._max_clip_bytes = max_clip_bytes
        # What goes to the API's origin, and only there.
        self._auth = profile.headers(api_key)
        # An answer may carry the clip inline (Veo's encodedVideo), in base64: bounded by the
        # clip's cap, and by the inline clip's (it is held in memory whole).
        inline = min(max_clip_bytes, MAX_INLINE_CLIP_BYTES) if profile.inline_video else 0
        self._answer_cap = MAX_ANSWER_BYTES + 4 * -(-inline // 3)
        self._http = httpx.AsyncClient(
            transport=AiohttpTransport() if transport is None else transport,
            headers={
                "Accept": "*/*",
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": f"shotrunner/{__version__}",
            },
            # The read timeout bounds each read from the socket, so a download that keeps
            # moving is never cut off, however long it takes; a stalled one is. API requests
            # also have a deadline as a whole (``request_timeout``).
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=read_timeout
            ),
            follow_redirects=False,
            # No proxy, netrc or certificate settings from httpx's reading of the environment:
            # the transport takes its proxy from ``runner.api.proxies``, and the key is the
            # only credential.
            trust_env=False,
            cookies=_NoCookies(),
        )

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._http.aclose()

    # -- the API -------------------------------------------------------------------------------

    async def create(self, body: dict[str, Any], idempotency_key: str) -> Task:
        """Submit a task. A lost answer raises ``TransientError(sent=True)``: it may exist."""
        from runner.providers.base import Unmappable

        try:
            call = self.profile.create_call(body)
        except Unmappable as error:
            problem = str(error)
        else:
            content = json.dumps(
                call.json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            )
            headers = {"Content-Type": "application/json"}
            if self.profile.idempotent_creates:
                headers["Idempotency-Key"] = idempotency_key
            return await self._call(
                call.method, f"{self.base_url}{call.path}", body=content.encode(), headers=headers
            )
        raise Rejected(f"{self.profile.name} cannot take this request: {problem} (not sent)")

    async def retrieve(self, task_id: str) -> Task:
        """The task as the server sees it now.

        An id this client would not have kept (one stored by an older version, say) raises a
        bare ``ApiError`` with nothing sent: it can never be polled.
        """
        url = self._poll_urls.get(task_id)
        if url is None:
            url = self._poll_urls[task_id] = httpx.URL(self._poll_url(task_id))
            if len(self._poll_urls) > _POLL_URLS_KEPT:
                self._poll_urls.popitem(last=False)
        else:
            # The most recently asked last: the oldest is the one dropped.
            self._poll_urls.move_to_end(task_id)
        return await self._call("GET", url)

    def _poll_url(self, task_id: str) -> str:
        """The URL that answers ``task_id`` now; ``ApiError`` for an id it cannot have."""
        try:
            self._check_pollable(task_id)
        except UnusableTaskId as error:
            raise ApiError(f"GET {self.base_url}/…: {error}; it cannot be polled") from None
        if self.profile.name == "gateway":
            return f"{self.base_url}/videos/{quote(task_id, safe='')}"
        # Veo's operation names are paths (models/<model>/operations/<id>).
        return f"{self.base_url}{self.profile.poll_path(quote(task_id, safe='/'))}"

    def _check_pollable(self, task_id: str) -> None:
        """``UnusableTaskId`` for an id no poll can name: one ``check_task_id`` refuses, or,
        where ids are paths (every provider but the gateway, whose id is one quoted
        segment), one with an empty or dot segment."""
        check_task_id(task_id)
        if self.profile.name != "gateway" and any(
            part in ("", ".", "..") for part in task_id.split("/")
        ):
            raise UnusableTaskId("a task id with an empty or dot path segment")

    def content_url(self, task_id: str) -> str:
        """The gateway's own route to a finished clip, for tasks that give no URL."""
        return f"{self.base_url}/videos/{quote(task_id, safe='')}/content"

    async def download(
        self, url: str, part_path: Path, *, on_progress: ProgressCallback | None = None
    ) -> Downloaded:
        """Stream ``url`` into ``part_path``, continuing an existing part file where allowed.

        The part file is left in place (the caller renames it when it is whole): kept on a
        broken stream so that the next call resumes, removed when its bytes cannot be trusted
        or cannot be a clip (``BadClip``).
        """
        part_path.parent.mkdir(parents=True, exist_ok=True)
        have = part_path.stat().st_size if part_path.exists() else 0
        answer = await self._open_download(url, have)
        try:
            return await self._receive(answer, part_path, have, on_progress)
        finally:
            await answer.aclose()

    def save_inline(self, data: bytes, part_path: Path) -> Downloaded:
        """A clip that came inline in the task's answer, written into ``part_path`` (checked
        as a download is: the cap, and the start of a media container)."""
        what = "inline video"
        if len(data) > self._max_clip_bytes:
            raise BadClip(f"{what}: {len(data):,} bytes, over the cap of {self._max_clip_bytes:,}")
        if not is_media_container(data[:_HEAD]):
            raise BadClip(f"{what}: it does not start like an MP4 or WebM file")
        part_path.parent.mkdir(parents=True, exist_ok=True)
        with open_part(part_path, append=False) as out:
            out.write(data)
        return Downloaded(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))

    # -- requests ------------------------------------------------------------------------------

    def _deadline(self, body: bytes | None = None) -> float:
        """The whole time an API request may take: ``request_timeout``, plus its body's upload
        at ``MIN_UPLOAD_RATE`` (aiohttp has no write timeout of its own)."""
        return self._request_timeout + len(body or b"") / MIN_UPLOAD_RATE

    async def _call(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Task:
        """A create or a poll: a request to the API's own routes, whose answer is a task.

        Bounded as a whole: ``_deadline`` from connecting to the answer's last byte, and the
        answer's body at ``MAX_ANSWER_BYTES``.
        """
        self._check_open()
        request = self._http.build_request(
            method, url, content=body, headers={**self._auth, **(headers or {})}
        )
        deadline = self._deadline(body)
        self.requests_sent += 1
        failure: ApiError
        timeout = asyncio.timeout(deadline)
        try:
            async with timeout:
                answer = await self._http.send(request, stream=True)
                try:
                    content = await _read_capped(answer, self._answer_cap)
                finally:
                    await answer.aclose()
        except TimeoutError:
            if not timeout.expired():
                raise
            failure = TransientError(
                f"{_describe(method, request.url)}: no whole answer within {deadline:g} s "
                "(sent; the answer was lost)",
                sent=True,
            )
        except _Unread as problem:
            failure = TransientError(
                f"{_describe(method, request.url)}: HTTP {answer.status_code} with {problem} "
                "(sent; the answer was not read)",
                status=answer.status_code,
                sent=True,
            )
        except httpx.HTTPError as error:
            failure = self._transport_error(error, _describe(method, request.url))
        else:
            if answer.is_success:
                return self._task_from(answer, content, create=method == "POST")
            what = _describe(method, request.url)
            failure = self._error_for(answer, content, what, download=False)
        # Raised outside the ``except`` so that the httpx error is not even kept as the
        # ``__context__``: it holds the request, and with it the Authorization header.
        raise failure

    async def _get(self, url: httpx.URL, headers: Mapping[str, str]) -> httpx.Response:
        """One GET of a download, its body still to be read; decides, hop by hop, whether the
        key goes along."""
        self._check_open()
        if _origin_of(url) == self._origin and self.profile.download_needs_key(
            str(url), self.base_url
        ):
            # As for the base: the key is the credential there. aiohttp would refuse a
            # user:password in the URL next to the Authorization header (a bare ValueError).
            url = url.copy_with(userinfo=b"")
            headers = {**self._auth, **headers}
        request = self._http.build_request("GET", url, headers=headers)
        self.requests_sent += 1
        failure: ApiError
        try:
            return await self._http.send(request, stream=True)
        except httpx.HTTPError as error:
            failure = self._transport_error(error, _describe("GET", url))
        # As in ``_call``: outside the ``except``.
        raise failure

    def _check_open(self) -> None:
        if self._closed:
            # A closed client's transport must not open a session again.
            raise RuntimeError("the API client has been closed")

    def _transport_error(self, error: httpx.HTTPError, what: str) -> ApiError:
        detail = self._redact(f"{what}: {type(error).__name__}: {error}".rstrip(": "))
        if isinstance(error, _NEVER_SENT):
            return TransientError(f"{detail} (not sent)", sent=False)
        if isinstance(error, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
            return ApiError(detail)
        return TransientError(f"{detail} (sent; the answer was lost)", sent=True)

    def _task_from(self, answer: httpx.Response, content: bytes, *, create: bool) -> Task:
        """The task in a 2xx answer. A create whose task id cannot be kept is
        ``UnusableAnswer`` (the task may exist and be billed); any other unreadable answer is
        a server fault, ``TransientError(sent=True)``."""
        unusable_id = False
        try:
            data = answer_json(content)
            if not isinstance(data, dict):
                raise UnreadableTask(f"task object expected, got {type(data).__name__}")
            task = self.profile.read_task(data)
            self._check_pollable(task.id)
        except UnusableTaskId as error:
            problem, unusable_id = str(error), True
        except (UnreadableTask, ValueError) as error:
            problem = str(error)
        else:
            return self._without_key(task)
        # Raised outside the ``except``: a JSONDecodeError keeps the whole body, which may
        # echo the key, and would otherwise travel along as the ``__context__``.
        status = answer.status_code
        what = _describe(answer.request.method, answer.request.url)
        if unusable_id and create:
            raise UnusableAnswer(
                self._redact(f"{what}: HTTP {status} with {problem}: the task may exist"),
                status=status,
            )
        excerpt = _excerpt(content, answer.headers.get("Content-Type", ""))
        raise TransientError(
            self._redact(f"{what}: HTTP {status} with an unreadable task ({problem}): {excerpt}"),
            status=status,
            sent=True,
        )

    def _without_key(self, task: Task) -> Task:
        if self._api_key in f"{task.error_code}{task.error_message}":
            # A server that echoes the key must not get it into the store or onto a screen.
            # Classified on the raw words first: a short key inside a policy word must not
            # turn a refusal into a failure that is paid for again.
            refusal = task.is_policy_refusal
            code = task.error_code and self._redact_code(task.error_code)
            redacted = dataclasses.replace(
                task,
                error_code=code,
                error_message=task.error_message and self._redact(task.error_message),
            )
            if refusal and not redacted.is_policy_refusal:
                redacted = dataclasses.replace(redacted, error_code=_POLICY_REFUSAL)
            task = redacted
        return task

    # -- downloads -----------------------------------------------------------------------------

    async def _open_download(self, url: str, have: int) -> httpx.Response:
        """The answer (200, 206 or 416), after following redirects ourselves; its body still
        to be read. Every hop up to that answer's headers is within one ``_deadline``: the
        body that follows is bounded by progress alone (the read timeout)."""
        try:
            current = httpx.URL(url)
        except httpx.InvalidURL as error:
            raise ApiError(self._redact(f"download: unusable URL: {error}")) from None
        deadline = self._deadline()
        timeout = asyncio.timeout(deadline)
        try:
            async with timeout:
                return await self._follow(current, have)
        except TimeoutError:
            if not timeout.expired():
                raise
        raise DownloadError(
            self._redact(f"{_describe('GET', current)}: no answer within {deadline:g} s")
        )

    async def _follow(self, current: httpx.URL, have: int) -> httpx.Response:
        for _ in range(MAX_REDIRECTS + 1):
            headers = {"Accept-Encoding": "identity"}
            if have:
                headers["Range"] = f"bytes={have}-"
            answer = await self._get(current, headers)
            if answer.status_code in (200, 206, 416):
                return answer
            try:
                location = answer.headers.get("Location")
                if answer.status_code in _REDIRECTS and location is not None:
                    current = self._redirected(current, location)
                    continue
                content = await _read_some(answer)
                what = _describe("GET", current)
                raise self._error_for(answer, content, what, download=True)
            finally:
                await answer.aclose()
        raise DownloadError(self._redact(f"download: more than {MAX_REDIRECTS} redirects"))

    def _redirected(self, current: httpx.URL, location: str) -> httpx.URL:
        try:
            return current.join(location)
        except httpx.InvalidURL as error:
            problem = f"{_describe('GET', current)}: redirect to an unusable URL: {error}"
        raise ApiError(self._redact(problem))

    async def _receive(
        self,
        answer: httpx.Response,
        part_path: Path,
        have: int,
        on_progress: ProgressCallback | None,
    ) -> Downloaded:
        what = _describe("GET", answer.request.url)
        headers = answer.headers
        status = answer.status_code
        length = _int_header(headers.get("Content-Length"))
        digest = hashlib.sha256()
        body: int | None
        if status == 416:
            return await self._already_whole(headers, part_path, have, on_progress, what)
        try:
            _check_encoding(answer)
        except _Unread as problem:
            raise DownloadError(f"{what}: {problem}", status=status) from None
        if status == 206:
            start, end, total = self._content_range(headers, part_path, have, what)
            body = end - start + 1
            if length is not None and length != body:
                part_path.unlink(missing_ok=True)
                raise DownloadError(
                    f"{what}: Content-Length {length} disagrees with Content-Range {start}-{end}",
                    status=206,
                )
            await _hash_file(part_path, digest)
            done, mode = have, "ab"
            head = _head_of(part_path)
        else:
            # A 200 is the whole file from the start, whatever was asked: begin again.
            body = length
            total = length
            done, mode, head = 0, "wb", b""
        if headers.get("Content-Encoding", "identity").strip().lower() != "identity":
            # Lengths then count encoded bytes, not the clip's: only the stream's end can tell.
            body = total = None
        cap = self._max_clip_bytes
        if total is not None and total > cap:
            part_path.unlink(missing_ok=True)
            raise BadClip(
                f"{what}: a clip of {total:,} bytes, over the cap of {cap:,}", status=status
            )
        checked = self._check_head(head, part_path, what, status, final=False)
        if on_progress is not None:
            on_progress(done, total)
        received = 0
        broken: DownloadError | None = None
        with open_part(part_path, append=mode == "ab") as out:
            try:
                async for chunk in answer.aiter_bytes():
                    received += len(chunk)
                    if body is not None and received > body:
                        out.close()
                        part_path.unlink(missing_ok=True)
                        raise DownloadError(
                            f"{what}: body longer than the announced {body} bytes", status=status
                        )
                    if done + len(chunk) > cap:
                        out.close()
                        part_path.unlink(missing_ok=True)
                        raise BadClip(
                            f"{what}: more than the cap of {cap:,} bytes arrived", status=status
                        )
                    if not checked:
                        head += chunk[: _HEAD - len(head)]
                        checked = self._check_head(head, part_path, what, status, final=False)
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, total)
            except httpx.HTTPError as error:
                broken = DownloadError(
                    self._redact(
                        f"{what}: broke off after {done} bytes: {type(error).__name__}: {error}"
                    ),
                    status=status,
                )
        if broken is not None:
            # Outside the ``except``: the httpx error (and its request) stays out of the chain.
            raise broken
        if body is not None and received < body:
            raise DownloadError(
                f"{what}: body ended after {received} of {body} bytes", status=status
            )
        if total is not None and done != total:
            # A range that stops short of the end: what arrived is good, the rest is still due.
            raise DownloadError(f"{what}: {done} of {total} bytes so far", status=206)
        if not checked:
            self._check_head(head, part_path, what, status, final=True)
        return Downloaded(sha256=digest.hexdigest(), bytes=done)

    @staticmethod
    def _check_head(head: bytes, part_path: Path, what: str, status: int, *, final: bool) -> bool:
        """True once ``head`` (a clip's first bytes) shows a media container; False while too
        few bytes have come to tell. A body that is not one fails as ``BadClip``, its part file
        removed: the server sent something else (an error page, zeros), never a clip."""
        if len(head) < _HEAD and not final:
            return False
        if is_media_container(head):
            return True
        part_path.unlink(missing_ok=True)
        raise BadClip(
            f"{what}: the body is not a video (it does not start like an MP4 or WebM file)",
            status=status,
        )

    def _content_range(
        self, headers: Mapping[str, str], part_path: Path, have: int, what: str
    ) -> tuple[int, int, int | None]:
        match = _CONTENT_RANGE.match(headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != have or int(match.group(2)) < have:
            part_path.unlink(missing_ok=True)
            raise DownloadError(
                f"{what}: 206 with Content-Range {headers.get('Content-Range')!r} "
                f"for a request from byte {have}; starting over",
                status=206,
            )
        total = None if match.group(3) == "*" else int(match.group(3))
        return int(match.group(1)), int(match.group(2)), total

    async def _already_whole(
        self,
        headers: Mapping[str, str],
        part_path: Path,
        have: int,
        on_progress: ProgressCallback | None,
        what: str,
    ) -> Downloaded:
        """416 to a resume: the part file is whole if the server's size is exactly its size."""
        match = _UNSATISFIED_RANGE.match(headers.get("Content-Range", ""))
        if have and match and int(match.group(1)) == have:
            if have > self._max_clip_bytes:
                part_path.unlink(missing_ok=True)
                raise BadClip(f"{what}: a clip of {have:,} bytes, over the cap", status=416)
            self._check_head(_head_of(part_path), part_path, what, 416, final=True)
            digest = hashlib.sha256()
            await _hash_file(part_path, digest)
            if on_progress is not None:
                on_progress(have, have)
            return Downloaded(sha256=digest.hexdigest(), bytes=have)
        part_path.unlink(missing_ok=True)
        raise DownloadError(
            f"{what}: HTTP 416 for a part file of {have} bytes; starting over", status=416
        )

    # -- failures ------------------------------------------------------------------------------

    def _error_for(
        self, answer: httpx.Response, content: bytes, what: str, *, download: bool
    ) -> ApiError:
        """The failure kind for an HTTP answer that is not a success."""
        url = answer.request.url
        status = answer.status_code
        headers = answer.headers
        raw_code, server_message = _error_body(content)
        # Classified on the raw code, redacted only for what is kept or shown.
        forgotten = (raw_code or "").lower() == _TASK_NOT_EXIST
        code = self._redact_code(shorten(raw_code, _EXCERPT)) if raw_code else None
        reason = f" {answer.reason_phrase}" if answer.reason_phrase else ""
        if server_message:
            detail = shorten(_one_line(server_message))
        else:
            detail = _excerpt(content, headers.get("Content-Type", ""))
        coded = f" (code {code})" if code else ""
        message = self._redact(f"{what}: HTTP {status}{reason}: {detail}{coded}")
        on_api = _origin_of(url) == self._origin
        if download and (status in _LINK_GONE or (status == 401 and not on_api)):
            return LinkExpired(message, status=status, code=code)
        if status in (401, 403) or self.profile.refuses_key(status, _json_or_none(content)):
            return AuthError(
                self._redact(f"the API refused the key: {message}"), status=status, code=code
            )
        if status == 429:
            return RateLimited(
                message,
                status=status,
                code=code,
                retry_after=parse_retry_after(headers.get("Retry-After")),
            )
        if status == 404 or (status == 400 and forgotten):
            return NotFound(message, status=status, code=code)
        if status >= 500 or status in (408, 425):
            return TransientError(message, status=status, code=code, sent=True)
        if 400 <= status < 500:
            return Rejected(message, status=status, code=code)
        location = headers.get("Location")
        where = f" to {_describe_url(url.join(location))}" if location else ""
        return ApiError(f"{message}: unexpected answer{where}", status=status, code=code)

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[key]") if self._api_key else text

    def _redact_code(self, code: str) -> str:
        """An error code as it may be kept: a code the runner acts on is a fixed word of the
        API (it cannot be an echo of the key, however short the key), so it stays intact."""
        return code if code.lower() in _KNOWN_CODES else self._redact(code)


#: The code of a task the service no longer knows (docs/api.md): a new attempt, not a wrong route.
_TASK_NOT_EXIST = "task_not_exist"
#: The code given to a policy refusal whose own code redaction would have made unreadable.
_POLICY_REFUSAL = "policy_refusal"
_KNOWN_CODES = frozenset({_TASK_NOT_EXIST, _POLICY_REFUSAL})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _error_body(content: bytes) -> tuple[str | None, str | None]:
    """``(code, message)`` from a nested ``{"error": {...}}`` or a flat ``{"code","message"}``."""
    try:
        data = answer_json(content)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    error = data.get("error")
    if isinstance(error, dict):
        return _scalar(error.get("code")), _scalar(error.get("message"))
    message = _scalar(data.get("message")) or _scalar(error) or _scalar(data.get("detail"))
    return _scalar(data.get("code")), message


def _json_or_none(content: bytes) -> Any:
    try:
        return answer_json(content)
    except ValueError:
        return None


def answer_json(content: bytes) -> Any:
    """An answer's JSON, read so that no value in it can crash what reads it: a number of
    more than ``_LONG_INT`` digits is read as a float (``inf`` past 1e308), and nesting
    deeper than the interpreter recurses is a ``ValueError``, as any malformed JSON is.

    An answer over ``MAX_ANSWER_BYTES`` (only one that may carry a clip inline is read that
    far) must be a few values, the clip's base64 the bulk of it: with more than
    ``_MAX_LARGE_ANSWER_ITEMS`` objects, lists and items, it is unreadable before it is
    parsed, as 165 MB of ``{},`` would take gigabytes as Python objects."""
    if len(content) > MAX_ANSWER_BYTES and (
        content.count(b"{") + content.count(b"[") + content.count(b",") > _MAX_LARGE_ANSWER_ITEMS
    ):
        raise ValueError("a large answer of many small values, not a clip")
    try:
        return json.loads(content, parse_int=_answer_int)
    except RecursionError:
        raise ValueError("the answer's JSON is nested too deeply") from None


def _answer_int(text: str) -> int | float:
    return int(text) if len(text) <= _LONG_INT else float(text)


#: Digits of the longest integer read as one (a cost, a progress, a time): beyond, a float.
_LONG_INT = 30
#: The most objects, lists and items an answer over ``MAX_ANSWER_BYTES`` may hold.
_MAX_LARGE_ANSWER_ITEMS = 10_000


def _excerpt(content: bytes, content_type: str) -> str:
    """A short, single-line excerpt of a body that is not a JSON error: HTML, text or nothing."""
    text = content[:_ERROR_BODY_LIMIT].decode("utf-8", errors="replace").strip()
    if not text:
        return "empty body"
    if "html" in content_type.lower() or text.startswith("<"):
        title = _HTML_TITLE.search(text)
        text = title.group(1) if title else _HTML_TAG.sub(" ", text)
    return shorten(_one_line(text), _EXCERPT) or "empty body"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _scalar(value: object) -> str | None:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    return None


def _origin_of(url: httpx.URL) -> Origin:
    scheme = url.scheme.lower()
    return scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(scheme)


def _describe(method: str, url: httpx.URL) -> str:
    return f"{method} {_describe_url(url)}"


def _describe_url(url: httpx.URL) -> str:
    # Without the query: signed download URLs carry their signature there; without a
    # user:password either.
    return str(url.copy_with(query=None, fragment=None, userinfo=b""))


def _int_header(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


async def _read_capped(answer: httpx.Response, cap: int = MAX_ANSWER_BYTES) -> bytes:
    """An API answer's whole body, read in chunks; ``_Unread`` as soon as it passes
    ``MAX_ANSWER_BYTES`` (announced or counted after decoding), so memory stays bounded."""
    _check_encoding(answer)
    length = _int_header(answer.headers.get("Content-Length"))
    too_large = _Unread(f"an answer over {cap:,} bytes")
    if length is not None and length > cap:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.aiter_bytes():
        size += len(chunk)
        if size > cap:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_some(answer: httpx.Response) -> bytes:
    """Read an error body up to a limit, so a huge error page is not loaded whole."""
    chunks: list[bytes] = []
    size = 0
    try:
        _check_encoding(answer)
        async for chunk in answer.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= _ERROR_BODY_LIMIT:
                break
    except (httpx.HTTPError, _Unread):
        pass  # the status alone still says what happened
    return b"".join(chunks)


def _check_encoding(answer: httpx.Response) -> None:
    """``_Unread`` for a body in an encoding the client never asks for: brotli or zstd (which
    httpx decodes when their packages happen to be installed) inflate far more than deflate,
    so a small chunk of them could fill memory before any cap is reached."""
    encoding = answer.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _READABLE_ENCODINGS:
        raise _Unread(f"a body encoded as {shorten(encoding, 40)!r}, which was not asked for")


def is_media_container(head: bytes) -> bool:
    """Whether a file's first bytes are those of a video container: an ISO base media file
    (MP4, MOV, M4V, 3GP: a first box of type ``ftyp``) or EBML (WebM, Matroska)."""
    return head[4:8] == b"ftyp" or head.startswith(_EBML)


def _head_of(path: Path) -> bytes:
    """The first bytes of a part file (a small read: fine on the event loop)."""
    with path.open("rb") as source:
        return source.read(_HEAD)


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


async def _hash_file(path: Path, digest: _Digest) -> None:
    """Feed a file to ``digest`` in a worker thread: a resumed prefix may be gigabytes, and
    reading and hashing it on the event loop would stall every other task's polling."""
    await asyncio.to_thread(_hash_blocks, path, digest)


def _hash_blocks(path: Path, digest: _Digest) -> None:
    with path.open("rb") as source:
        while block := source.read(_HASH_CHUNK):
            digest.update(block)
