"""Create requests are checked like the real service: 400 with an error object, 401 for keys."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from runner.sim import RunningSim
from tests.plugins.sim_fixtures import StartSim
from tests.sim.conftest import BODY, Connect, create

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(40)).decode()
URL = "https://example.com/a.png"

REFUSED: dict[str, dict[str, Any]] = {
    "missing model": {"prompt": "p"},
    "missing prompt": {"model": "omni-fast"},
    "empty prompt": {"model": "omni-fast", "prompt": "  "},
    "six images": {**BODY, "images": [URL] * 6},
    "last frame without first": {**BODY, "last_image_url": URL},
    "video with omni-fast": {**BODY, "video": URL},
    "video_url with omni-fast": {**BODY, "video_url": URL},
    "input_video with omni-fast": {**BODY, "input_video": URL},
    "data URI that is not base64": {**BODY, "first_image_url": "data:image/png;base64,%%%"},
    "data URI that is not an image": {**BODY, "images": ["data:text/plain;base64,aGk="]},
    "image that is neither URL nor data URI": {**BODY, "first_image_url": "/tmp/a.png"},
    "unknown resolution": {**BODY, "resolution": "480p"},
    "seconds as a number": {**BODY, "seconds": 8},
    "seconds not digits": {**BODY, "seconds": "eight"},
    "images not a list": {**BODY, "images": URL},
}

ACCEPTED: dict[str, dict[str, Any]] = {
    "text to video": {**BODY, "seconds": "8", "aspect_ratio": "16:9", "resolution": "720p"},
    "first frame": {**BODY, "first_image_url": PNG},
    "first and last frame": {**BODY, "first_image_url": URL, "last_image_url": PNG},
    "five references": {**BODY, "images": [PNG, URL, URL, URL, URL]},
    "video fields with another model": {"model": "omni-fast-v2v", "prompt": "p", "video": URL},
    "unknown extra fields": {**BODY, "camera": "dolly"},
}


@pytest.mark.parametrize("body", REFUSED.values(), ids=REFUSED.keys())
def test_an_invalid_create_is_refused_with_400_and_an_error_object(
    sim: RunningSim, connect: Connect, body: dict[str, Any]
) -> None:
    """Each request the real service would refuse answers 400 {"error": {message, code}}."""
    response = connect(sim).post("/videos", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] and error["code"]
    assert sim.recorder.tasks_created == 0


@pytest.mark.parametrize("body", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_each_documented_use_is_accepted(
    sim: RunningSim, connect: Connect, body: dict[str, Any]
) -> None:
    """The four uses of omni-fast, and other models' fields, create a task."""
    response = connect(sim).post("/videos", json=body)
    assert response.status_code == 200, response.text
    assert sim.recorder.tasks_created == 1


def test_a_body_that_is_not_json_is_refused(sim: RunningSim, connect: Connect) -> None:
    """A create whose body does not parse answers 400."""
    response = connect(sim).post("/videos", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_a_wrong_key_answers_401_when_a_token_is_set(start_sim: StartSim, connect: Connect) -> None:
    """With a token set, a wrong Bearer key answers 401 and creates nothing."""
    sim = start_sim(token="sekrit")
    response = create(connect(sim, headers={"Authorization": "Bearer wrong"}))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert sim.recorder.tasks_created == 0


def test_a_missing_key_answers_401_on_retrieve_too(start_sim: StartSim, connect: Connect) -> None:
    """With a token set, a retrieve without Authorization answers 401."""
    sim = start_sim(token="sekrit")
    assert connect(sim).get("/videos/video_x").status_code == 401


def test_the_right_key_is_accepted(start_sim: StartSim, connect: Connect) -> None:
    """With a token set, the matching Bearer key creates a task."""
    sim = start_sim(token="sekrit")
    response = create(connect(sim, headers={"Authorization": "Bearer sekrit"}))
    assert response.status_code == 200


def test_no_key_is_needed_without_a_token(sim: RunningSim, connect: Connect) -> None:
    """Without a token the simulator accepts any or no Authorization header."""
    assert create(connect(sim)).status_code == 200


def test_a_create_with_megabytes_of_images_is_accepted(sim: RunningSim, connect: Connect) -> None:
    """Data URIs make creates large: a body of several MB is read, not refused as too big."""
    image = "data:image/png;base64," + base64.b64encode(bytes(2_000_000)).decode()
    response = create(connect(sim), images=[image, image])
    assert response.status_code == 200
