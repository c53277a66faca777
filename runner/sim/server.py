"""The simulator's shared core: the two listeners, faults, tasks, the file host, and how it runs.

Two aiohttp listeners, so that the file host is a different origin from the API:

- API: the routes of the configured dialect (``gateway.py``, ``veo.py``, ``runway.py``),
  which answer through the helpers here (``read_create``, ``start_task``, ``known_task``,
  ``maybe_drop``, ``file_url``, ``send_clip``); the dialect checks the key when a token is
  set and shapes every error.
- files: ``GET /files/{id}.mp4?exp=..&sig=..``, HMAC-signed and expiring, no auth,
  ``Range`` answered with 206. Clip bodies (here and on the gateway's ``/content``) can be
  paced (``file_rate``), stalled after some bytes (``stall_after``), or cut once per task
  (``cut_after``); the first URL of each task can be made to answer as expired
  (``expire_first_url``).

Request-level faults are drawn per request from the seeded RNG, in this order: a 5xx (as a
proxy would answer, before auth), auth, a 429, then the request itself. ``deny_polls``
refuses every retrieve after those, as a key revoked mid-run would; ``create_delay`` holds
each create before any of it. ``start_in_thread``
runs a simulator in a daemon thread for tests and ``run --simulate``; ``serve`` runs one in
the caller's event loop for ``shotrunner sim``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import random
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from runner.sim.clip import clip_size, iter_clip
from runner.sim.config import SimConfig
from runner.sim.dialect import Dialect
from runner.sim.dialects import DIALECTS
from runner.sim.recorder import Listener, RecordedRequest, Recorder
from runner.sim.state import OUTCOMES, Outcome, Task, TaskStore

#: How long stopping waits for requests still being answered (a long download, say).
_SHUTDOWN_SECONDS = 0.5
#: Images travel inside the JSON as data URIs, so creates can be big (aiohttp allows 1 MiB).
_MAX_BODY_BYTES = 100 * 1024 * 1024
#: job_seconds varies by up to this share either way, so tasks do not finish in lockstep.
_JITTER = 0.1
#: How many writes a second a paced file body gets; how often a stalled one looks for a hang-up.
_PACE_PER_SECOND = 20
_STALL_CHECK_SECONDS = 0.05
_HTML_ERROR = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"
# What a handler tells the recording middleware about its request.
_BODY = web.RequestKey("body", object)
_TASK_ID = web.RequestKey("task_id", str)
_CREATED = web.RequestKey("created", bool)
_DROPPED = web.RequestKey("dropped", bool)
_REPLAYED = web.RequestKey("replayed", bool)
_REASONS = {
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Unavailable",
}


class Simulator:
    """One simulated service: its tasks, its two listeners, its recorder."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.recorder = Recorder(keep=config.record)
        self.api_origin = ""
        self.base_url = ""
        self.file_base_url = ""
        self._rng = random.Random(config.seed)
        self.dialect: Dialect = DIALECTS[config.dialect](self)
        self._store: TaskStore | None = None
        self._runners: list[web.AppRunner] = []
        # Tasks whose one cut body (cut_after) or one expired URL (expire_first_url) is spent.
        self._cut_tasks: set[str] = set()
        self._expired_tasks: set[str] = set()

    @property
    def store(self) -> TaskStore:
        if self._store is None:
            raise RuntimeError("the simulator is not started")
        return self._store

    async def start(self) -> None:
        """Open the state and start both listeners; ready to answer when this returns."""
        self._store = TaskStore(self.config.state_path)
        try:
            file_port = await self._listen(self._files_app(), self.config.file_port)
            api_port = await self._listen(self._api_app(), self.config.port)
        except BaseException:
            await self.close()
            raise
        host = _url_host(self.config.host)
        scheme = "http" if self.config.ssl_context is None else "https"
        self.api_origin = f"{scheme}://{host}:{api_port}"
        self.base_url = self.api_origin + self.dialect.base_path
        self.file_base_url = f"{scheme}://{host}:{file_port}"

    async def close(self) -> None:
        """Stop both listeners and close the state file. Safe to call twice."""
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()
        if self._store is not None:
            self._store.close()

    async def _listen(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_SECONDS)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.config.host, port, ssl_context=self.config.ssl_context)
        await site.start()
        address = runner.addresses[0]
        return int(address[1])

    # ----- applications -------------------------------------------------------------------

    def _api_app(self) -> web.Application:
        app = web.Application(middlewares=[self._recording("api")], client_max_size=_MAX_BODY_BYTES)
        app.router.add_routes(self.dialect.routes())
        return app

    def _files_app(self) -> web.Application:
        app = web.Application(middlewares=[self._recording("files")])
        app.router.add_get("/files/{task_id}.mp4", self._file)
        return app

    def _recording(self, listener: Listener) -> Any:
        recorder = self.recorder

        @web.middleware
        async def record(
            request: web.Request,
            handler: Callable[[web.Request], Any],
        ) -> web.StreamResponse:
            status: int | None = 500
            response: web.StreamResponse
            try:
                response = await handler(request)
                status = None if request.get(_DROPPED) else response.status
            except web.HTTPException as error:
                status = error.status
                if listener != "api":
                    raise
                code = error.reason.lower().replace(" ", "_")
                response = self.dialect.error(status, code, error.reason)
            finally:
                if recorder.listening:
                    recorder.add(
                        RecordedRequest(
                            listener=listener,
                            method=request.method,
                            path=request.path,
                            query=dict(request.query),
                            headers={k.lower(): v for k, v in request.headers.items()},
                            json=request.get(_BODY),
                            status=status,
                            task_id=request.get(_TASK_ID) or request.match_info.get("task_id"),
                            created=bool(request.get(_CREATED)),
                            at=time.time(),
                        )
                    )
                elif request.get(_CREATED):
                    recorder.count_created()
            return response

        return record

    # ----- what every dialect's handlers share --------------------------------------------

    async def read_create(self, request: web.Request) -> Any:
        """The JSON body of a create, after ``create_delay`` and the request faults; or the
        answer to give instead (a ``web.Response``)."""
        if self.config.create_delay:
            await asyncio.sleep(self.config.create_delay)
        refusal = self._gate(request)
        if refusal is not None:
            return refusal
        try:
            body = await request.json()
        except ValueError:
            return self.dialect.error(400, "invalid_request", "The request body is not valid JSON.")
        request[_BODY] = body
        return body

    def start_task(
        self, request: web.Request, model: str, seconds: str | None
    ) -> Task | web.Response:
        """The task a valid create makes, or replays by its idempotency key; or the answer
        to give instead (429 at ``max_active``)."""
        now = time.time()
        store = self.store
        # Kept with the task even when not honoured: the state file shows what was sent.
        key = request.headers.get("Idempotency-Key") or None
        if key and self.dialect.honours_idempotency():
            existing = store.by_key(key)
            if existing is not None:
                request[_TASK_ID] = existing.id
                request[_REPLAYED] = True
                return existing
        limit = self.config.max_active
        if limit is not None and store.active_count(now) >= limit:
            return self.dialect.busy(limit)
        task = self._new_task(model, seconds, key, now)
        store.add(task)
        request[_TASK_ID] = task.id
        request[_CREATED] = True
        return task

    def replayed(self, request: web.Request) -> bool:
        """Whether ``start_task`` answered this create with a task made before."""
        return bool(request.get(_REPLAYED))

    def known_task(
        self, request: web.Request, poll: bool = False, task_id: str | None = None
    ) -> Task | web.Response:
        """The task a request names (``task_id``, or the route's), or the answer to give
        instead (a fault, 401, not found). ``poll`` marks a retrieve, which ``deny_polls``
        refuses."""
        refusal = self._gate(request)
        if refusal is not None:
            return refusal
        denied = self.config.deny_polls
        if poll and denied is not None:
            return self.dialect.denied(denied)
        task = self.store.get(task_id or request.match_info["task_id"])
        return self.dialect.not_found() if task is None else task

    def maybe_drop(self, request: web.Request, response: web.Response) -> web.Response:
        """With ``drop_rate``, abort the connection: the task exists, the answer is lost."""
        rate = self.config.drop_rate
        if rate and self._rng.random() < rate and request.transport is not None:
            request[_DROPPED] = True
            request.transport.abort()
        if self.replayed(request):
            response.headers["Idempotent-Replayed"] = "true"
        return response

    def file_url(self, task_id: str, now: float) -> str:
        """A signed, expiring URL of the task's clip on the file host (another origin)."""
        # Rounded down to the millisecond: rounding up would stretch a tiny --url-ttl, and a
        # quick client would then find "always expired" links still valid.
        expires = f"{math.floor((now + self.config.url_ttl) * 1000) / 1000:.3f}"
        signature = self._sign(task_id, expires)
        return f"{self.file_base_url}/files/{task_id}.mp4?exp={expires}&sig={signature}"

    # ----- file listener ------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.StreamResponse:
        task_id = request.match_info["task_id"]
        expires = request.query.get("exp", "")
        signature = request.query.get("sig", "")
        if not hmac.compare_digest(signature.encode(), self._sign(task_id, expires).encode()):
            return web.Response(status=403, text="Signature does not match.\n")
        try:
            expired = float(expires) < time.time()
        except ValueError:
            expired = True
        if expired:
            return web.Response(status=403, text="Request has expired.\n")
        task = self.store.get(task_id)
        if task is None or task.phase(time.time())[0] != "completed":
            return web.Response(status=404, text="No such file.\n")
        if self.config.expire_first_url and task_id not in self._expired_tasks:
            self._expired_tasks.add(task_id)
            return web.Response(status=403, text="Request has expired.\n")
        return await self.send_clip(request, task_id)

    async def send_clip(self, request: web.Request, task_id: str) -> web.StreamResponse:
        """The task's clip as the answer to ``request`` (Range, pacing, stalls and cuts)."""
        total = clip_size(task_id, self.config.clip_bytes)
        try:
            wanted = request.http_range
        except ValueError:
            # A malformed Range is ignored, as RFC 9110 allows: the whole file follows.
            wanted = slice(None, None)
        response = web.StreamResponse()
        response.content_type = "video/mp4"
        response.headers["Accept-Ranges"] = "bytes"
        start, stop = 0, total
        if wanted.start is not None:
            start = max(0, total + wanted.start) if wanted.start < 0 else wanted.start
            stop = total if wanted.stop is None else min(wanted.stop, total)
            if start >= total:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{total}"})
            response.set_status(206)
            response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{total}"
        response.content_length = stop - start
        await response.prepare(request)
        try:
            if request.method != "HEAD":
                await self._write_body(request, response, task_id, start, stop)
            await response.write_eof()
        except ConnectionError:
            # The client went away mid-download: normal for a client that resumes later.
            pass
        return response

    async def _write_body(
        self,
        request: web.Request,
        response: web.StreamResponse,
        task_id: str,
        start: int,
        stop: int,
    ) -> None:
        """Bytes ``[start, stop)`` of the clip, paced by ``file_rate``, stalled by
        ``stall_after``, or cut short once per task by ``cut_after``."""
        config = self.config
        cuts = (
            config.cut_after is not None
            and task_id not in self._cut_tasks
            and start + config.cut_after < stop
        )
        if config.cut_after is not None and cuts:
            self._cut_tasks.add(task_id)
            stop = start + config.cut_after
        stalls = config.stall_after is not None and start + config.stall_after < stop
        if config.stall_after is not None and stalls:
            stop = start + config.stall_after
        rate = config.file_rate
        began = time.monotonic()
        sent = 0
        for chunk in iter_clip(task_id, config.clip_bytes, start, stop):
            piece = len(chunk) if rate is None else max(1, int(rate / _PACE_PER_SECOND))
            for offset in range(0, len(chunk), piece):
                block = chunk[offset : offset + piece]
                await response.write(block)
                sent += len(block)
                if rate is not None:
                    # Sleep until these bytes are due, so that the rate holds on average.
                    await asyncio.sleep(max(0.0, began + sent / rate - time.monotonic()))
        if cuts and request.transport is not None:
            # close(), not abort(): the bytes already written reach the client, then the end
            # of the stream, short of Content-Length.
            request.transport.close()
        elif stalls:
            await _until_gone(request)

    # ----- pieces -------------------------------------------------------------------------

    def _gate(self, request: web.Request) -> web.Response | None:
        """The request-level faults and auth, in the order a real deployment meets them."""
        config = self.config
        rng = self._rng
        if config.error_rate and rng.random() < config.error_rate:
            return self._server_error()
        if config.token is not None:
            refusal = self.dialect.key_refusal(request, config.token)
            if refusal is not None:
                return refusal
        if config.rate_limit_rate and rng.random() < config.rate_limit_rate:
            response = self.dialect.rate_limited()
            if rng.random() < 0.2:
                response.headers["Retry-After"] = "1"
            return response
        return None

    def _server_error(self) -> web.Response:
        status = self._rng.choice((500, 502, 503))
        form = self._rng.random()
        if form < 0.5:
            return self.dialect.error(status, "server_error", _REASONS[status])
        if form < 0.8:
            html = _HTML_ERROR.format(_REASONS[status])
            return web.Response(status=status, text=html, content_type="text/html")
        return web.Response(status=status)

    def _new_task(self, model: str, seconds: str | None, key: str | None, now: float) -> Task:
        config = self.config
        rng = self._rng
        duration = config.job_seconds * (1.0 + rng.uniform(-_JITTER, _JITTER))
        return Task(
            id=self.dialect.new_task_id(),
            created_at=now,
            duration=duration,
            outcome=self._draw_outcome(),
            model=model,
            seconds=seconds,
            variant=rng.randrange(1_000_000),
            idempotency_key=key,
        )

    def _draw_outcome(self) -> Outcome:
        draw = self._rng.random()
        config = self.config
        threshold = 0.0
        rates = (config.fail_rate, config.refuse_rate, config.hang_rate, config.lose_rate)
        for outcome, rate in zip(OUTCOMES[1:], rates, strict=True):
            threshold += rate
            if draw < threshold:
                return outcome
        return "completed"

    def _sign(self, task_id: str, expires: str) -> str:
        message = f"{task_id}:{expires}".encode()
        return hmac.new(self.store.secret, message, hashlib.sha256).hexdigest()[:32]


async def _until_gone(request: web.Request) -> None:
    """Hold a stalled response open, sending nothing, until the client hangs up."""
    while request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(_STALL_CHECK_SECONDS)


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


# ----- running it ---------------------------------------------------------------------------


class RunningSim:
    """A simulator serving from its own thread; ``stop()`` (or leaving the ``with``) ends it."""

    def __init__(
        self,
        simulator: Simulator,
        loop: asyncio.AbstractEventLoop,
        stopping: asyncio.Event,
        thread: threading.Thread,
    ) -> None:
        self.config = simulator.config
        self.api_origin = simulator.api_origin
        self.base_url = simulator.base_url
        self.file_base_url = simulator.file_base_url
        self.recorder = simulator.recorder
        self._loop = loop
        self._stopping = stopping
        self._thread = thread
        self._lock = threading.Lock()
        self._stopped = False

    def stop(self) -> None:
        """Stop serving, close the state file and join the thread. Safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()

    def __enter__(self) -> RunningSim:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(config: SimConfig) -> RunningSim:
    """Start a simulator in a daemon thread; return once both listeners accept connections."""
    ready = threading.Event()
    started: dict[str, Any] = {}

    async def main() -> None:
        simulator = Simulator(config)
        try:
            await simulator.start()
        except BaseException as error:
            started["error"] = error
            ready.set()
            return
        stopping = asyncio.Event()
        started.update(simulator=simulator, loop=asyncio.get_running_loop(), stopping=stopping)
        ready.set()
        try:
            await stopping.wait()
        finally:
            await simulator.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="shotrunner-sim")
    thread.daemon = True
    thread.start()
    ready.wait()
    if "error" in started:
        thread.join()
        raise started["error"]
    return RunningSim(started["simulator"], started["loop"], started["stopping"], thread)


async def serve(
    config: SimConfig,
    on_ready: Callable[[str], None],
    on_request: Callable[[RecordedRequest], None] | None = None,
) -> None:
    """Serve in the running event loop until cancelled; ``on_ready`` gets the base URL."""
    simulator = Simulator(config)
    if on_request is not None:
        simulator.recorder.subscribe(on_request)
    await simulator.start()
    try:
        on_ready(simulator.base_url)
        await asyncio.Event().wait()
    finally:
        await simulator.close()
