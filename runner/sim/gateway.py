"""The gateway's dialect (docs/api.md): ``/v1/videos``, Bearer keys, the documented task object.

``POST /v1/videos`` creates, ``GET /v1/videos/{id}`` retrieves (a completed task carries a
freshly signed ``video_url`` each time), ``GET /v1/videos/{id}/content`` answers the clip or,
with ``redirect_content``, a 302 to the file host. ``Idempotency-Key`` is honoured unless
``ignore_idempotency``.

In quirks mode each task keeps one odder dialect for its life, picked by its ``variant``:
status words in other cases and spellings, progress as a float or a ``"50%"`` string, the URL
in ``metadata.url`` or only behind ``/content`` (which may redirect to the file host), extra
unknown fields. Error bodies are flat (``{"code", "message", "data"}``) instead of nested.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any, ClassVar, Literal

from aiohttp import web

from runner.sim.dialect import Dialect, json_response
from runner.sim.state import Status, Task
from runner.sim.validation import check_create

#: Where a completed task's URL appears, in quirks mode.
UrlPlace = Literal["video_url", "metadata", "content_only"]
URL_PLACES: tuple[UrlPlace, ...] = ("video_url", "metadata", "content_only")

_STATUS_WORDS: dict[str, tuple[str, ...]] = {
    "queued": ("QUEUED", "submitted", "not_start", "Pending", "queued"),
    "in_progress": ("IN_PROGRESS", "processing", "Processing", "in_progress", "RUNNING"),
    "completed": ("SUCCESS", "succeeded", "Completed", "completed", "SUCCEEDED"),
    "failed": ("FAILURE", "failed", "Failed", "FAILED", "failure"),
}


class Gateway(Dialect):
    """The gateway of docs/api.md, the simulator's default dialect."""

    name: ClassVar[str] = "gateway"
    base_path: ClassVar[str] = "/v1"

    def honours_idempotency(self) -> bool:
        return not self.sim.config.ignore_idempotency

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/videos", self._create),
            web.get("/v1/videos/{task_id}", self._retrieve),
            web.get("/v1/videos/{task_id}/content", self._content),
        ]

    def new_task_id(self) -> str:
        return f"video_{secrets.token_hex(12)}"

    def key_refusal(self, request: web.Request, token: str) -> web.Response | None:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return None
        return self.error(401, "invalid_api_key", "Invalid or missing API key.")

    def error(self, status: int, code: str, message: str, param: str | None = None) -> web.Response:
        return json_response(error_body(code, message, self.sim.config.quirks, param), status)

    def rate_limited(self) -> web.Response:
        return self.error(429, "rate_limit_exceeded", "Upstream saturated, try later.")

    def not_found(self) -> web.Response:
        if self.sim.config.quirks:
            return self.error(400, "task_not_exist", "task_not_exist")
        return self.error(404, "task_not_found", "No task with this id.")

    # ----- handlers -----------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        sim = self.sim
        body = await sim.read_create(request)
        if isinstance(body, web.Response):
            return body
        problem = check_create(body)
        if problem is not None:
            return self.error(400, problem.code, problem.message, problem.param)
        task = sim.start_task(request, body["model"], body.get("seconds"))
        if isinstance(task, web.Response):
            return task
        if sim.replayed(request):
            return sim.maybe_drop(request, self._task_response(task, time.time()))
        fresh = task_body(task, "queued", 0, None, sim.config.quirks)
        return sim.maybe_drop(request, json_response(fresh))

    async def _retrieve(self, request: web.Request) -> web.StreamResponse:
        task = self.sim.known_task(request, poll=True)
        if isinstance(task, web.Response):
            return task
        return self._task_response(task, time.time())

    async def _content(self, request: web.Request) -> web.StreamResponse:
        sim = self.sim
        task = sim.known_task(request)
        if isinstance(task, web.Response):
            return task
        status, _ = task.phase(time.time())
        if status == "gone":
            return self.not_found()
        if status != "completed":
            message = f"Task {task.id} is not completed (status {status})."
            return self.error(400, "task_not_completed", message)
        if sim.config.redirect_content or (sim.config.quirks and redirects_content(task)):
            location = sim.file_url(task.id, time.time())
            return web.Response(status=302, headers={"Location": location})
        return await sim.send_clip(request, task.id)

    def _task_response(self, task: Task, now: float) -> web.Response:
        status, progress = task.phase(now)
        if status == "gone":
            return self.not_found()
        quirks = self.sim.config.quirks
        url = None
        if status == "completed" and url_place(task, quirks) != "content_only":
            url = self.sim.file_url(task.id, now)
        return json_response(task_body(task, status, progress, url, quirks))


def url_place(task: Task, quirks: bool) -> UrlPlace:
    return URL_PLACES[task.variant % len(URL_PLACES)] if quirks else "video_url"


def redirects_content(task: Task) -> bool:
    """Whether, in quirks mode, this task's ``/content`` redirects to the file host."""
    return (task.variant // 9) % 2 == 1


def task_body(
    task: Task, status: Status, progress: int, url: str | None, quirks: bool
) -> dict[str, Any]:
    """The task object for ``status`` and ``progress``; ``url`` when the task is done."""
    body: dict[str, Any] = {
        "id": task.id,
        "task_id": task.id,
        "object": "video",
        "model": task.model,
        "status": status,
        "progress": progress,
        "created_at": int(task.created_at),
        "video_url": url or "",
    }
    if task.seconds is not None:
        body["seconds"] = task.seconds
    if status == "failed":
        body["error"] = task.error
    if quirks:
        _quirk(body, task, status, progress, url)
    return body


def _quirk(
    body: dict[str, Any], task: Task, status: Status, progress: int, url: str | None
) -> None:
    variant = task.variant
    words = _STATUS_WORDS.get(status)
    if words is not None:
        body["status"] = words[variant % len(words)]
    form = (variant // 3) % 3
    if form == 1:
        body["progress"] = f"{progress}%"
    elif form == 2:
        body["progress"] = float(progress) + (0.5 if 0 < progress < 99 else 0.0)
    place = url_place(task, True)
    if place != "video_url":
        body["video_url"] = ""
    metadata: dict[str, Any] = {"channel": "sim", "backend_variant": variant % 7}
    if place == "metadata" and url:
        metadata["url"] = url
    body["metadata"] = metadata
    body["x_gateway_trace"] = f"trace-{task.id[-8:]}"
    if status == "failed":
        body["fail_reason"] = (task.error or {}).get("message", "")


def error_body(code: str, message: str, quirks: bool, param: str | None = None) -> dict[str, Any]:
    """An error body: nested ``{"error": {...}}``, or flat in quirks mode."""
    if quirks:
        return {"code": code, "message": message, "data": None}
    error: dict[str, Any] = {"message": message, "code": code}
    if param is not None:
        error["param"] = param
    return {"error": error}
