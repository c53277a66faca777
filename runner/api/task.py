"""The task value: one normalised view of every task dialect the gateway's backends speak.

Status words in any case, progress as a number or ``"50%"``, the error nested in ``error``,
the clip's URL in ``video_url`` or ``metadata.url``: API.md lists the variants, ``Task.from_json``
accepts them all and ignores unknown fields.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

TaskStatus = Literal["pending", "completed", "failed"]

_DONE = frozenset({"completed", "succeeded", "success"})
_FAILED = frozenset({"failed", "failure", "cancelled", "canceled", "expired"})
# queued, in_progress, pending, processing, submitted, not_start and anything unrecognised
# (``unknown`` is seen before a task really starts) all mean "not finished yet".

_POLICY_WORDS = ("policy", "moderation", "safety", "content_filter", "flagged", "sensitive")
_NUMBER = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?|[-+]?\.\d+)\s*%?\s*$")


@dataclass(frozen=True, slots=True)
class Task:
    """A task as the client understands it, whatever dialect the server answered in."""

    id: str
    status: TaskStatus
    raw_status: str
    progress: float | None = None
    video_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: float | None = None

    @classmethod
    def from_json(cls, data: Any) -> Task:
        """Normalise a task object; raises ValueError only when there is no task id at all."""
        if not isinstance(data, dict):
            raise ValueError(f"task object expected, got {type(data).__name__}")
        task_id = _text(data.get("id")) or _text(data.get("task_id"))
        if task_id is None:
            raise ValueError("task object without an id")
        raw_status = _text(data.get("status")) or ""
        error_code, error_message = _error_of(data.get("error"))
        return cls(
            id=task_id,
            status=normalise_status(raw_status),
            raw_status=raw_status,
            progress=parse_progress(data.get("progress")),
            video_url=_video_url(data),
            error_code=error_code,
            error_message=error_message,
            created_at=_timestamp(data.get("created_at")),
        )

    @property
    def is_policy_refusal(self) -> bool:
        """A moderation or policy refusal: it fails the same way on every retry."""
        text = f"{self.error_code or ''} {self.error_message or ''}".lower()
        return any(word in text for word in _POLICY_WORDS)


def normalise_status(raw: str) -> TaskStatus:
    """Map any status word of any backend onto pending, completed or failed."""
    word = raw.strip().lower()
    if word in _DONE:
        return "completed"
    if word in _FAILED:
        return "failed"
    return "pending"


def parse_progress(value: object) -> float | None:
    """Progress as 0..100 from an int, a float or a string like ``"50%"``; None when unreadable."""
    number: float | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        match = _NUMBER.match(value)
        if match:
            number = float(match.group(1))
    if number is None or not math.isfinite(number):
        return None
    return min(100.0, max(0.0, number))


def _video_url(data: dict[str, Any]) -> str | None:
    url = _text(data.get("video_url"))
    if url:
        return url
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        return _text(metadata.get("url"))
    return None


def _error_of(error: object) -> tuple[str | None, str | None]:
    if isinstance(error, dict):
        return _text(error.get("code")), _text(error.get("message"))
    return None, _text(error)


def _text(value: object) -> str | None:
    """A non-empty string from a string or a number (codes are sometimes numeric)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).strip()
        return text or None
    return None


def _timestamp(value: object) -> float | None:
    """Seconds since the epoch from a number, a numeric string or an ISO 8601 string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and value.strip():
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            return number if math.isfinite(number) else None
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
