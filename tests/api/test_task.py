"""The task value: every dialect of docs/api.md normalised into one ``Task``."""

from __future__ import annotations

import dataclasses

import pytest

from runner.api.task import MAX_TASK_ID, Task, UnreadableTask, UnusableTaskId
from tests.api.conftest import task_json


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("queued", "pending"),
        ("in_progress", "pending"),
        ("pending", "pending"),
        ("processing", "pending"),
        ("submitted", "pending"),
        ("not_start", "pending"),
        ("completed", "completed"),
        ("succeeded", "completed"),
        ("success", "completed"),
        ("failed", "failed"),
        ("failure", "failed"),
        ("cancelled", "failed"),
        ("canceled", "failed"),
        ("expired", "failed"),
    ],
)
def test_status_words_map_to_three_states(raw: str, expected: str) -> None:
    """Every status word docs/api.md lists lands on pending, completed or failed."""
    assert Task.from_json(task_json(status=raw)).status == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("COMPLETED", "completed"),
        ("Succeeded", "completed"),
        ("  SUCCESS ", "completed"),
        ("FAILED", "failed"),
        ("Cancelled", "failed"),
        ("In_Progress", "pending"),
    ],
)
def test_status_is_case_insensitive(raw: str, expected: str) -> None:
    """Upper-case, mixed-case and padded statuses mean the same as lower-case ones."""
    assert Task.from_json(task_json(status=raw)).status == expected


@pytest.mark.parametrize("raw", ["unknown", "whatever", "", None, 7])
def test_unrecognised_status_is_pending(raw: object) -> None:
    """An unknown or missing status is treated as not finished yet."""
    assert Task.from_json(task_json(status=raw)).status == "pending"


def test_raw_status_is_kept() -> None:
    """The server's own word is kept for display next to the normalised one."""
    assert Task.from_json(task_json(status="SUCCEEDED")).raw_status == "SUCCEEDED"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (50, 50.0),
        (42.5, 42.5),
        ("50%", 50.0),
        ("50", 50.0),
        (" 42.5 % ", 42.5),
        (0, 0.0),
        (150, 100.0),
        (-5, 0.0),
        ("120%", 100.0),
    ],
)
def test_progress_variants(raw: object, expected: float) -> None:
    """Progress as int, float or "50%" string becomes a number clamped to 0..100."""
    assert Task.from_json(task_json(progress=raw)).progress == expected


@pytest.mark.parametrize(
    "raw", [None, "", "abc", "50%%", "%", [50], {"value": 50}, True, float("nan"), float("inf")]
)
def test_malformed_progress_is_none(raw: object) -> None:
    """A progress value that cannot be read is None, never an exception."""
    assert Task.from_json(task_json(progress=raw)).progress is None


def test_missing_progress_is_none() -> None:
    """A task without a progress field has progress None."""
    data = task_json()
    del data["progress"]
    assert Task.from_json(data).progress is None


def test_video_url_from_video_url() -> None:
    """The clip's URL is read from ``video_url``."""
    task = Task.from_json(task_json(status="completed", video_url="https://f.test/a.mp4"))
    assert task.video_url == "https://f.test/a.mp4"


def test_video_url_from_metadata_url() -> None:
    """When ``video_url`` is empty, ``metadata.url`` supplies the clip's URL."""
    data = task_json(status="completed", video_url="", metadata={"url": "https://f.test/m.mp4"})
    assert Task.from_json(data).video_url == "https://f.test/m.mp4"


def test_video_url_prefers_video_url_over_metadata() -> None:
    """``video_url`` wins when both are given."""
    data = task_json(video_url="https://f.test/v.mp4", metadata={"url": "https://f.test/m.mp4"})
    assert Task.from_json(data).video_url == "https://f.test/v.mp4"


@pytest.mark.parametrize("metadata", [None, {}, {"url": ""}, "https://f.test/x.mp4"])
def test_missing_video_url_is_none(metadata: object) -> None:
    """No URL anywhere (the clip is only behind ``/content``) gives None."""
    data = task_json(status="completed", video_url="", metadata=metadata)
    assert Task.from_json(data).video_url is None


def test_id_falls_back_to_task_id() -> None:
    """A task without ``id`` takes its id from ``task_id``."""
    data = task_json()
    del data["id"]
    assert Task.from_json(data).id == "video_abc123"


@pytest.mark.parametrize("data", [{"status": "queued"}, {"id": ""}, [], "video_1", None])
def test_no_id_is_a_value_error(data: object) -> None:
    """Something that is not a task object at all raises ValueError."""
    with pytest.raises(ValueError):
        Task.from_json(data)


def test_nested_error_is_read() -> None:
    """A failed task's ``error`` object gives the code and message."""
    data = task_json(status="failed", error={"code": "upstream_error", "message": "GPU fell over"})
    task = Task.from_json(data)
    assert (task.error_code, task.error_message) == ("upstream_error", "GPU fell over")


def test_error_as_plain_string_is_the_message() -> None:
    """An ``error`` that is just a string becomes the message, with no code."""
    task = Task.from_json(task_json(status="failed", error="it broke"))
    assert (task.error_code, task.error_message) == (None, "it broke")


def test_numeric_error_code_becomes_text() -> None:
    """A numeric error code is kept as text."""
    task = Task.from_json(task_json(status="failed", error={"code": 1301, "message": "x"}))
    assert task.error_code == "1301"


def test_unknown_fields_are_ignored() -> None:
    """Extra fields anywhere do not disturb the task."""
    data = task_json(surprise={"nested": [1, 2]}, seconds="8", size=None)
    assert Task.from_json(data) == Task.from_json(task_json())


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("content_policy_violation", None),
        (None, "Your prompt was FLAGGED by our system"),
        ("MODERATION_BLOCKED", "no"),
        ("x", "Safety system rejected the image"),
        ("content_filter", ""),
        ("sensitive_content", None),
    ],
)
def test_policy_refusals_are_recognised(code: str | None, message: str | None) -> None:
    """An error mentioning policy, moderation, safety, content_filter, flagged or sensitive is a
    refusal."""
    error = {k: v for k, v in {"code": code, "message": message}.items() if v is not None}
    assert Task.from_json(task_json(status="failed", error=error)).is_policy_refusal


def test_upstream_failure_is_not_a_policy_refusal() -> None:
    """An ordinary upstream failure may be resubmitted."""
    error = {"code": "upstream_timeout", "message": "generation timed out"}
    assert not Task.from_json(task_json(status="failed", error=error)).is_policy_refusal


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1735689600, 1735689600.0),
        (1735689600.5, 1735689600.5),
        ("1735689600", 1735689600.0),
        ("2025-01-01T00:00:00Z", 1735689600.0),
        ("yesterday", None),
        (None, None),
        ("nan", None),
    ],
)
def test_created_at_variants(raw: object, expected: float | None) -> None:
    """``created_at`` as a number, a numeric string or ISO 8601; None when unreadable."""
    assert Task.from_json(task_json(created_at=raw)).created_at == expected


def test_task_is_frozen() -> None:
    """A task value cannot be changed after it is made."""
    task = Task.from_json(task_json())
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.status = "completed"  # type: ignore[misc]


# -- every field checked --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_id", "reason"),
    [
        ("v" * 5_000_000, "5,000,000 characters"),
        ("v" * 257, "257 characters"),
        ("video_\x1b]0;owned\x07", "control characters"),
        ("video\n1", "control characters"),
        ("video\u202e1", "control characters"),
        (12345, "not a string"),
        (["video_1"], "not a string"),
        ("   ", "empty"),
    ],
    ids=["huge", "257", "osc", "newline", "bidi", "number", "list", "blank"],
)
def test_an_unkeepable_task_id_is_refused_briefly(task_id: object, reason: str) -> None:
    """A task id over 256 characters, with control characters or not a string raises
    UnusableTaskId, whose message says why in a few words and never repeats the id."""
    with pytest.raises(UnusableTaskId) as caught:
        Task.from_json(task_json(id=task_id))
    assert reason in str(caught.value)
    assert len(str(caught.value)) < 100


def test_a_task_id_of_256_characters_is_kept() -> None:
    """The longest id kept is exactly MAX_TASK_ID characters."""
    assert Task.from_json(task_json(id="v" * MAX_TASK_ID)).id == "v" * MAX_TASK_ID


@pytest.mark.parametrize(
    "fields",
    [
        {"video_url": "ftp://f.test/a.mp4"},
        {"video_url": "/relative/a.mp4"},
        {"video_url": "https://f.test/" + "a" * 20_000},
        {"video_url": "https://f.test/a\x1b[2J.mp4"},
        {"video_url": "https://f.test:port/a.mp4"},
        {"video_url": 3},
        {"video_url": "", "metadata": {"url": {"href": "https://f.test/a.mp4"}}},
        {"status": ["completed"]},
        {"status": {"state": "completed"}},
    ],
    ids=["ftp", "relative", "long", "escape", "port", "number", "object", "list", "object-status"],
)
def test_an_unusable_field_makes_the_task_unreadable(fields: dict[str, object]) -> None:
    """A clip URL the client could not fetch, or a status that is not a word, is refused
    rather than handed on to be stored or fetched."""
    with pytest.raises(UnreadableTask) as caught:
        Task.from_json({**task_json(status="completed"), **fields})
    assert not isinstance(caught.value, UnusableTaskId)


@pytest.mark.parametrize("status", ["", "   ", 3, None])
def test_a_blank_or_numeric_status_is_pending(status: object) -> None:
    """A status that is empty, blank or a number is a word not known: not finished yet."""
    assert Task.from_json(task_json(status=status)).status == "pending"


def test_server_text_is_kept_shortened() -> None:
    """A 2 MB error message, code or status word is kept cut, with a note of its length."""
    huge = "x" * 2_000_000
    error = {"code": huge, "message": huge}
    task = Task.from_json(task_json(status="failed", error=error))
    assert task.error_message is not None and task.error_code is not None
    assert len(task.error_message) < 2100 and "2,000,000 characters" in task.error_message
    assert len(task.error_code) < 2100
    assert len(Task.from_json(task_json(status=huge)).raw_status) < 300
