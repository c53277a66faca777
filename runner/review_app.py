"""The review app: the contact sheet served on loopback, where takes are picked and rejected.

``shotrunner review`` serves the page of ``runner.report`` (``render_app_page``) from an
aiohttp server on 127.0.0.1, under a random token that every URL carries
(``http://127.0.0.1:PORT/TOKEN/``). This module owns what the server lets through and what
it answers:

- ``guard``: 403 for a request without the token, or whose ``Host`` or ``Origin`` is not
  the server's own (a page of another site, even one whose name resolves to 127.0.0.1,
  cannot use it); changes are POSTs of JSON.
- the page and its assets, under a Content-Security-Policy that allows scripts and styles
  from the page's own origin only (no inline code);
- files: clips and images inside the batch folder, by their path there (never a path that
  leads out of it, through ``..`` or a symlink), and the input images the manifest names,
  by number;
- ``state``: the page's shots as rendered now, for the page to poll; a shot whose markup
  changed (a take finished by a run in another terminal, a verdict) is replaced;
- ``verdict`` and ``undo``: a pick or rejection recorded as ``pick`` and ``reject`` record
  it (``runner.report.set_verdict``, then the static ``index.html`` rewritten), and the last
  of them taken back.

The store is opened for each request in a worker thread (``Store`` is one per thread), so a
run writing the same database in another process is never held up for long.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import signal
import socket
import threading
import time
import webbrowser
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from aiohttp import web

from runner.errors import InputError
from runner.model import Manifest
from runner.report import (
    APP_ASSETS,
    APP_SCRIPTS,
    APP_STYLES,
    ReportData,
    ShotView,
    Verdict,
    collect,
    filter_counts,
    lazy_videos,
    render_app_page,
    render_shot,
    resolve_take,
    set_verdict,
    totals_counts,
    write_report,
)
from runner.store import STATE_DB, Store

#: How often the page asks for changes, in seconds.
POLL_SECONDS = 2.0
#: On a big sheet the page asks less often: the server spends at most this share of its
#: time answering one page's polls (a sheet of 10,000 takes takes about a second to read).
POLL_SHARE = 0.1
#: What the server serves from the batch folder: clips and images, nothing else (not the
#: state database, not the sidecars).
SERVED_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".png", ".jpg", ".jpeg", ".webp"})
#: The largest JSON body a change may carry.
MAX_BODY = 4096
#: The Content-Security-Policy of every answer: as strict as the static sheet's, with the
#: page's scripts and styles as files of its own origin instead of inline hashes.
POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    # The token is in every URL: no request may carry it elsewhere as a referrer.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}
ASSET_TYPES = {".js": "text/javascript", ".css": "text/css"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The page as it is now: its data, each shot's section (with its digest) and a version
    that changes whenever anything on the page does."""

    data: ReportData
    sections: tuple[tuple[str, str, str], ...]  # shot id, digest, html
    version: str


@dataclass
class UndoEntry:
    """What one change replaced: the verdicts of every take of a shot before it."""

    shot: str
    before: dict[int, Verdict | None]
    said: str


@dataclass
class ReviewApp:
    """The state of one review server: its manifest, token, own address and undo list."""

    manifest: Manifest
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = 0
    undo: list[UndoEntry] = field(default_factory=list)
    #: Changes are made one at a time (a pick and an undo must not interleave).
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.token}/"

    @property
    def hosts(self) -> frozenset[str]:
        """The ``Host`` values this server answers: its own address, by number or name."""
        return frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})

    # -- reading -------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Read the store and the files and render the page's sections (a worker thread)."""
        store = Store.open_existing(self.manifest.output_dir)
        if store is None:
            data = collect(self.manifest, None)
        else:
            with store:
                data = collect(self.manifest, store)
        data = replace(data, shots=tuple(_served_images(shot) for shot in data.shots))
        lazy = lazy_videos(data)
        sections = []
        for shot in data.shots:
            html = render_shot(shot, data.manifest, lazy, interactive=True)
            digest = hashlib.sha256(html.encode("utf-8")).hexdigest()[:20]
            # The digest rides on the section, so the page knows which markup it shows.
            html = html.replace("<section ", f'<section data-digest="{digest}" ', 1)
            sections.append((shot.id, digest, html))
        counts = json.dumps([totals_counts(data), filter_counts(data)], sort_keys=True)
        whole = hashlib.sha256(counts.encode())
        for _, digest, _ in sections:
            whole.update(digest.encode())
        return Snapshot(data, tuple(sections), whole.hexdigest()[:20])

    def document(self, snapshot: Snapshot, shots: set[str] | None = None) -> dict[str, Any]:
        """The JSON the page applies: version, totals, filter counts, undo, and sections
        (those in ``shots``, or all)."""
        return {
            "version": snapshot.version,
            "totals": totals_counts(snapshot.data),
            "filters": filter_counts(snapshot.data),
            "undo": self.undo[-1].said if self.undo else None,
            "shots": [
                {"id": shot_id, "digest": digest, "html": html}
                for shot_id, digest, html in snapshot.sections
                if shots is None or shot_id in shots
            ],
        }

    # -- changing --------------------------------------------------------------------------

    def give_verdict(self, shot_id: str, take: int, verdict: Verdict | None) -> str:
        """Record a verdict as ``pick`` and ``reject`` do, remember what it replaced, and
        rewrite the static sheet; returns the shot's id (a worker thread)."""
        with self.lock, self._store() as store:
            shot = resolve_take(self.manifest, shot_id, take)
            before = _shot_verdicts(store, shot.id, shot.takes)
            set_verdict(self.manifest, store, shot.id, take, verdict)
            if _shot_verdicts(store, shot.id, shot.takes) != before:
                said = f"{verdict or 'cleared'} {shot.id} take {take}"
                self.undo.append(UndoEntry(shot.id, before, said))
            write_report(self.manifest, store)
            return shot.id

    def take_back(self) -> str:
        """Undo the last change: the shot's verdicts as they were before it (a worker thread)."""
        with self.lock:
            if not self.undo:
                raise InputError("nothing to undo")
            entry = self.undo[-1]
            with self._store() as store:
                shot = resolve_take(self.manifest, entry.shot, 1)
                now = _shot_verdicts(store, shot.id, shot.takes)
                # Clear and reject first, pick last: a pick un-picks the shot's other takes.
                order = sorted(entry.before.items(), key=lambda item: item[1] == "picked")
                for take, verdict in order:
                    if now.get(take) != verdict or verdict == "picked":
                        set_verdict(self.manifest, store, shot.id, take, verdict)
                write_report(self.manifest, store)
            self.undo.pop()
            return entry.shot

    def _store(self) -> Store:
        if not (self.manifest.output_dir / STATE_DB).is_file():
            raise InputError(
                f"no batch at {self.manifest.output_dir} (no state.db): nothing has been "
                "rendered yet, so there is nothing to pick or reject"
            )
        return Store.open(self.manifest.output_dir)

    # -- files -----------------------------------------------------------------------------

    def batch_file(self, tail: str) -> Path | None:
        """The file at ``tail`` inside the batch folder, if it is one the page may load: a
        clip or an image, whose real path (symlinks followed) stays inside the folder and
        is itself a clip or an image (a link named ``.mp4`` to ``state.db`` is not)."""
        parts = PurePosixPath(tail).parts
        if not parts or any(part in ("..", ".", "") or "\\" in part for part in parts):
            return None
        if PurePosixPath(tail).is_absolute() or Path(tail).suffix.lower() not in SERVED_SUFFIXES:
            return None
        root = self.manifest.output_dir.resolve()
        try:
            path = root.joinpath(*parts).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, a NUL
            return None
        if not path.is_relative_to(root) or path.suffix.lower() not in SERVED_SUFFIXES:
            return None
        return path if path.is_file() else None

    def input_image(self, shot_index: int, image_index: int) -> Path | None:
        """A local input image the manifest names, by shot and image number (from 1)."""
        shots = self.manifest.shots
        if not 1 <= shot_index <= len(shots):
            return None
        images = shots[shot_index - 1].images
        if not 1 <= image_index <= len(images):
            return None
        image = images[image_index - 1]
        if image.kind != "file" or image.path is None or not image.path.is_file():
            return None
        return image.path


def _served_images(shot: ShotView) -> ShotView:
    """The shot with its local input images pointed at the server's ``_input`` route: they
    may live outside the batch folder, which the server never serves from."""
    images = tuple(
        replace(image, src=f"_input/{shot.index}/{n}") if image.kind == "file" else image
        for n, image in enumerate(shot.images, start=1)
    )
    return replace(shot, images=images)


def _shot_verdicts(store: Store, shot_id: str, takes: int) -> dict[int, Verdict | None]:
    verdicts = store.verdicts()
    return {take: verdicts.get((shot_id, take)) for take in range(1, takes + 1)}


# --- the server ------------------------------------------------------------------------


def make_app(review: ReviewApp) -> web.Application:
    """The aiohttp application: the guard, then the page, its assets, the files, the API."""
    app = web.Application(middlewares=[_guard(review)], client_max_size=MAX_BODY)
    prefix = f"/{review.token}"
    app.router.add_get(f"{prefix}/", _page(review))
    app.router.add_get(f"{prefix}/{APP_ASSETS}/{{name}}", _asset)
    app.router.add_get(f"{prefix}/_api/state", _state(review))
    app.router.add_post(f"{prefix}/_api/verdict", _verdict(review))
    app.router.add_post(f"{prefix}/_api/undo", _undo(review))
    app.router.add_get(f"{prefix}/_input/{{shot:\\d+}}/{{image:\\d+}}", _input(review))
    app.router.add_get(f"{prefix}/{{tail:.+}}", _file(review))
    return app


def _forbidden(reason: str) -> web.Response:
    return web.Response(status=403, text=f"forbidden: {reason}\n", headers=SECURITY_HEADERS)


def _guard(review: ReviewApp) -> Any:
    """Refuse (403) what is not this server's own page talking to it: a foreign ``Host``
    (DNS rebinding), a foreign ``Origin``, a path without the token, a change not sent as
    JSON. Every answer carries the security headers."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Host", "") not in review.hosts:
            return _forbidden("not this server's host")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in {f"http://{host}" for host in review.hosts}:
            return _forbidden("a page of another origin")
        segment = request.raw_path.split("?", 1)[0].split("/", 2)[1:2]
        token = segment[0] if segment else ""
        if not hmac.compare_digest(token.encode(), review.token.encode()):
            return _forbidden("no token")
        if request.method == "POST" and request.content_type != "application/json":
            return _forbidden("a change must be sent as JSON")
        try:
            response = await handler(request)
        except web.HTTPException as error:
            error.headers.update(SECURITY_HEADERS)
            raise
        response.headers.update(SECURITY_HEADERS)
        return response

    return guard


def _json(document: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.json_response(document, status=status, headers={"Cache-Control": "no-store"})


def _page(review: ReviewApp) -> Handler:
    async def page(request: web.Request) -> web.StreamResponse:
        snapshot = await asyncio.to_thread(review.snapshot)
        html = render_app_page(
            snapshot.data,
            [html for _, _, html in snapshot.sections],
            version=snapshot.version,
            poll_seconds=POLL_SECONDS,
        )
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    return page


async def _asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in (*APP_STYLES, *APP_SCRIPTS):
        raise web.HTTPNotFound()
    text = resources.files("runner").joinpath("report_assets", name).read_text(encoding="utf-8")
    return web.Response(text=text, content_type=ASSET_TYPES[Path(name).suffix])


def _state(review: ReviewApp) -> Handler:
    async def state(request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        snapshot = await asyncio.to_thread(review.snapshot)
        spent = time.monotonic() - started
        poll = {"poll_ms": round(max(POLL_SECONDS, spent / POLL_SHARE) * 1000)}
        if request.query.get("since") == snapshot.version:
            undo = review.undo[-1].said if review.undo else None
            return _json({"version": snapshot.version, "unchanged": True, "undo": undo, **poll})
        return _json({**review.document(snapshot), **poll})

    return state


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body is not a JSON object")
    return body


def _verdict(review: ReviewApp) -> Handler:
    async def verdict(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        shot, take, given = body.get("shot"), body.get("take"), body.get("verdict")
        if not isinstance(shot, str) or type(take) is not int:
            return _json({"error": "a verdict names a shot (text) and a take (number)"}, 400)
        if given not in ("picked", "rejected", "clear"):
            return _json({"error": "verdict is one of picked, rejected, clear"}, 400)
        chosen: Verdict | None = None if given == "clear" else given
        try:
            shot_id = await asyncio.to_thread(review.give_verdict, shot, take, chosen)
        except InputError as error:
            return _json({"error": error.message}, 409)
        snapshot = await asyncio.to_thread(review.snapshot)
        return _json(review.document(snapshot, {shot_id}))

    return verdict


def _undo(review: ReviewApp) -> Handler:
    async def undo(request: web.Request) -> web.StreamResponse:
        try:
            shot_id = await asyncio.to_thread(review.take_back)
        except InputError as error:
            return _json({"error": error.message}, 409)
        snapshot = await asyncio.to_thread(review.snapshot)
        return _json(review.document(snapshot, {shot_id}))

    return undo


def _input(review: ReviewApp) -> Handler:
    async def image(request: web.Request) -> web.StreamResponse:
        path = review.input_image(int(request.match_info["shot"]), int(request.match_info["image"]))
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    return image


def _file(review: ReviewApp) -> Handler:
    async def served(request: web.Request) -> web.StreamResponse:
        path = review.batch_file(request.match_info["tail"])
        if path is None:
            raise web.HTTPNotFound()
        # FileResponse answers range requests, which a <video> needs to seek.
        return web.FileResponse(path)

    return served


def listen(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1 only (``port`` 0: any free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise InputError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}") from None
    sock.setblocking(False)
    return sock


def serve(
    manifest: Manifest,
    *,
    port: int = 0,
    open_browser: bool = False,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the review app until interrupted (Ctrl-C or SIGTERM)."""
    asyncio.run(_serve(manifest, port, open_browser, announce))


async def _serve(
    manifest: Manifest, port: int, open_browser: bool, announce: Callable[[str], None]
) -> None:
    sock = listen(port)
    review = ReviewApp(manifest, port=sock.getsockname()[1])
    runner = web.AppRunner(make_app(review), access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        announce(f"review: {review.url}")
        announce("press Ctrl-C to stop")
        if open_browser:
            webbrowser.open(review.url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
