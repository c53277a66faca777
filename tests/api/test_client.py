"""The client's API calls against MockTransport: requests sent, answers read, failures typed."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from runner.api.client import MAX_ANSWER_BYTES, ApiClient
from runner.api.errors import (
    ApiError,
    AuthError,
    NotFound,
    RateLimited,
    Rejected,
    TransientError,
    UnusableAnswer,
)
from runner.errors import ConfigError, ExitCode
from tests.api.conftest import BASE, KEY, Handler, answer, mp4, task_json

MakeClient = Callable[[Handler], ApiClient]
BODY = {"model": "omni-fast", "prompt": "Ocean waves", "seconds": "8"}


def raising(error: type[httpx.HTTPError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("simulated", request=request)  # type: ignore[call-arg]

    return handler


async def test_create_posts_the_body_with_key_and_idempotency_key(client_for: MakeClient) -> None:
    """create sends POST {base}/videos with the JSON body, the bearer key and Idempotency-Key."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=task_json())

    await client_for(handler).create(BODY, "fp-g1-a1")
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/videos")
    assert json.loads(request.content) == BODY
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Idempotency-Key"] == "fp-g1-a1"
    assert request.headers["Content-Type"] == "application/json"


async def test_create_returns_the_normalised_task(client_for: MakeClient) -> None:
    """The answer to create is read into a Task."""
    task = await client_for(answer(200, task_json(status="QUEUED"))).create(BODY, "k")
    assert (task.id, task.status, task.raw_status) == ("video_abc123", "pending", "QUEUED")


async def test_retrieve_gets_the_task_by_id(client_for: MakeClient) -> None:
    """retrieve sends GET {base}/videos/{id} with the key, and reads the task."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=task_json(status="completed", progress="100%"))

    task = await client_for(handler).retrieve("video_abc123")
    assert str(seen[0].url) == f"{BASE}/videos/video_abc123"
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert (task.status, task.progress) == ("completed", 100.0)


async def test_task_ids_are_escaped_in_paths(client_for: MakeClient) -> None:
    """A task id with odd characters cannot change the route it is sent to."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json=task_json())

    await client_for(handler).retrieve("a/../b?c")
    assert seen == ["/v1/videos/a%2F..%2Fb%3Fc"]


def test_content_url_is_under_the_api_base() -> None:
    """content_url points at the gateway's /content route of the task."""
    client = ApiClient(BASE + "/", KEY)
    assert client.content_url("video_1") == f"{BASE}/videos/video_1/content"


@pytest.mark.parametrize("base", ["", "octopusx.ai/v1", "ftp://host/v1", "http://"])
def test_unusable_base_url_is_a_config_error(base: str) -> None:
    """An API base that is not an http(s) URL with a host is a configuration error."""
    with pytest.raises(ConfigError):
        ApiClient(base, KEY)


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failures_raise_auth_error(client_for: MakeClient, status: int) -> None:
    """401 and 403 on the API mean a bad key: AuthError, which exits 2."""
    client = client_for(answer(status, {"error": {"message": "invalid token", "code": "x"}}))
    with pytest.raises(AuthError) as caught:
        await client.retrieve("video_1")
    assert caught.value.status == status
    assert isinstance(caught.value, ConfigError)
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert "invalid token" in caught.value.message


async def test_429_is_rate_limited_without_retry_after(client_for: MakeClient) -> None:
    """429 without Retry-After: RateLimited with retry_after None (own backoff applies)."""
    client = client_for(answer(429, {"error": {"message": "upstream saturated"}}))
    with pytest.raises(RateLimited) as caught:
        await client.create(BODY, "k")
    assert caught.value.retry_after is None
    assert caught.value.status == 429


async def test_429_retry_after_seconds(client_for: MakeClient) -> None:
    """Retry-After given in seconds is carried on the exception."""
    client = client_for(answer(429, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimited) as caught:
        await client.retrieve("v")
    assert caught.value.retry_after == 7.0


async def test_429_retry_after_http_date(client_for: MakeClient) -> None:
    """Retry-After given as an HTTP-date becomes the seconds until then."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    client = client_for(answer(429, headers={"Retry-After": when}))
    with pytest.raises(RateLimited) as caught:
        await client.retrieve("v")
    assert caught.value.retry_after is not None
    assert 100 <= caught.value.retry_after <= 121


@pytest.mark.parametrize("value", ["soon", "", "-5"])
async def test_429_odd_retry_after(client_for: MakeClient, value: str) -> None:
    """An unreadable Retry-After is None; a negative one is 0."""
    client = client_for(answer(429, headers={"Retry-After": value}))
    with pytest.raises(RateLimited) as caught:
        await client.retrieve("v")
    assert caught.value.retry_after == (0.0 if value == "-5" else None)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
async def test_server_errors_are_transient_and_sent(client_for: MakeClient, status: int) -> None:
    """5xx (and 408) are transient, and the request is known to have reached the server."""
    with pytest.raises(TransientError) as caught:
        await client_for(answer(status)).create(BODY, "k")
    assert (caught.value.status, caught.value.sent) == (status, True)


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
async def test_never_sent_failures(client_for: MakeClient, error: type[httpx.HTTPError]) -> None:
    """Connect errors and pool timeouts are transient with sent=False: safe to retry a create."""
    with pytest.raises(TransientError) as caught:
        await client_for(raising(error)).create(BODY, "k")
    assert caught.value.sent is False
    assert caught.value.status is None


@pytest.mark.parametrize(
    "error",
    [httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.WriteError],
)
async def test_answer_lost_failures(client_for: MakeClient, error: type[httpx.HTTPError]) -> None:
    """Read errors, read timeouts and dropped connections are transient with sent=True."""
    with pytest.raises(TransientError) as caught:
        await client_for(raising(error)).create(BODY, "k")
    assert caught.value.sent is True


async def test_rejected_carries_the_server_message(client_for: MakeClient) -> None:
    """400 with a nested error object: Rejected, with the server's message and code."""
    body = {"error": {"message": "prompt is required", "code": "invalid_request"}}
    with pytest.raises(Rejected) as caught:
        await client_for(answer(400, body)).create(BODY, "k")
    assert "prompt is required" in caught.value.message
    assert "400" in caught.value.message
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")


async def test_422_is_rejected(client_for: MakeClient) -> None:
    """422 is a refusal of the request, like 400."""
    with pytest.raises(Rejected) as caught:
        await client_for(answer(422, {"message": "bad seconds"})).create(BODY, "k")
    assert "bad seconds" in caught.value.message


async def test_404_is_not_found(client_for: MakeClient) -> None:
    """404 on a task: NotFound."""
    with pytest.raises(NotFound):
        await client_for(answer(404, {"error": {"message": "no such task"}})).retrieve("v")


async def test_400_task_not_exist_is_not_found(client_for: MakeClient) -> None:
    """400 with the flat code task_not_exist is NotFound, not Rejected."""
    body = {"code": "task_not_exist", "message": "task_not_exist", "data": None}
    with pytest.raises(NotFound) as caught:
        await client_for(answer(400, body)).retrieve("v")
    assert caught.value.code == "task_not_exist"


async def test_flat_error_body_gives_message_and_code(client_for: MakeClient) -> None:
    """A flat {"code","message","data"} body is read like a nested one."""
    body = {"code": "bad_resolution", "message": "resolution 8k unsupported", "data": None}
    with pytest.raises(Rejected) as caught:
        await client_for(answer(400, body)).create(BODY, "k")
    assert caught.value.code == "bad_resolution"
    assert "resolution 8k unsupported" in caught.value.message


async def test_html_error_body_gives_its_title(client_for: MakeClient) -> None:
    """An HTML page from a proxy gives its title, not a page of markup."""
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"
    handler = answer(502, content=page, headers={"Content-Type": "text/html"})
    with pytest.raises(TransientError) as caught:
        await client_for(handler).retrieve("v")
    assert "502 Bad Gateway" in caught.value.message
    assert "<" not in caught.value.message


async def test_empty_error_body_still_says_what_happened(client_for: MakeClient) -> None:
    """An empty body gives the status and says the body was empty."""
    with pytest.raises(TransientError) as caught:
        await client_for(answer(503)).retrieve("v")
    assert "503" in caught.value.message
    assert "empty body" in caught.value.message


async def test_long_text_error_body_is_shortened(client_for: MakeClient) -> None:
    """A long plain-text body is cut to a short one-line excerpt."""
    handler = answer(500, content="line one\n" + "x" * 5000)
    with pytest.raises(TransientError) as caught:
        await client_for(handler).retrieve("v")
    assert "line one x" in caught.value.message
    assert len(caught.value.message) < 400


async def test_success_with_unreadable_body_is_transient(client_for: MakeClient) -> None:
    """A 200 whose body is not a task is an answer lost: transient, sent=True."""
    with pytest.raises(TransientError) as caught:
        await client_for(answer(200, content=b"<html>oops</html>")).create(BODY, "k")
    assert caught.value.sent is True


async def test_redirect_on_the_api_is_not_followed(client_for: MakeClient) -> None:
    """An API call answered with a redirect is an ApiError naming the target; nothing follows."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(301, headers={"Location": "https://elsewhere.test/v1/videos"})

    with pytest.raises(ApiError) as caught:
        await client_for(handler).create(BODY, "k")
    assert type(caught.value) is ApiError
    assert "elsewhere.test" in caught.value.message
    assert seen == [f"{BASE}/videos"]


async def test_requests_sent_counts_every_request(client_for: MakeClient) -> None:
    """requests_sent counts each HTTP request, failed ones included."""
    answers = iter([httpx.Response(200, json=task_json()), httpx.Response(500)])
    client = client_for(lambda request: next(answers))
    await client.retrieve("v")
    with pytest.raises(TransientError):
        await client.retrieve("v")
    assert client.requests_sent == 2


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every exception it keeps as a cause or context, shown or not."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _everything_about(error: BaseException) -> str:
    text = "".join(traceback.format_exception(error))
    for link in _chain(error):
        text += repr(link) + str(link) + repr(vars(link)) + repr(link.args)
    return text


@pytest.mark.parametrize(
    "handler",
    [
        answer(400, {"error": {"message": f"bad key {KEY} in request", "code": KEY}}),
        answer(401, {"code": "unauthorized", "message": f"Bearer {KEY} is not valid"}),
        answer(500, content=f"<html><title>Error for {KEY}</title></html>"),
        answer(429, content=f"slow down {KEY}"),
        answer(200, content=f"not json {KEY}"),
        raising(httpx.ConnectError),
        raising(httpx.ReadTimeout),
    ],
    ids=["rejected", "auth", "html", "429", "garbage", "connect", "timeout"],
)
async def test_key_never_appears_in_exceptions(client_for: MakeClient, handler: Handler) -> None:
    """Even when the server echoes the key back, no message, repr or traceback contains it."""
    with pytest.raises(ApiError) as caught:
        await client_for(handler).create(BODY, "k")
    assert KEY not in _everything_about(caught.value)


@pytest.mark.parametrize(
    "handler",
    [raising(httpx.ConnectError), raising(httpx.ReadError), answer(200, content=f"{{{KEY}")],
    ids=["connect", "read", "bad-json"],
)
async def test_exceptions_keep_no_httpx_error_or_request(
    client_for: MakeClient, handler: Handler
) -> None:
    """No exception in the chain holds an httpx error (its request carries the header) or the
    undecodable body (a JSONDecodeError keeps it whole), even as a hidden context."""
    with pytest.raises(ApiError) as caught:
        await client_for(handler).create(BODY, "k")
    assert [type(link) for link in _chain(caught.value)] == [TransientError]


async def test_key_never_reaches_a_log_record(
    client_for: MakeClient, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """With every logger at DEBUG, no record of a create, a refused poll or a download from the
    API's own route (all three carry the key) holds the key."""
    answers = iter(
        [
            httpx.Response(200, json=task_json()),
            httpx.Response(401, json={"message": f"Bearer {KEY} refused"}),
            httpx.Response(200, content=mp4(100)),
        ]
    )
    client = client_for(lambda request: next(answers))
    with caplog.at_level(logging.DEBUG):
        await client.create(BODY, "k")
        with pytest.raises(AuthError):
            await client.retrieve("v")
        await client.download(client.content_url("v"), tmp_path / "v.part")
    logged = [record.getMessage() + repr(record.args) for record in caplog.records]
    assert not [line for line in logged if KEY in line]


def test_client_repr_hides_the_key() -> None:
    """The client's repr names the base URL only."""
    assert KEY not in repr(ApiClient(BASE, KEY))


async def test_client_is_an_async_context_manager() -> None:
    """``async with`` gives the client and closes it at the end."""
    transport = httpx.MockTransport(answer(200, task_json()))
    async with ApiClient(BASE, KEY, transport=transport) as client:
        await client.retrieve("v")
    with pytest.raises(RuntimeError):
        await client.retrieve("v")


async def test_key_echoed_in_a_task_error_is_redacted(client_for: MakeClient) -> None:
    """A failed task whose error repeats the key does not hand the key to the caller."""
    error = {"code": f"bad_{KEY}", "message": f"upstream saw key {KEY}"}
    task = await client_for(answer(200, task_json(status="failed", error=error))).retrieve("v")
    assert KEY not in f"{task!r}"
    assert task.error_message == "upstream saw key [key]"


async def test_a_user_password_in_the_base_is_neither_sent_nor_in_messages() -> None:
    """``--api-base http://user:pw@host/v1``: the password reaches no request and no message."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500, text="upstream down")

    base = BASE.replace("https://", "https://someone:hunter2@")
    async with ApiClient(base, KEY, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(TransientError) as caught:
            await client.create({"model": "omni-fast", "prompt": "p"}, "k-1")
    assert "hunter2" not in caught.value.message and "someone" not in caught.value.message
    assert "hunter2" not in str(seen[0].url)
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"


async def test_a_one_character_key_does_not_hide_a_forgotten_task() -> None:
    """Key "x": a 400 task_not_exist is still NotFound with its code intact, not [key]."""
    body = {"error": {"code": "task_not_exist", "message": "no such task"}}
    transport = httpx.MockTransport(answer(400, body))
    async with ApiClient(BASE, "x", transport=transport) as client:
        with pytest.raises(NotFound) as caught:
            await client.create(BODY, "k")
    assert caught.value.code == "task_not_exist"


async def test_a_one_character_key_does_not_hide_a_policy_refusal() -> None:
    """Key "o" inside "content_policy_violation": the task is still a policy refusal."""
    error = {"code": "content_policy_violation", "message": "blocked by moderation"}
    transport = httpx.MockTransport(answer(200, task_json(status="failed", error=error)))
    async with ApiClient(BASE, "o", transport=transport) as client:
        task = await client.retrieve("v")
    assert task.is_policy_refusal
    assert task.error_code == "policy_refusal"


# -- what a hostile server can send: ids, sizes, time, bases ------------------------------------


@pytest.mark.parametrize(
    "task_id",
    # The longest id a whole answer under MAX_ANSWER_BYTES can carry is about a million.
    ["v" * 1_000_000, "video_\x1b]0;owned\x07", "video\n1", 12345],
    ids=["huge", "osc", "newline", "number"],
)
async def test_a_create_answered_with_an_unkeepable_id_is_unusable(
    client_for: MakeClient, task_id: object
) -> None:
    """A create whose task id cannot be kept raises UnusableAnswer (the task may exist and be
    billed: never sent again), with a short message that does not repeat the id."""
    with pytest.raises(UnusableAnswer) as caught:
        await client_for(answer(200, task_json(id=task_id))).create(BODY, "k")
    assert len(caught.value.message) < 300
    assert "owned" not in caught.value.message and "vvvvvvvv" not in caught.value.message
    assert "may exist" in caught.value.message


@pytest.mark.parametrize(
    ("provider", "answer_json"),
    [
        ("veo", {"name": "models/x/operations/../../../../etc/passwd"}),
        ("veo", {"name": "models/x/operations//op"}),
        ("runway", {"id": "../../v1/admin"}),
    ],
)
async def test_a_create_answered_with_an_id_no_poll_can_name_is_unusable(
    provider: str, answer_json: dict[str, object]
) -> None:
    """Where ids are paths (Veo, Runway), an id with a dot or empty segment could never be
    polled: refused at the create, as an id that cannot be kept, not stored to time out."""
    from runner.providers import PROFILES

    client = ApiClient(
        BASE,
        KEY,
        profile=PROFILES[provider],
        transport=httpx.MockTransport(answer(200, answer_json)),
    )
    async with client:
        with pytest.raises(UnusableAnswer) as caught:
            await client.create(BODY, "k")
    assert "empty or dot path segment" in caught.value.message
    assert "may exist" in caught.value.message


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "v" * 1_000_000},
        {"id": "video\x1b[2J"},
        {"status": "completed", "video_url": "javascript:alert(1)"},
        {"status": "completed", "video_url": "https://f.test/" + "a" * 20_000},
        {"status": ["completed"]},
    ],
    ids=["huge-id", "escape-id", "bad-url", "long-url", "list-status"],
)
async def test_a_poll_answer_with_unusable_fields_is_a_transient_fault(
    client_for: MakeClient, fields: dict[str, object]
) -> None:
    """A poll answered with a field that cannot be used is a server fault to retry, not a
    crash and not a value handed to the engine."""
    with pytest.raises(TransientError) as caught:
        await client_for(answer(200, {**task_json(), **fields})).retrieve("video_abc123")
    assert caught.value.sent is True
    assert len(caught.value.message) < 3000


async def test_a_task_answer_over_the_cap_is_transient_and_sent(client_for: MakeClient) -> None:
    """A 2xx body over MAX_ANSWER_BYTES (a task padded to 2 MiB) is not read: TransientError,
    sent=True for a create, since the task may exist."""
    padded = task_json(padding="x" * (2 * 1024 * 1024))
    with pytest.raises(TransientError) as caught:
        await client_for(answer(200, padded)).create(BODY, "k")
    assert caught.value.sent is True
    assert f"{MAX_ANSWER_BYTES:,} bytes" in caught.value.message


class Endless(httpx.AsyncByteStream):
    """A body of ``total`` bytes in 64 KiB chunks, with no length announced; counts what was
    pulled from it."""

    def __init__(self, total: int, chunk: bytes = b"x" * 65536) -> None:
        self.total, self.chunk, self.pulled = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += len(self.chunk)
            yield self.chunk


@pytest.mark.parametrize("status", [200, 500])
async def test_an_unannounced_huge_answer_is_read_only_to_the_cap(
    client_for: MakeClient, status: int
) -> None:
    """A poll answered with 256 MiB and no Content-Length: the client stops reading just past
    the cap (memory stays bounded) and calls it a transient server fault."""
    body = Endless(256 * 1024 * 1024)
    with pytest.raises(TransientError) as caught:
        await client_for(answer(status, stream=body)).retrieve("video_1")
    assert caught.value.sent is True
    assert body.pulled <= MAX_ANSWER_BYTES + 2 * 65536


async def test_a_huge_server_message_is_kept_shortened(client_for: MakeClient) -> None:
    """A 960 kB error message (under the answer cap) becomes 2,000 characters and a note of
    its length, in the error and in a failed task's fields."""
    huge = "refused " * 120_000
    with pytest.raises(Rejected) as caught:
        await client_for(answer(400, {"error": {"message": huge}})).create(BODY, "k")
    assert len(caught.value.message) < 2300
    assert "959,999 characters" in caught.value.message
    failed = task_json(status="failed", error={"code": "x", "message": huge})
    task = await client_for(answer(200, failed)).retrieve("video_abc123")
    assert task.error_message is not None and len(task.error_message) < 2100


class Trickle(httpx.AsyncByteStream):
    """A body sent a piece at a time, ``gap`` seconds apart."""

    def __init__(self, pieces: list[bytes], gap: float) -> None:
        self.pieces, self.gap = pieces, gap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            await asyncio.sleep(self.gap)
            yield piece


async def test_a_trickled_answer_is_cut_at_the_request_deadline() -> None:
    """A poll answer trickled a byte at a time (each gap far under the read timeout) is cut
    once the whole request passes its deadline: TransientError(sent=True)."""
    body = json.dumps(task_json()).encode()
    trickle = Trickle([bytes([byte]) for byte in body], gap=0.05)
    transport = httpx.MockTransport(answer(200, stream=trickle))
    async with ApiClient(BASE, KEY, transport=transport, request_timeout=0.5) as client:
        began = time.monotonic()
        with pytest.raises(TransientError) as caught:
            await client.retrieve("video_abc123")
    assert caught.value.sent is True
    assert "0.5 s" in caught.value.message
    # The whole answer would take len(body) * 0.05 s (several seconds): it was cut well before.
    assert time.monotonic() - began < len(body) * 0.05


async def test_a_create_body_lengthens_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A create's deadline grows with its body (its upload at MIN_UPLOAD_RATE): a slow answer
    within that time is read whole."""
    monkeypatch.setattr("runner.api.client.MIN_UPLOAD_RATE", 1_000)

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.4)
        return httpx.Response(200, json=task_json())

    transport = httpx.MockTransport(slow)
    big = {**BODY, "prompt": "p" * 1_000}  # about one more second at 1,000 bytes/s
    async with ApiClient(BASE, KEY, transport=transport, request_timeout=0.2) as client:
        task = await client.create(big, "k")
        with pytest.raises(TransientError):
            await client.retrieve("video_abc123")
    assert task.id == "video_abc123"


async def test_no_cookie_is_kept_or_sent(client_for: MakeClient) -> None:
    """A Set-Cookie from the API is neither kept nor sent back: the key is the credential."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=task_json(), headers={"Set-Cookie": "session=abc; Path=/"})

    client = client_for(handler)
    await client.retrieve("video_abc123")
    await client.retrieve("video_abc123")
    assert "Cookie" not in seen[1].headers


@pytest.mark.parametrize(
    "base",
    [
        "http://127.0.0.1:9/v1?token=Q-secret",
        "https://api.example.test/v1/?token=Q-secret",
        "https://api.example.test/v1#Q-secret",
        "https://api.example.test/v1?",
    ],
)
def test_a_base_with_a_query_or_fragment_is_refused(base: str) -> None:
    """An API base with a query string or fragment is a ConfigError (exit 2) before anything
    is sent, and the message does not repeat the query (it may be a secret)."""
    with pytest.raises(ConfigError) as caught:
        ApiClient(base, KEY)
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert "Q-secret" not in caught.value.message
    assert "query string or fragment" in caught.value.message


@pytest.mark.parametrize("task_id", ["v" * 5_000_000, "video\x1b[2J"], ids=["huge", "escape"])
async def test_polling_an_id_that_could_not_be_kept_sends_nothing(
    client_for: MakeClient, task_id: str
) -> None:
    """A stored id this client would refuse today (an older version kept it) cannot be polled:
    a short ApiError, not httpx's InvalidURL, and nothing is sent."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=task_json())

    with pytest.raises(ApiError) as caught:
        await client_for(handler).retrieve(task_id)
    assert type(caught.value) is ApiError
    assert len(caught.value.message) < 300 and "\x1b" not in caught.value.message
    assert seen == []


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, br", "compress"])
async def test_an_answer_in_an_encoding_not_asked_for_is_not_read(
    client_for: MakeClient, encoding: str
) -> None:
    """The client asks for gzip or deflate only: an answer encoded otherwise (brotli and zstd
    inflate far more than deflate) is a server fault, its body unread."""
    body = Endless(64 * 1024 * 1024)
    handler = answer(200, stream=body, headers={"Content-Encoding": encoding})
    with pytest.raises(TransientError) as caught:
        await client_for(handler).retrieve("video_1")
    assert caught.value.sent is True
    assert "not asked for" in caught.value.message
    assert body.pulled == 0


def test_a_large_answer_must_be_a_clip_not_millions_of_values() -> None:
    """Over the answer cap (a Veo answer that may carry its clip) the bulk must be one
    value: 5 MB of ``{},`` (tens of millions of objects once parsed) is unreadable before it
    is parsed; the same size of base64 in one field is read; deep nesting and integers no
    float holds are unreadable or infinite, never an exception of another kind."""
    from runner.api.client import answer_json

    with pytest.raises(ValueError, match="many small values"):
        answer_json(b"[" + b"{}," * 2_000_000 + b"{}]")
    clip = base64.b64encode(bytes(4_000_000)).decode()
    assert answer_json(json.dumps({"video": {"encodedVideo": clip}}).encode())["video"]
    with pytest.raises(ValueError, match="nested too deeply"):
        answer_json(b"[" * 500_000)
    assert answer_json(b'{"cost": 1' + b"0" * 400 + b"}") == {"cost": float("inf")}
