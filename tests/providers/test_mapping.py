"""Both directions of each profile's mapping: the generic request onto the provider's create
call, and the provider's task JSON onto the client's checked ``Task``."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from runner.api.task import Task
from runner.providers import PROFILES, Call, Unmappable
from runner.providers.runway import pixel_ratio

VEO = "veo-3.1-generate-preview"
PNG = "data:image/png;base64,iVBORw0KGgo="
JPEG = "data:image/jpeg;base64,/9j/4AAQ"
veo, runway, gateway = PROFILES["veo"], PROFILES["runway"], PROFILES["gateway"]


# ----- the create call ----------------------------------------------------------------------


def test_veo_text_shot() -> None:
    request = {
        "model": VEO,
        "prompt": "Waves",
        "seconds": "8",
        "aspect_ratio": "9:16",
        "resolution": "1080p",
        "negativePrompt": "rain",
    }
    assert veo.create_call(request) == Call(
        "POST",
        f"/v1beta/models/{VEO}:predictLongRunning",
        {
            "instances": [{"prompt": "Waves"}],
            "parameters": {
                "durationSeconds": 8,
                "aspectRatio": "9:16",
                "resolution": "1080p",
                "negativePrompt": "rain",
            },
        },
    )


def test_veo_first_and_last_frames_go_inline() -> None:
    request = {"model": VEO, "prompt": "Door", "first_image_url": PNG, "last_image_url": JPEG}
    call = veo.create_call(request)
    assert call.json == {
        "instances": [
            {
                "prompt": "Door",
                "image": {"bytesBase64Encoded": "iVBORw0KGgo=", "mimeType": "image/png"},
                "lastFrame": {"bytesBase64Encoded": "/9j/4AAQ", "mimeType": "image/jpeg"},
            }
        ]
    }


def test_veo_reference_images_are_assets() -> None:
    call = veo.create_call({"model": VEO, "prompt": "Hero", "images": [PNG, JPEG]})
    assert call.json is not None
    references = call.json["instances"][0]["referenceImages"]
    assert references == [
        {
            "image": {"bytesBase64Encoded": "iVBORw0KGgo=", "mimeType": "image/png"},
            "referenceType": "ASSET",
        },
        {
            "image": {"bytesBase64Encoded": "/9j/4AAQ", "mimeType": "image/jpeg"},
            "referenceType": "ASSET",
        },
    ]


def test_veo_cannot_send_an_image_url() -> None:
    with pytest.raises(Unmappable, match="inline"):
        veo.create_call({"model": VEO, "prompt": "p", "first_image_url": "https://e.com/a.png"})


def test_runway_first_and_last_frame_with_pixels_and_integer_seconds() -> None:
    request = {
        "model": "veo3.1",
        "prompt": "Door",
        "seconds": "6",
        "aspect_ratio": "16:9",
        "resolution": "1080p",
        "first_image_url": PNG,
        "last_image_url": "https://example.com/b.png",
        "seed": 7,
    }
    assert runway.create_call(request) == Call(
        "POST",
        "/v1/image_to_video",
        {
            "model": "veo3.1",
            "promptText": "Door",
            "promptImage": [
                {"uri": PNG, "position": "first"},
                {"uri": "https://example.com/b.png", "position": "last"},
            ],
            "ratio": "1920:1080",
            "duration": 6,
            "seed": 7,
        },
    )


def test_runway_text_shot_defaults_to_16_9_at_720p() -> None:
    call = runway.create_call({"model": "gen4.5", "prompt": "Waves", "seconds": "5"})
    assert call.path == "/v1/text_to_video"
    assert call.json == {
        "model": "gen4.5",
        "promptText": "Waves",
        "ratio": "1280:720",
        "duration": 5,
    }


@pytest.mark.parametrize(
    ("aspect", "resolution", "pixels"),
    [
        ("9:16", None, "720:1280"),
        ("4:3", "720p", "1104:832"),
        ("1:1", None, "960:960"),
        ("3:4", None, "832:1104"),
        ("21:9", None, "1584:672"),
        ("9:16", "1080p", "1080:1920"),
    ],
)
def test_runway_pixel_ratios(aspect: str, resolution: str | None, pixels: str) -> None:
    assert pixel_ratio(aspect, resolution) == pixels


def test_runway_refuses_what_it_has_no_field_for() -> None:
    with pytest.raises(Unmappable, match="reference"):
        runway.create_call({"model": "gen4.5", "prompt": "p", "images": [PNG]})
    with pytest.raises(Unmappable, match="1:1 at 4k"):
        pixel_ratio("1:1", "4k")


def test_the_gateway_sends_the_generic_request_as_it_is() -> None:
    request = {"model": "omni-fast", "prompt": "p", "seconds": "4", "images": [PNG], "x": 1}
    assert gateway.create_call(request) == Call("POST", "/videos", request)


def test_each_profile_presents_its_key_its_own_way() -> None:
    assert veo.headers("k") == {"x-goog-api-key": "k"}
    assert runway.headers("k") == {"Authorization": "Bearer k", "X-Runway-Version": "2024-11-06"}
    assert gateway.headers("k") == {"Authorization": "Bearer k"}
    assert [PROFILES[name].key_env for name in ("gateway", "veo", "runway")] == [
        "SHOTRUNNER_API_KEY",
        "GEMINI_API_KEY",
        "RUNWAYML_API_SECRET",
    ]


def test_only_veo_takes_the_key_to_its_video_and_only_on_the_api_origin() -> None:
    base = "https://generativelanguage.googleapis.com"
    video = f"{base}/v1beta/files/abc:download?alt=media"
    assert veo.download_needs_key(video, base)
    assert veo.download_needs_key("https://generativelanguage.googleapis.com:443/x", base)
    assert not veo.download_needs_key("https://storage.googleapis.com/abc", base)
    assert not veo.download_needs_key("http://generativelanguage.googleapis.com/x", base)
    assert not veo.download_needs_key("https://generativelanguage.googleapis.com:8443/x", base)
    assert not runway.download_needs_key(
        "https://api.dev.runwayml.com/x", "https://api.dev.runwayml.com"
    )


# ----- reading the task ---------------------------------------------------------------------

NAME = f"models/{VEO}/operations/abc123"


def _veo_done(response: dict[str, Any]) -> dict[str, Any]:
    return {"name": NAME, "done": True, "response": {"generateVideoResponse": response}}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"name": NAME}, Task(id=NAME, status="pending", raw_status="running")),
        (
            _veo_done(
                {"generatedSamples": [{"video": {"uri": "https://g/v1beta/files/abc:download"}}]}
            ),
            Task(
                id=NAME,
                status="completed",
                raw_status="done",
                video_url="https://g/v1beta/files/abc:download",
            ),
        ),
        (
            _veo_done({"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["blocked"]}),
            Task(
                id=NAME,
                status="failed",
                raw_status="done",
                error_code="safety_filtered",
                error_message="blocked",
                refused=True,
            ),
        ),
        (
            {"name": NAME, "done": True, "error": {"code": 13, "message": "boom"}},
            Task(
                id=NAME, status="failed", raw_status="done", error_code="13", error_message="boom"
            ),
        ),
        (
            _veo_done({}),
            Task(
                id=NAME,
                status="failed",
                raw_status="done",
                error_code="no_video",
                error_message="the operation finished without a video",
            ),
        ),
    ],
    ids=["running", "uri", "refused", "error", "no-video"],
)
def test_veo_operations(answer: dict[str, Any], expected: Task) -> None:
    assert veo.read_task(answer) == expected
    assert veo.created_id({"name": NAME}) == NAME
    assert veo.poll_path(NAME) == f"/v1beta/{NAME}"


def test_veo_inline_video_is_decoded() -> None:
    clip = b"\x00\x00\x00\x18ftypmp42"
    encoded = base64.b64encode(clip).decode()
    sample = {"video": {"encodedVideo": encoded, "encoding": "video/mp4"}}
    task = veo.read_task(_veo_done({"generatedSamples": [sample]}))
    assert task.status == "completed" and task.video_bytes == clip and task.video_url is None


@pytest.mark.parametrize(
    "answer",
    [
        [],
        {"done": True},
        {"name": ""},
        _veo_done({"generatedSamples": [{"video": {"encodedVideo": "%%%not base64"}}]}),
    ],
    ids=["a list", "no name", "empty name", "bad inline video"],
)
def test_veo_answers_that_cannot_be_read_raise_value_error(answer: Any) -> None:
    with pytest.raises(ValueError):
        veo.read_task(answer)


@pytest.mark.parametrize(
    ("reasons", "message"),
    [
        (5, "the video was filtered for safety"),
        (True, "the video was filtered for safety"),
        ({"a": 1}, "the video was filtered for safety"),
        ("blocked", "blocked"),
        (["one", 2, None, {}], "one; 2"),
    ],
)
def test_a_veo_refusal_with_reasons_of_any_shape_is_still_a_refusal(
    reasons: Any, message: str
) -> None:
    task = veo.read_task(_veo_done({"raiMediaFilteredReasons": reasons}))
    assert task.status == "failed" and task.refused and task.error_message == message


TASK_ID = "0b7f2a4e-1c2d-4e5f-8a9b-000000000001"


@pytest.mark.parametrize(
    ("answer", "status", "fields"),
    [
        (
            {"status": "PENDING", "estimatedCost": {"credits": 60}},
            "pending",
            {"estimated_cost": 60.0},
        ),
        ({"status": "THROTTLED"}, "pending", {}),
        ({"status": "RUNNING", "progress": 0.42}, "pending", {"progress": 42.0}),
        ({"status": "RUNNING", "progress": 7}, "pending", {"progress": 100.0}),
        ({"status": "RUNNING", "progress": "half"}, "pending", {"progress": None}),
        (
            {"status": "SUCCEEDED", "output": ["https://f/x.mp4"], "cost": {"credits": 60}},
            "completed",
            {"video_url": "https://f/x.mp4", "cost": 60.0, "progress": 100.0},
        ),
        (
            {"status": "FAILED", "failure": "flagged", "failureCode": "SAFETY.INPUT.TEXT"},
            "failed",
            {"error_code": "SAFETY.INPUT.TEXT", "error_message": "flagged", "refused": True},
        ),
        (
            {"status": "FAILED", "failure": "oops", "failureCode": "INTERNAL.BAD_OUTPUT.CODE01"},
            "failed",
            {"error_code": "INTERNAL.BAD_OUTPUT.CODE01", "refused": False},
        ),
        ({"status": "FAILED", "failure": "oops"}, "failed", {"error_code": "failed"}),
        (
            {"status": "CANCELLED", "cost": {"credits": 0}},
            "failed",
            {"error_code": "cancelled", "cost": 0.0},
        ),
        ({"status": "ARCHIVING"}, "pending", {"error_code": None}),
        ({"status": 7}, "pending", {}),
        (
            {"status": "SUCCEEDED", "output": [], "cost": {"credits": -5}},
            "completed",
            {"video_url": None, "cost": None},
        ),
    ],
)
def test_runway_tasks(answer: dict[str, Any], status: str, fields: dict[str, Any]) -> None:
    task = runway.read_task({"id": TASK_ID, **answer})
    assert task.id == TASK_ID and task.status == status
    assert task.raw_status == str(answer["status"])
    for name, value in fields.items():
        assert getattr(task, name) == value, name


def test_runway_answers_without_an_id_raise_value_error() -> None:
    with pytest.raises(ValueError):
        runway.read_task({"status": "PENDING"})
    assert runway.created_id({"id": TASK_ID, "estimatedCost": {"credits": 1}}) == TASK_ID
    assert runway.poll_path(TASK_ID) == f"/v1/tasks/{TASK_ID}"


def test_gateway_tasks_are_read_in_every_dialect() -> None:
    task = gateway.read_task(
        {"task_id": "v1", "status": "FAILURE", "error": {"code": "content_policy_violation"}}
    )
    assert task.status == "failed" and task.is_policy_refusal
    done = gateway.read_task({"id": "v2", "status": "SUCCESS", "metadata": {"url": "https://u"}})
    assert done.status == "completed" and done.video_url == "https://u"


@pytest.mark.parametrize(
    ("name", "planned", "interval", "delay"),
    [
        ("runway", 2.5, 15.0, 5.0),
        ("runway", 9.0, 15.0, 9.0),
        ("runway", 0.1, 0.5, 0.5),
        ("veo", 2.5, 15.0, 10.0),
        ("veo", 0.2, 1.0, 1.0),
        ("gateway", 2.5, 15.0, 2.5),
    ],
)
def test_a_task_is_polled_no_sooner_than_its_provider_changes_it(
    name: str, planned: float, interval: float, delay: float
) -> None:
    assert PROFILES[name].poll_delay(planned, interval) == delay


def test_only_veo_s_api_key_invalid_reason_is_a_refused_key() -> None:
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    refused = {"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [info]}}
    assert veo.refuses_key(400, refused)
    assert not veo.refuses_key(400, {"error": {"code": 400, "details": [{"reason": "OTHER"}]}})
    assert not veo.refuses_key(400, {"error": {"code": 400, "details": "API_KEY_INVALID"}})
    assert not veo.refuses_key(429, refused) and not veo.refuses_key(400, None)
    assert not runway.refuses_key(400, refused) and not gateway.refuses_key(400, refused)
