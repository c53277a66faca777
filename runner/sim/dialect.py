"""How the simulator speaks: the documented task object, or the gateway's odder dialect.

In quirks mode each task keeps one dialect for its life, picked by its ``variant``: status
words in other cases and spellings, progress as a float or a ``"50%"`` string, the URL in
``metadata.url`` or only behind ``/content`` (which may redirect to the file host), extra
unknown fields. Error bodies are flat
(``{"code", "message", "data"}``) instead of nested.
"""

from __future__ import annotations

from typing import Any, Literal

from runner.sim.state import Status, Task

#: Where a completed task's URL appears, in quirks mode.
UrlPlace = Literal["video_url", "metadata", "content_only"]
URL_PLACES: tuple[UrlPlace, ...] = ("video_url", "metadata", "content_only")

_STATUS_WORDS: dict[str, tuple[str, ...]] = {
    "queued": ("QUEUED", "submitted", "not_start", "Pending", "queued"),
    "in_progress": ("IN_PROGRESS", "processing", "Processing", "in_progress", "RUNNING"),
    "completed": ("SUCCESS", "succeeded", "Completed", "completed", "SUCCEEDED"),
    "failed": ("FAILURE", "failed", "Failed", "FAILED", "failure"),
}


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
