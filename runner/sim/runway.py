"""Runway's API (version 2024-11-06), as the ``runwayml`` SDK calls it.

- ``POST /v1/image_to_video`` and ``POST /v1/text_to_video`` take camelCase bodies
  (``model``, ``promptText``, ``promptImage``, ``ratio`` in pixels such as ``"1280:720"``,
  ``duration`` as an integer) and answer ``{"id", "estimatedCost": {"credits"}}``.
- ``GET /v1/tasks/{id}``: ``PENDING`` (or ``THROTTLED``), ``RUNNING`` with ``progress`` from
  0 to 1, then ``SUCCEEDED`` with ``output`` (signed URLs on the file host that expire;
  asking again gives fresh ones) and ``cost``, ``FAILED`` with ``failure`` and
  ``failureCode`` (``SAFETY.*`` for a safety refusal), or ``CANCELLED``, which is also what
  a deleted task says (the simulator's lost task).

Every request needs ``X-Runway-Version: 2024-11-06``; the key travels as
``Authorization: Bearer``. Errors are ``{"error": message}``, with ``issues`` for a body that
fails validation. There is no idempotency key. Credits are the simulator's own price list.
With ``quirks``, some tasks wait as ``THROTTLED`` rather than ``PENDING`` and some failures
come without a ``failureCode``.

Creates are checked per model: ``gen4.5`` (2 to 10 s, ``duration`` and ``promptText``
required, a first frame only, text-to-video at 1280:720 or 720:1280 only) and ``veo3.1``
(4, 6 or 8 s, a first frame with an optional last frame but never a last frame alone,
``promptText`` optional for image-to-video). An image is an HTTPS URL or a
``data:image/...;base64,`` URI of at most 5 MB.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from aiohttp import web

from runner.sim.dialect import Dialect, Invalid, json_response
from runner.sim.state import Status, Task

VERSION = "2024-11-06"
MAX_DATA_URI = 5 * 1024 * 1024
MAX_PROMPT = 1000
_DATA_URI = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/]+={0,2}", re.DOTALL)

Route = Literal["image_to_video", "text_to_video"]


@dataclass(frozen=True)
class Model:
    """What one Runway model takes."""

    durations: tuple[int, ...]
    duration_required: bool
    image_ratios: tuple[str, ...]
    text_ratios: tuple[str, ...]
    last_frame: bool
    prompt_required_with_image: bool
    #: The simulator's price, for ``estimatedCost`` and ``cost``.
    credits_per_second: int
    default_duration: int = 8


MODELS: dict[str, Model] = {
    "gen4.5": Model(
        durations=tuple(range(2, 11)),
        duration_required=True,
        image_ratios=("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672"),
        text_ratios=("1280:720", "720:1280"),
        last_frame=False,
        prompt_required_with_image=True,
        credits_per_second=12,
    ),
    "veo3.1": Model(
        durations=(4, 6, 8),
        duration_required=False,
        image_ratios=("1280:720", "720:1280", "1080:1920", "1920:1080"),
        text_ratios=("1280:720", "720:1280", "1080:1920", "1920:1080"),
        last_frame=True,
        prompt_required_with_image=False,
        credits_per_second=40,
    ),
}

_FAILURES = {
    "failed": ("An unexpected error occurred.", "INTERNAL.BAD_OUTPUT.CODE01"),
    "refused": ("The input text was flagged by content moderation.", "SAFETY.INPUT.TEXT"),
}


class Runway(Dialect):
    """Runway's developer API."""

    name: ClassVar[str] = "runway"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/image_to_video", self._image_to_video),
            web.post("/v1/text_to_video", self._text_to_video),
            web.get("/v1/tasks/{task_id}", self._retrieve),
        ]

    def new_task_id(self) -> str:
        return str(uuid.uuid4())

    def key_refusal(self, request: web.Request, token: str) -> web.Response | None:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return None
        return self.error(401, "unauthorized", "Invalid API key.")

    def error(self, status: int, code: str, message: str, param: str | None = None) -> web.Response:
        body: dict[str, Any] = {"error": message}
        if param is not None:
            body["issues"] = [{"path": param.split("."), "message": message, "code": code}]
        return json_response(body, status)

    def rate_limited(self) -> web.Response:
        return self.error(429, "rate_limited", "You have exceeded the rate limit.")

    def busy(self, limit: int) -> web.Response:
        message = f"You have reached the limit of {limit} concurrent tasks."
        return self.error(429, "concurrency", message)

    def not_found(self) -> web.Response:
        return self.error(404, "not_found", "Task not found.")

    # ----- handlers -----------------------------------------------------------------------

    async def _image_to_video(self, request: web.Request) -> web.StreamResponse:
        return await self._create(request, "image_to_video")

    async def _text_to_video(self, request: web.Request) -> web.StreamResponse:
        return await self._create(request, "text_to_video")

    async def _create(self, request: web.Request, route: Route) -> web.StreamResponse:
        sim = self.sim
        body = await sim.read_create(request)
        if isinstance(body, web.Response):
            return body
        refusal = self._version_refusal(request)
        if refusal is not None:
            return refusal
        problem = check_create(body, route)
        if problem is not None:
            return self.error(400, problem.code, problem.message, problem.param)
        model = MODELS[body["model"]]
        duration = body.get("duration", model.default_duration)
        task = sim.start_task(request, body["model"], str(duration))
        if isinstance(task, web.Response):
            return task
        answer = {"id": task.id, "estimatedCost": {"credits": float(_credits(task))}}
        return sim.maybe_drop(request, json_response(answer))

    async def _retrieve(self, request: web.Request) -> web.StreamResponse:
        task = self.sim.known_task(request, poll=True)
        if isinstance(task, web.Response):
            return task
        refusal = self._version_refusal(request)
        if refusal is not None:
            return refusal
        now = time.time()
        status, progress = task.phase(now)
        return json_response(self.task_body(task, status, progress, now))

    def _version_refusal(self, request: web.Request) -> web.Response | None:
        version = request.headers.get("X-Runway-Version")
        if version == VERSION:
            return None
        message = f"X-Runway-Version must be {VERSION}, not {version!r}."
        return self.error(400, "invalid_version", message)

    # ----- bodies -------------------------------------------------------------------------

    def task_body(self, task: Task, status: Status, progress: int, now: float) -> dict[str, Any]:
        """The task object for ``status`` and ``progress`` (0 to 100) at ``now``."""
        created = datetime.fromtimestamp(task.created_at, UTC).isoformat().replace("+00:00", "Z")
        body: dict[str, Any] = {"id": task.id, "createdAt": created}
        estimated = {"credits": float(_credits(task))}
        quirks = self.sim.config.quirks
        if status == "queued":
            body["status"] = "THROTTLED" if quirks and task.variant % 2 else "PENDING"
            body["estimatedCost"] = estimated
        elif status == "in_progress":
            body.update(status="RUNNING", progress=progress / 100, estimatedCost=estimated)
        elif status == "completed":
            output = [self.sim.file_url(task.id, now)]
            body.update(status="SUCCEEDED", output=output, cost={"credits": _credits(task)})
        elif status == "gone":
            body.update(status="CANCELLED", cost={"credits": 0})
        else:
            failure, code = _FAILURES.get(task.outcome, _FAILURES["failed"])
            body.update(status="FAILED", failure=failure, cost={"credits": 0})
            if not (quirks and task.outcome == "failed" and task.variant % 3 == 0):
                body["failureCode"] = code
        return body


def _credits(task: Task) -> int:
    model = MODELS.get(task.model)
    seconds = int(task.seconds) if task.seconds and task.seconds.isdigit() else 0
    return 0 if model is None else model.credits_per_second * seconds


# ----- validation -------------------------------------------------------------------------


def check_create(body: Any, route: Route) -> Invalid | None:
    """The first reason Runway would refuse this create on ``route``, or None."""
    if not isinstance(body, dict):
        return Invalid("invalid_type", "The request body must be a JSON object.")
    name = body.get("model")
    model = MODELS.get(name) if isinstance(name, str) else None
    if model is None or not isinstance(name, str):
        known = ", ".join(MODELS)
        return Invalid("invalid_enum_value", f"model must be one of {known}.", "model")
    with_image = route == "image_to_video"
    problem = _check_prompt(body, required=not with_image or model.prompt_required_with_image)
    if problem is None:
        problem = _check_duration(body, model)
    if problem is None:
        ratios = model.image_ratios if with_image else model.text_ratios
        if body.get("ratio") not in ratios:
            message = f"ratio must be one of {', '.join(ratios)} for {name}."
            problem = Invalid("invalid_enum_value", message, "ratio")
    if problem is None and with_image:
        problem = _check_prompt_image(body.get("promptImage"), model, name)
    if problem is None and not with_image and "promptImage" in body:
        message = "promptImage is not accepted by text_to_video."
        problem = Invalid("unrecognized_keys", message, "promptImage")
    return problem


def _check_prompt(body: dict[str, Any], required: bool) -> Invalid | None:
    text = body.get("promptText")
    if text is None and not required:
        return None
    if not isinstance(text, str) or not text.strip():
        return Invalid("invalid_type", "promptText must be a non-empty string.", "promptText")
    if len(text.encode("utf-16-le")) // 2 > MAX_PROMPT:
        message = f"promptText must be at most {MAX_PROMPT} characters."
        return Invalid("too_big", message, "promptText")
    return None


def _check_duration(body: dict[str, Any], model: Model) -> Invalid | None:
    if "duration" not in body:
        if model.duration_required:
            return Invalid("invalid_type", "duration is required.", "duration")
        return None
    duration = body["duration"]
    if isinstance(duration, bool) or not isinstance(duration, int):
        return Invalid("invalid_type", "duration must be an integer.", "duration")
    if duration not in model.durations:
        allowed = ", ".join(map(str, model.durations))
        return Invalid("invalid_enum_value", f"duration must be one of {allowed}.", "duration")
    return None


def _check_prompt_image(value: Any, model: Model, name: str) -> Invalid | None:
    if isinstance(value, str):
        return _check_uri(value, "promptImage")
    if not isinstance(value, list) or not value:
        message = "promptImage must be an image URI or a list of {uri, position}."
        return Invalid("invalid_type", message, "promptImage")
    positions: list[str] = []
    for index, item in enumerate(value):
        where = f"promptImage.{index}"
        if not isinstance(item, dict):
            return Invalid("invalid_type", "Each promptImage item must be an object.", where)
        position = item.get("position")
        allowed = ("first", "last") if model.last_frame else ("first",)
        if position not in allowed:
            message = f"position must be {' or '.join(allowed)} for {name}."
            return Invalid("invalid_enum_value", message, f"{where}.position")
        problem = _check_uri(item.get("uri"), f"{where}.uri")
        if problem is not None:
            return problem
        positions.append(str(position))
    if sorted(positions) not in (["first"], ["first", "last"]):
        message = "promptImage needs one first frame, and at most one last frame."
        return Invalid("custom", message, "promptImage")
    return None


def _check_uri(value: Any, where: str) -> Invalid | None:
    if not isinstance(value, str):
        return Invalid("invalid_type", f"{where} must be a string.", where)
    if value.startswith("https://"):
        return None
    if not value.startswith("data:"):
        message = f"{where} must be an HTTPS URL or a data URI."
        return Invalid("invalid_string", message, where)
    if len(value) > MAX_DATA_URI:
        message = f"{where} is a data URI of more than {MAX_DATA_URI // (1024 * 1024)} MB."
        return Invalid("too_big", message, where)
    if _DATA_URI.fullmatch(value) is None:
        message = f"{where} must be a base64 data:image/... URI."
        return Invalid("invalid_string", message, where)
    return None
