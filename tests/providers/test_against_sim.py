"""The profiles against the simulator's dialects over loopback: the bodies they build are
accepted exactly when the offline check passes, and a whole render (create, poll, download)
goes through with the key kept on the API's origin."""

from __future__ import annotations

import base64
import itertools
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runner.api.task import Task
from runner.providers import PROFILES, Needs, Profile, Unmappable
from runner.sim import RunningSim
from runner.sim.clip import clip_bytes_of
from tests.plugins.images import tiny_png
from tests.plugins.waiting import wait_until
from tests.sim.sdk import KEY, StartDialect, until_done

PNG = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
_IMAGE_FIELDS = ("first_image_url", "last_image_url", "images")
VEO_MODELS = ("veo-3.1-generate-preview", "veo-3.1-fast-generate-preview")


def _request(model: str, mode: str, images: int = 1, **fields: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"model": model}
    if fields.pop("prompt", True):
        request["prompt"] = "A lighthouse at dusk"
    for name, value in fields.items():
        if value is not None:
            request[name] = str(value) if name == "seconds" else value
    if mode in ("first_frame", "first_last"):
        request["first_image_url"] = PNG
    if mode == "first_last":
        request["last_image_url"] = PNG
    if mode == "reference":
        request["images"] = [PNG] * images
    return request


def _veo_grid() -> Iterator[dict[str, Any]]:
    modes = [("text", 0), ("first_frame", 1), ("first_last", 2), ("reference", 3), ("reference", 4)]
    for model, (mode, images), prompt, seconds, aspect, resolution in itertools.product(
        VEO_MODELS,
        modes,
        (True, False),
        (None, 4, 5, 6, 8),
        (None, "16:9", "9:16", "1:1"),
        (None, "720p", "1080p", "4k", "2k"),
    ):
        fields = {"seconds": seconds, "aspect_ratio": aspect, "resolution": resolution}
        yield _request(model, mode, images, prompt=prompt, **fields)


def _runway_grid() -> Iterator[dict[str, Any]]:
    for model, mode, prompt, seconds, aspect, resolution in itertools.product(
        ("gen4.5", "veo3.1"),
        ("text", "first_frame", "first_last"),
        (True, False),
        (None, 2, 4, 5, 8, 10, 11),
        (None, "16:9", "9:16", "4:3", "1:1", "21:9"),
        (None, "720p", "1080p"),
    ):
        yield _request(
            model, mode, prompt=prompt, seconds=seconds, aspect_ratio=aspect, resolution=resolution
        )


def _send(
    profile: Profile, sim: RunningSim, request: dict[str, Any], verify: Any = True
) -> httpx.Response | None:
    """POST the profile's create for ``request``; None when the profile cannot map it."""
    try:
        call = profile.create_call(request)
    except Unmappable:
        return None
    with httpx.Client(base_url=sim.base_url, verify=verify, timeout=10) as client:
        return client.request(call.method, call.path, json=call.json, headers=profile.headers(KEY))


def _disagreements(
    profile: Profile, sim: RunningSim, grid: Iterator[dict[str, Any]], verify: Any = True
) -> tuple[int, list[str]]:
    cases = 0
    wrong: list[str] = []
    with httpx.Client(base_url=sim.base_url, verify=verify, timeout=10) as client:
        for request in grid:
            cases += 1
            problems = profile.check(Needs.from_request(request))
            try:
                call = profile.create_call(request)
            except Unmappable:
                accepted = False
            else:
                headers = profile.headers(KEY)
                answer = client.request(call.method, call.path, json=call.json, headers=headers)
                assert answer.status_code in (200, 400), answer.text
                accepted = answer.status_code == 200
            if accepted == bool(problems):
                shown = {k: v for k, v in request.items() if k not in _IMAGE_FIELDS}
                wrong.append(f"{shown}: check says {problems}, the service accepted={accepted}")
    return cases, wrong


def test_veo_check_and_the_veo_service_agree(
    start_veo: StartDialect, client_tls: ssl.SSLContext
) -> None:
    """Over every combination of model, mode, seconds, ratio and resolution, the Veo
    simulator accepts the profile's body exactly when the offline check finds nothing."""
    sim = start_veo(job_seconds=3600)
    cases, wrong = _disagreements(PROFILES["veo"], sim, _veo_grid(), client_tls)
    assert cases == 2000 and sim.recorder.tasks_created > 100
    assert wrong == []


def test_runway_check_and_the_runway_service_agree(start_runway: StartDialect) -> None:
    sim = start_runway(job_seconds=3600)
    cases, wrong = _disagreements(PROFILES["runway"], sim, _runway_grid())
    assert cases == 1512 and sim.recorder.tasks_created > 50
    assert wrong == []


# ----- a whole render through a profile -----------------------------------------------------


def _render(
    profile: Profile, sim: RunningSim, request: dict[str, Any], verify: Any = True
) -> tuple[Task, bytes | None]:
    """Create, poll until finished and download as a client built on the profile would:
    the key goes to the API's origin only; redirects are followed without it."""
    answer = _send(profile, sim, request, verify)
    assert answer is not None and answer.status_code == 200, answer
    task_id = profile.created_id(answer.json())
    with httpx.Client(base_url=sim.base_url, verify=verify, timeout=10) as client:
        task = until_done(
            lambda: profile.read_task(
                client.get(profile.poll_path(task_id), headers=profile.headers(KEY)).json()
            ),
            lambda task: task.status != "pending",
        )
        if task.status != "completed" or task.video_url is None:
            return task, task.video_bytes
        url = task.video_url
        headers = profile.headers(KEY) if profile.download_needs_key(url, sim.base_url) else {}
        fetched = client.get(url, headers=headers)
        if fetched.is_redirect:
            fetched = client.get(fetched.headers["location"])
        assert fetched.status_code == 200
        return task, fetched.content


def _key_stayed_home(sim: RunningSim) -> None:
    # The recorder logs a request once its answer is sent: wait for the server's thread.
    files = wait_until(lambda: sim.recorder.on("files"), what="a fetch from the file host")
    for request in files:
        assert KEY not in " ".join(request.headers.values())


@pytest.mark.parametrize(
    "request_fields",
    [
        {"mode": "text", "seconds": 4},
        {"mode": "first_frame", "seconds": 8, "resolution": "1080p", "aspect_ratio": "9:16"},
        {"mode": "first_last", "seconds": 6},
        {"mode": "reference", "images": 3, "seconds": 8},
    ],
    ids=["text", "first-frame", "first-last", "reference"],
)
def test_a_veo_render_through_the_profile(
    start_veo: StartDialect, client_tls: ssl.SSLContext, request_fields: dict[str, Any]
) -> None:
    sim = start_veo(job_seconds=0.2)
    request = _request(VEO_MODELS[0], **request_fields)
    task, clip = _render(PROFILES["veo"], sim, request, client_tls)
    assert task.status == "completed" and clip == clip_bytes_of(task.id.rsplit("/", 1)[1], None)
    _key_stayed_home(sim)


def test_a_veo_inline_video_through_the_profile(
    start_veo: StartDialect, client_tls: ssl.SSLContext
) -> None:
    sim = start_veo(job_seconds=0.0, quirks=True, seed=1)
    inline = []
    for _ in range(6):
        task, clip = _render(PROFILES["veo"], sim, _request(VEO_MODELS[0], "text"), client_tls)
        assert clip == clip_bytes_of(task.id.rsplit("/", 1)[1], None)
        inline.append(task.video_bytes is not None)
    assert any(inline) and not all(inline)


@pytest.mark.parametrize(
    ("model", "mode", "seconds"),
    [("veo3.1", "first_last", 8), ("gen4.5", "first_frame", 5), ("gen4.5", "text", 10)],
)
def test_a_runway_render_through_the_profile(
    start_runway: StartDialect, model: str, mode: str, seconds: int
) -> None:
    sim = start_runway(job_seconds=0.2)
    task, clip = _render(PROFILES["runway"], sim, _request(model, mode, seconds=seconds))
    assert task.status == "completed" and clip == clip_bytes_of(task.id, None)
    assert task.cost is not None and task.cost > 0
    _key_stayed_home(sim)


@pytest.mark.parametrize("provider", ["veo", "runway"])
@pytest.mark.parametrize(
    ("knob", "code", "refused"),
    [("fail_rate", None, False), ("refuse_rate", None, True)],
    ids=["failure", "refusal"],
)
def test_failures_and_refusals_read_through_the_profile(
    start_veo: StartDialect,
    start_runway: StartDialect,
    client_tls: ssl.SSLContext,
    provider: str,
    knob: str,
    code: str | None,
    refused: bool,
) -> None:
    """A failure is failed and may be retried; a safety refusal is marked ``refused``."""
    start = start_veo if provider == "veo" else start_runway
    sim = start(job_seconds=0.0, **{knob: 1.0})
    model = VEO_MODELS[0] if provider == "veo" else "veo3.1"
    request = _request(model, "first_frame", seconds=8)
    task, _ = _render(PROFILES[provider], sim, request, client_tls)
    assert task.status == "failed" and task.refused is refused and task.error_code


def test_a_lost_runway_task_reads_as_cancelled(start_runway: StartDialect) -> None:
    sim = start_runway(job_seconds=0.0, lose_rate=1.0)
    task, _ = _render(PROFILES["runway"], sim, _request("veo3.1", "first_frame"))
    assert task.status == "failed" and task.error_code == "cancelled" and not task.refused


@pytest.mark.parametrize("provider", ["veo", "runway"])
def test_a_hung_task_stays_pending(
    start_veo: StartDialect, start_runway: StartDialect, client_tls: ssl.SSLContext, provider: str
) -> None:
    """With hang_rate 1, a task still reads as pending well after its job should have ended,
    and counts against max_active."""
    start = start_veo if provider == "veo" else start_runway
    sim = start(job_seconds=0.0, hang_rate=1.0, max_active=1)
    profile = PROFILES[provider]
    model = VEO_MODELS[0] if provider == "veo" else "veo3.1"
    request = _request(model, "first_frame", seconds=8)
    answer = _send(profile, sim, request, client_tls)
    assert answer is not None and answer.status_code == 200
    task_id = profile.created_id(answer.json())
    with httpx.Client(base_url=sim.base_url, verify=client_tls, timeout=10) as client:
        for _ in range(5):
            polled = client.get(profile.poll_path(task_id), headers=profile.headers(KEY))
            assert profile.read_task(polled.json()).status == "pending"
    second = _send(profile, sim, request, client_tls)
    assert second is not None and second.status_code == 429
