"""Runway's developer API (version 2024-11-06): the profile.

Create ``POST /v1/image_to_video`` (any image) or ``/v1/text_to_video`` with
``Authorization: Bearer`` and ``X-Runway-Version``; the body is camelCase: ``model``,
``promptText``, ``promptImage`` as ``[{uri, position: first|last}]`` with data URIs (or HTTPS
URLs), ``ratio`` in pixels from the aspect ratio and resolution, ``duration`` an integer.
The answer is ``{id, estimatedCost}``, polled at ``/v1/tasks/{id}``: ``PENDING``,
``THROTTLED``, ``RUNNING`` (progress 0 to 1), then ``SUCCEEDED`` (``output`` URLs that
expire, and ``cost``), ``FAILED`` (``failure``, ``failureCode``; ``SAFETY.*`` is a refusal)
or ``CANCELLED`` (deleted, too). Output URLs take no key; a fresh poll gives fresh ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from runner.api.task import Task
from runner.model import REQUEST_FIELDS
from runner.providers.base import (
    Call,
    Capabilities,
    Profile,
    Unmappable,
    request_images,
    request_mode,
    text_of,
)

VERSION = "2024-11-06"
DEFAULT_ASPECT_RATIO = "16:9"
DEFAULT_RESOLUTION = "720p"

#: Runway's pixel ``ratio`` for an aspect ratio at a resolution.
PIXEL_RATIOS: dict[tuple[str, str], str] = {
    ("16:9", "720p"): "1280:720",
    ("9:16", "720p"): "720:1280",
    ("4:3", "720p"): "1104:832",
    ("1:1", "720p"): "960:960",
    ("3:4", "720p"): "832:1104",
    ("21:9", "720p"): "1584:672",
    ("16:9", "1080p"): "1920:1080",
    ("9:16", "1080p"): "1080:1920",
}

MODELS: dict[str, Capabilities] = {
    "gen4.5": Capabilities(
        provider="runway",
        model="gen4.5",
        durations=tuple(range(2, 11)),
        aspect_ratios=("16:9", "9:16", "4:3", "1:1", "3:4", "21:9"),
        text_aspect_ratios=("16:9", "9:16"),
        resolutions=("720p",),
        first_frame=True,
        last_frame=False,
        seconds_required=True,
        prompt_required_with_frames=True,
        image_kinds=("file", "data", "url"),
        https_only=True,
        max_data_uri_bytes=5 * 1024 * 1024,
        extra_fields=frozenset({"seed", "contentModeration", "outputFormat", "proresProfile"}),
    ),
    "veo3.1": Capabilities(
        provider="runway",
        model="veo3.1",
        durations=(4, 6, 8),
        aspect_ratios=("16:9", "9:16"),
        resolutions=("720p", "1080p"),
        first_frame=True,
        last_frame=True,
        prompt_required_with_frames=False,
        image_kinds=("file", "data", "url"),
        https_only=True,
        max_data_uri_bytes=5 * 1024 * 1024,
        extra_fields=frozenset({"seed", "audio", "negativePrompt"}),
    ),
}

_PENDING = {"PENDING", "THROTTLED", "RUNNING"}
_ENDED = {"SUCCEEDED", "FAILED", "CANCELLED"}


class Runway(Profile):
    """Runway's API."""

    name: ClassVar[str] = "runway"
    key_env: ClassVar[str] = "RUNWAYML_API_SECRET"
    default_base: ClassVar[str | None] = "https://api.dev.runwayml.com"
    #: Tasks change no more often than every 5 s.
    poll_seconds: ClassVar[float | None] = 5.0
    cost_unit: ClassVar[str | None] = "credits"
    models: ClassVar[Mapping[str, Capabilities]] = MODELS

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", "X-Runway-Version": VERSION}

    def create_call(self, request: Mapping[str, Any]) -> Call:
        body: dict[str, Any] = {"model": request.get("model")}
        if request.get("prompt"):
            body["promptText"] = request["prompt"]
        mode = request_mode(request)
        if mode == "reference":
            raise Unmappable("Runway's video models take no reference images")
        images = request_images(request)
        if images:
            positions = ("first", "last")
            body["promptImage"] = [
                {"uri": image, "position": position}
                for image, position in zip(images, positions, strict=False)
            ]
        body["ratio"] = pixel_ratio(request.get("aspect_ratio"), request.get("resolution"))
        seconds = request.get("seconds")
        if seconds is not None:
            text = str(seconds)
            if not text.isdigit():
                raise Unmappable(f"seconds must be a whole number, not {seconds!r}")
            body["duration"] = int(text)
        # Extra fields are Runway's own (seed, contentModeration, audio...): passed as named.
        body.update((name, value) for name, value in request.items() if name not in REQUEST_FIELDS)
        path = "/v1/image_to_video" if images else "/v1/text_to_video"
        return Call("POST", path, body)

    def created_id(self, answer: Any) -> str:
        task_id = text_of(answer.get("id")) if isinstance(answer, dict) else None
        if task_id is None:
            raise ValueError("the task has no id")
        return task_id

    def poll_path(self, task_id: str) -> str:
        return f"/v1/tasks/{task_id}"

    def read_task(self, answer: Any) -> Task:
        task_id = self.created_id(answer)
        raw = text_of(answer.get("status")) or ""
        word = raw.upper()
        estimated = _credits(answer.get("estimatedCost"))
        cost = _credits(answer.get("cost"))
        # A status word Runway does not document is taken as still running, as the gateway's
        # are: read as a failure, it would be paid for again (the task timeout bounds it).
        if word in _PENDING or word not in _ENDED:
            return Task.checked(
                id=task_id,
                status="pending",
                raw_status=raw,
                progress=_progress(answer.get("progress")) if word == "RUNNING" else None,
                estimated_cost=estimated,
            )
        if word == "SUCCEEDED":
            output = answer.get("output")
            url = text_of(output[0]) if isinstance(output, list) and output else None
            return Task.checked(
                id=task_id,
                status="completed",
                raw_status=raw,
                progress=100.0,
                video_url=url,
                cost=cost,
            )
        if word == "CANCELLED":
            return Task.checked(
                id=task_id,
                status="failed",
                raw_status=raw,
                error_code="cancelled",
                error_message="the task was cancelled or deleted",
                cost=cost,
            )
        code = text_of(answer.get("failureCode"))
        return Task.checked(
            id=task_id,
            status="failed",
            raw_status=raw,
            error_code=code or "failed",
            error_message=text_of(answer.get("failure")),
            refused=bool(code and code.upper().startswith("SAFETY.")),
            cost=cost,
        )


def pixel_ratio(aspect_ratio: str | None, resolution: str | None) -> str:
    """Runway's pixel ``ratio`` for a generic aspect ratio and resolution (16:9, 720p when
    unset); ``Unmappable`` for a pair it has no size for."""
    aspect = aspect_ratio or DEFAULT_ASPECT_RATIO
    size = resolution or DEFAULT_RESOLUTION
    ratio = PIXEL_RATIOS.get((aspect, size))
    if ratio is None:
        raise Unmappable(f"Runway has no pixel size for {aspect} at {size}")
    return ratio


def _credits(value: Any) -> float | None:
    credits = value.get("credits") if isinstance(value, dict) else None
    if isinstance(credits, bool) or not isinstance(credits, int | float):
        return None
    return float(credits) if math.isfinite(credits) and credits >= 0 else None


def _progress(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return min(100.0, max(0.0, float(value) * 100.0))
