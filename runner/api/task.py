"""The task value: one normalised view of a task, whatever the provider (each profile reads
its own answers into it, ``runner.providers``) and whatever dialect the gateway's backends
speak.

Status words in any case, progress as a number or ``"50%"``, the error nested in ``error``,
the clip's URL in ``video_url`` or ``metadata.url``: docs/api.md lists the variants,
``Task.from_json`` accepts them all and ignores unknown fields.

Every field is checked before it reaches the engine, which stores it and builds URLs from it:
a task id is a string of at most ``MAX_TASK_ID`` characters without control characters, a
clip URL an absolute http(s) URL of at most ``MAX_URL`` characters, a status a word; server
text (status, error code and message) is kept shortened (``runner.text.shorten``). An answer
that fails a check raises ``UnreadableTask`` (``UnusableTaskId`` for the id), never a value
that would crash or bloat what uses it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from runner.text import shorten

TaskStatus = Literal["pending", "completed", "failed"]

_DONE = frozenset({"completed", "succeeded", "success"})
_FAILED = frozenset({"failed", "failure", "cancelled", "canceled", "expired"})
# queued, in_progress, pending, processing, submitted, not_start and anything unrecognised
# (``unknown`` is seen before a task really starts) all mean "not finished yet".

_POLICY_WORDS = ("policy", "moderation", "safety", "content_filter", "flagged", "sensitive")
_NUMBER = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?|[-+]?\.\d+)\s*%?\s*$")
# C0 and C1 controls, DEL, and the bidirectional overrides that reorder text on a screen.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_URL_SCHEMES = frozenset({"http", "https"})

#: The longest task id kept: ids go into URL paths, the state database and every status line.
MAX_TASK_ID = 256
#: The longest clip URL accepted (signed URLs run to a few kilobytes).
MAX_URL = 16 * 1024
#: The longest status word kept as the server gave it.
MAX_STATUS = 200


class UnreadableTask(ValueError):
    """An answer that is not a task this client can use: not an object, no id, or a field
    (status, clip URL, error) of a kind that cannot be kept."""


class UnusableTaskId(UnreadableTask):
    """A task object whose id cannot be kept: not a string, too long, control characters."""


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
    #: A refusal its provider marks as such (Veo's safety filter, Runway's ``SAFETY.*``).
    refused: bool = False
    #: The clip itself, when the answer carries it inline (Veo's ``encodedVideo``).
    video_bytes: bytes | None = field(default=None, repr=False)
    #: The price the provider reports for the task (Runway: credits), and its estimate.
    cost: float | None = None
    estimated_cost: float | None = None

    @classmethod
    def checked(
        cls,
        *,
        id: str,
        status: TaskStatus,
        raw_status: str,
        progress: float | None = None,
        video_url: str | None = None,
        video_bytes: bytes | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        refused: bool = False,
        cost: float | None = None,
        estimated_cost: float | None = None,
    ) -> Task:
        """A task a provider's profile read from its own answer (``runner.providers``),
        every field checked as ``from_json`` checks the gateway's."""
        return cls(
            id=check_task_id(id),
            status=status,
            raw_status=shorten(raw_status, MAX_STATUS),
            progress=parse_progress(progress),
            video_url=None if video_url is None else _checked_url(video_url),
            error_code=None if error_code is None else shorten(error_code),
            error_message=None if error_message is None else shorten(error_message),
            refused=refused,
            video_bytes=video_bytes,
            cost=cost,
            estimated_cost=estimated_cost,
        )

    @classmethod
    def from_json(cls, data: Any) -> Task:
        """Normalise a task object, every field checked (see the module's docstring).

        Raises ``UnusableTaskId`` when the id cannot be kept, ``UnreadableTask`` when there is
        no task (or no id) at all or another field is of an unusable kind.
        """
        if not isinstance(data, dict):
            raise UnreadableTask(f"task object expected, got {type(data).__name__}")
        task_id = _task_id(data)
        status = data.get("status")
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, str | int | float)
        ):
            raise UnreadableTask(f"a status that is not a word ({type(status).__name__})")
        raw_status = shorten(_text(status) or "", MAX_STATUS)
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
        if self.refused:
            return True
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


def check_task_id(value: object) -> str:
    """``value`` as a task id this client can keep; raises ``UnusableTaskId`` with a short
    reason (never the value itself, which may be megabytes or carry terminal escapes)."""
    if not isinstance(value, str):
        raise UnusableTaskId(f"a task id that is not a string ({type(value).__name__})")
    if len(value) > MAX_TASK_ID:
        raise UnusableTaskId(
            f"a task id of {len(value):,} characters (at most {MAX_TASK_ID} are kept)"
        )
    if _CONTROL.search(value):
        raise UnusableTaskId("a task id with control characters")
    task_id = value.strip()
    if not task_id:
        raise UnusableTaskId("an empty task id")
    return task_id


def _task_id(data: dict[str, Any]) -> str:
    """The task's ``id``, else its ``task_id``, checked."""
    for name in ("id", "task_id"):
        value = data.get(name)
        if value is not None and value != "":
            return check_task_id(value)
    raise UnreadableTask("task object without an id")


def _video_url(data: dict[str, Any]) -> str | None:
    url = data.get("video_url")
    if not url:
        metadata = data.get("metadata")
        url = metadata.get("url") if isinstance(metadata, dict) else None
    if url is None or url == "":
        return None
    return _checked_url(url)


def _checked_url(url: object) -> str:
    """A clip URL as the client can fetch it: an absolute http(s) URL of a sane length."""
    if not isinstance(url, str):
        raise UnreadableTask(f"a clip URL that is not a string ({type(url).__name__})")
    url = url.strip()
    if len(url) > MAX_URL:
        raise UnreadableTask(f"a clip URL of {len(url):,} characters (at most {MAX_URL:,})")
    if _CONTROL.search(url) or any(char.isspace() for char in url):
        raise UnreadableTask("a clip URL with control characters or spaces")
    try:
        parts = urlsplit(url)
        usable = parts.scheme.lower() in _URL_SCHEMES and bool(parts.hostname)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        usable = False
    if not usable:
        raise UnreadableTask("a clip URL that is not an absolute http(s) URL")
    return url


def _error_of(error: object) -> tuple[str | None, str | None]:
    if isinstance(error, dict):
        code, message = _text(error.get("code")), _text(error.get("message"))
    else:
        code, message = None, _text(error)
    # Server text is kept shortened: a 2 MB message is not stored or printed whole.
    return (
        None if code is None else shorten(code),
        None if message is None else shorten(message),
    )


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
