"""The Runway dialect, driven by the real ``runwayml`` SDK: image_to_video, text_to_video,
tasks.retrieve, the output fetched, and what each model refuses."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import runwayml

from runner.sim import RunningSim
from runner.sim.clip import clip_bytes_of
from tests.plugins.images import tiny_png
from tests.sim.sdk import KEY, StartDialect, until_done

PNG = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")

RunwayFor = Callable[..., runwayml.RunwayML]


@pytest.fixture
def runway_for() -> Iterator[RunwayFor]:
    """``runwayml`` clients on a Runway simulator, without retries (closed at teardown)."""
    clients: list[runwayml.RunwayML] = []

    def open_client(sim: RunningSim, key: str = KEY) -> runwayml.RunwayML:
        client = runwayml.RunwayML(api_key=key, base_url=sim.base_url, max_retries=0)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()


def _finish(client: runwayml.RunwayML, task_id: str) -> Any:
    return until_done(lambda: client.tasks.retrieve(task_id), lambda t: t.status in FINISHED)


def _first_last(client: runwayml.RunwayML, **fields: Any) -> Any:
    return client.image_to_video.create(
        model="veo3.1",
        prompt_image=[{"uri": PNG, "position": "first"}, {"uri": PNG, "position": "last"}],
        ratio="1280:720",
        duration=8,
        **fields,
    )


def test_first_and_last_frame_on_veo3_1_to_succeeded_and_fetched(
    start_runway: StartDialect, runway_for: RunwayFor
) -> None:
    """veo3.1 takes a first and a last frame; the task runs PENDING → RUNNING → SUCCEEDED
    with an output URL on the file host that serves the clip, and a cost."""
    sim = start_runway(job_seconds=2.0)
    client = runway_for(sim)
    created = _first_last(client, prompt_text="A door opens")
    assert created.estimated_cost.credits > 0
    seen = {client.tasks.retrieve(created.id).status}
    done = until_done(
        lambda: client.tasks.retrieve(created.id),
        lambda t: seen.add(t.status) or t.status in FINISHED,
    )
    assert done.status == "SUCCEEDED" and seen >= {"PENDING", "RUNNING"}
    assert done.cost.credits == created.estimated_cost.credits
    assert done.output[0].startswith(sim.file_base_url)
    assert httpx.get(done.output[0]).content == clip_bytes_of(created.id, None)
    recorded = sim.recorder.creates()[0]
    assert recorded.path == "/v1/image_to_video"
    assert recorded.headers["authorization"] == f"Bearer {KEY}"
    assert recorded.headers["x-runway-version"] == "2024-11-06"
    assert recorded.json["promptImage"][1] == {"uri": PNG, "position": "last"}
    assert recorded.json["duration"] == 8 and recorded.json["promptText"] == "A door opens"


def test_running_reports_progress_from_0_to_1(
    start_runway: StartDialect, runway_for: RunwayFor
) -> None:
    sim = start_runway(job_seconds=2.0)
    client = runway_for(sim)
    created = client.text_to_video.create(
        model="gen4.5", prompt_text="Waves", ratio="1280:720", duration=5
    )
    running = until_done(lambda: client.tasks.retrieve(created.id), lambda t: t.status == "RUNNING")
    assert 0.0 <= running.progress < 1.0


def test_text_to_video_on_gen4_5(start_runway: StartDialect, runway_for: RunwayFor) -> None:
    sim = start_runway(job_seconds=0.0)
    client = runway_for(sim)
    created = client.text_to_video.create(
        model="gen4.5", prompt_text="Waves", ratio="720:1280", duration=10
    )
    done = _finish(client, created.id)
    assert done.status == "SUCCEEDED" and done.cost.credits == 120


def test_a_failure_has_a_failure_code(start_runway: StartDialect, runway_for: RunwayFor) -> None:
    client = runway_for(start_runway(fail_rate=1.0, job_seconds=0.0))
    done = _finish(client, _first_last(client).id)
    assert done.status == "FAILED" and done.failure
    assert done.failure_code is not None and not done.failure_code.startswith("SAFETY.")


def test_a_safety_refusal_has_a_safety_failure_code(
    start_runway: StartDialect, runway_for: RunwayFor
) -> None:
    client = runway_for(start_runway(refuse_rate=1.0, job_seconds=0.0))
    done = _finish(client, _first_last(client).id)
    assert done.status == "FAILED" and done.failure_code.startswith("SAFETY.")
    assert done.cost.credits == 0


def test_a_lost_task_is_cancelled(start_runway: StartDialect, runway_for: RunwayFor) -> None:
    """Runway reports a deleted task as CANCELLED, not 404."""
    client = runway_for(start_runway(lose_rate=1.0, job_seconds=0.0))
    assert _finish(client, _first_last(client).id).status == "CANCELLED"


def test_an_expired_output_url_answers_403_and_a_fresh_one_works(
    start_runway: StartDialect, runway_for: RunwayFor
) -> None:
    """Output URLs expire: with url_ttl short the first one answers 403 once it has passed;
    retrieving the task again gives a fresh URL that serves the clip."""
    # Long enough that the fresh URL is still valid when fetched on a loaded machine.
    sim = start_runway(job_seconds=0.0, url_ttl=2.0)
    client = runway_for(sim)
    created = _first_last(client)
    old = _finish(client, created.id).output[0]
    until_done(lambda: httpx.get(old).status_code, lambda status: status == 403)
    fresh = client.tasks.retrieve(created.id).output[0]
    assert fresh != old
    assert httpx.get(fresh).content == clip_bytes_of(created.id, None)


def test_expire_first_url_refuses_the_first_download(
    start_runway: StartDialect, runway_for: RunwayFor
) -> None:
    sim = start_runway(job_seconds=0.0, expire_first_url=True)
    client = runway_for(sim)
    created = _first_last(client)
    url = _finish(client, created.id).output[0]
    assert httpx.get(url).status_code == 403
    assert httpx.get(client.tasks.retrieve(created.id).output[0]).status_code == 200


def test_quirks_show_throttled_tasks_and_failures_without_a_code(
    start_runway: StartDialect, runway_for: RunwayFor
) -> None:
    sim = start_runway(job_seconds=30, quirks=True, seed=2)
    client = runway_for(sim)
    statuses = {client.tasks.retrieve(_first_last(client).id).status for _ in range(10)}
    assert statuses == {"PENDING", "THROTTLED"}
    failing = runway_for(start_runway(job_seconds=0.0, quirks=True, seed=2, fail_rate=1.0))
    codes = {_finish(failing, _first_last(failing).id).failure_code for _ in range(10)}
    assert None in codes and len(codes) == 2


# ----- keys and faults ----------------------------------------------------------------------


def test_a_wrong_key_answers_401(start_runway: StartDialect, runway_for: RunwayFor) -> None:
    sim = start_runway()
    with pytest.raises(runwayml.AuthenticationError):
        _first_last(runway_for(sim, key="wrong"))
    assert sim.recorder.tasks_created == 0


def test_the_version_header_is_required(start_runway: StartDialect) -> None:
    sim = start_runway()
    answer = httpx.post(
        f"{sim.base_url}/v1/text_to_video",
        json={"model": "gen4.5", "promptText": "W", "ratio": "1280:720", "duration": 5},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert answer.status_code == 400 and "X-Runway-Version" in answer.json()["error"]
    assert sim.recorder.tasks_created == 0


@pytest.mark.parametrize(
    "knobs", [{"rate_limit_rate": 1.0}, {"max_active": 1, "job_seconds": 30}], ids=["rate", "max"]
)
def test_429s(start_runway: StartDialect, runway_for: RunwayFor, knobs: dict[str, Any]) -> None:
    client = runway_for(start_runway(**knobs))
    with pytest.raises(runwayml.RateLimitError) as refused:
        for _ in range(2):
            _first_last(client)
    assert isinstance(refused.value.body, dict) and refused.value.body["error"]


def test_error_rate_answers_5xx(start_runway: StartDialect, runway_for: RunwayFor) -> None:
    sim = start_runway(error_rate=1.0, seed=1)
    with pytest.raises(runwayml.InternalServerError):
        _first_last(runway_for(sim))
    assert sim.recorder.tasks_created == 0


def test_a_dropped_create_made_its_task(start_runway: StartDialect, runway_for: RunwayFor) -> None:
    sim = start_runway(drop_rate=1.0)
    with pytest.raises(runwayml.APIConnectionError):
        _first_last(runway_for(sim))
    assert sim.recorder.tasks_created == 1


def test_deny_polls_refuses_retrieve(start_runway: StartDialect, runway_for: RunwayFor) -> None:
    client = runway_for(start_runway(deny_polls=401))
    created = _first_last(client)
    with pytest.raises(runwayml.AuthenticationError):
        client.tasks.retrieve(created.id)


def test_an_unknown_task_answers_404(start_runway: StartDialect, runway_for: RunwayFor) -> None:
    with pytest.raises(runwayml.NotFoundError):
        runway_for(start_runway()).tasks.retrieve("0b7f2a4e-0000-4000-8000-000000000000")


def test_idempotency_keys_are_not_honoured(start_runway: StartDialect) -> None:
    sim = start_runway()
    headers = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": "2024-11-06"}
    body = {"model": "gen4.5", "promptText": "W", "ratio": "1280:720", "duration": 5}
    ids = {
        httpx.post(
            f"{sim.base_url}/v1/text_to_video",
            json=body,
            headers={**headers, "Idempotency-Key": "same"},
        ).json()["id"]
        for _ in range(2)
    }
    assert len(ids) == 2


# ----- what each model refuses --------------------------------------------------------------

GEN45_IMAGE = {"model": "gen4.5", "promptImage": PNG, "promptText": "W", "ratio": "1280:720"}

REFUSED: dict[str, tuple[str, dict[str, Any], str]] = {
    "gen4.5 without duration": ("image_to_video", GEN45_IMAGE, "duration"),
    "gen4.5 at 11 s": ("image_to_video", {**GEN45_IMAGE, "duration": 11}, "duration"),
    "gen4.5 with a last frame": (
        "image_to_video",
        {
            **GEN45_IMAGE,
            "duration": 5,
            "promptImage": [{"uri": PNG, "position": "first"}, {"uri": PNG, "position": "last"}],
        },
        "promptImage.1.position",
    ),
    "gen4.5 image without promptText": (
        "image_to_video",
        {"model": "gen4.5", "promptImage": PNG, "ratio": "1280:720", "duration": 5},
        "promptText",
    ),
    "gen4.5 text at 960:960": (
        "text_to_video",
        {"model": "gen4.5", "promptText": "W", "ratio": "960:960", "duration": 5},
        "ratio",
    ),
    "veo3.1 at 5 s": (
        "image_to_video",
        {"model": "veo3.1", "promptImage": PNG, "ratio": "1280:720", "duration": 5},
        "duration",
    ),
    "veo3.1 duration as a string": (
        "image_to_video",
        {"model": "veo3.1", "promptImage": PNG, "ratio": "1280:720", "duration": "8"},
        "duration",
    ),
    "veo3.1 last frame alone": (
        "image_to_video",
        {"model": "veo3.1", "promptImage": [{"uri": PNG, "position": "last"}], "ratio": "1280:720"},
        "promptImage",
    ),
    "veo3.1 at 1104:832": (
        "image_to_video",
        {"model": "veo3.1", "promptImage": PNG, "ratio": "1104:832"},
        "ratio",
    ),
    "an http image": (
        "image_to_video",
        {"model": "veo3.1", "promptImage": "http://example.com/a.png", "ratio": "1280:720"},
        "promptImage",
    ),
    "a data URI over 5 MB": (
        "image_to_video",
        {
            "model": "veo3.1",
            "promptImage": "data:image/png;base64," + "A" * (5 * 1024 * 1024),
            "ratio": "1280:720",
        },
        "promptImage",
    ),
    "an unknown model": ("text_to_video", {"model": "gen9", "promptText": "W"}, "model"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_what_a_model_cannot_do_is_refused_with_400(
    start_runway: StartDialect, runway_for: RunwayFor, case: str
) -> None:
    route, body, path = REFUSED[case]
    sim = start_runway()
    client = runway_for(sim)
    with pytest.raises(runwayml.BadRequestError) as refused:
        client.post(f"/v1/{route}", body=body, cast_to=object)
    answer = refused.value.body
    assert isinstance(answer, dict) and answer["error"]
    assert answer["issues"][0]["path"] == path.split(".")
    assert sim.recorder.tasks_created == 0


def test_veo3_1_image_to_video_needs_no_prompt(
    start_runway: StartDialect, runway_for: RunwayFor
) -> None:
    client = runway_for(start_runway(job_seconds=0.0))
    created = client.image_to_video.create(model="veo3.1", prompt_image=PNG, ratio="720:1280")
    assert _finish(client, created.id).status == "SUCCEEDED"
