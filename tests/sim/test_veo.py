"""The Veo dialect, driven by the real ``google-genai`` SDK: generate_videos, operations.get,
files.download, and what the Gemini API refuses."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest
from google.genai import errors, types

from runner.sim import RunningSim
from runner.sim.clip import clip_bytes_of
from tests.plugins.images import tiny_png
from tests.plugins.waiting import wait_until
from tests.sim.sdk import KEY, GenaiFor, StartDialect, until_done

MODEL = "veo-3.1-generate-preview"
PNG = types.Image(image_bytes=tiny_png(), mime_type="image/png")


def _source(prompt: str | None = "Waves", image: types.Image | None = None) -> Any:
    return types.GenerateVideosSource(prompt=prompt, image=image)


def _render(
    client: Any, prompt: str = "Waves", image: types.Image | None = None, **kwargs: Any
) -> types.GenerateVideosOperation:
    operation = client.models.generate_videos(model=MODEL, source=_source(prompt, image), **kwargs)
    return until_done(lambda: client.operations.get(operation), lambda op: op.done)


def _task_id(operation: types.GenerateVideosOperation) -> str:
    assert operation.name is not None
    return operation.name.rsplit("/", 1)[1]


def test_a_text_shot_goes_through_create_poll_and_download(
    start_veo: StartDialect, genai_for: GenaiFor
) -> None:
    """A text shot: the operation runs without ``done``, ends with a video URI on the API's
    origin, and files.download fetches the task's clip."""
    sim = start_veo(job_seconds=2.0)
    client = genai_for(sim)
    config = types.GenerateVideosConfig(duration_seconds=8, aspect_ratio="16:9", resolution="720p")
    operation = client.models.generate_videos(model=MODEL, source=_source(), config=config)
    assert operation.done is None
    running = client.operations.get(operation)
    assert running.done is None and running.response is None
    done = until_done(lambda: client.operations.get(operation), lambda op: op.done)
    assert done.response is not None and done.response.generated_videos
    video = done.response.generated_videos[0]
    assert video.video is not None and video.video.uri is not None
    assert video.video.uri.startswith(f"{sim.base_url}/v1beta/files/")
    data = client.files.download(file=video)
    assert data == clip_bytes_of(_task_id(done), None)
    created = sim.recorder.creates()[0]
    assert created.path == f"/v1beta/models/{MODEL}:predictLongRunning"
    assert created.headers["x-goog-api-key"] == KEY
    assert created.json == {
        "instances": [{"prompt": "Waves"}],
        "parameters": {"durationSeconds": 8, "aspectRatio": "16:9", "resolution": "720p"},
    }


def test_first_and_last_frames_travel_inline(start_veo: StartDialect, genai_for: GenaiFor) -> None:
    """A first frame (and a last one) go as ``bytesBase64Encoded`` + ``mimeType``."""
    sim = start_veo(job_seconds=0.0)
    client = genai_for(sim)
    config = types.GenerateVideosConfig(last_frame=PNG, duration_seconds=6)
    done = _render(client, prompt="Pan left", image=PNG, config=config)
    assert done.response is not None and done.response.generated_videos
    instance = sim.recorder.creates()[0].json["instances"][0]
    assert instance["image"]["mimeType"] == "image/png"
    assert instance["lastFrame"]["bytesBase64Encoded"] == instance["image"]["bytesBase64Encoded"]
    data = client.files.download(file=done.response.generated_videos[0])
    assert data == clip_bytes_of(_task_id(done), None)


def test_reference_images_render_at_8_seconds(start_veo: StartDialect, genai_for: GenaiFor) -> None:
    """Three ASSET reference images at 8 s are accepted and render."""
    sim = start_veo(job_seconds=0.0)
    client = genai_for(sim)
    references = [
        types.VideoGenerationReferenceImage(image=PNG, reference_type="ASSET") for _ in range(3)
    ]
    config = types.GenerateVideosConfig(reference_images=references, duration_seconds=8)
    done = _render(client, prompt="The same character", config=config)
    assert done.response is not None and done.response.generated_videos
    sent = sim.recorder.creates()[0].json["instances"][0]["referenceImages"]
    assert [item["referenceType"] for item in sent] == ["ASSET"] * 3
    assert client.files.download(file=done.response.generated_videos[0])


def test_the_download_redirects_to_another_origin_where_the_sdk_leaks_its_key(
    start_veo: StartDialect, genai_for: GenaiFor
) -> None:
    """``:download`` answers a 302 to the file host; the SDK follows it with
    ``x-goog-api-key`` (which a careful client must not do), and the recorder shows it."""
    sim = start_veo(job_seconds=0.0)
    client = genai_for(sim)
    done = _render(client, prompt="Waves")
    assert done.response is not None and done.response.generated_videos
    client.files.download(file=done.response.generated_videos[0])
    # The recorder logs a request once its answer is sent: wait for the server's thread.
    downloads = wait_until(
        lambda: [r for r in sim.recorder.on("api") if r.path.endswith(":download")]
    )
    assert downloads[0].status == 302 and downloads[0].query == {"alt": "media"}
    fetched = wait_until(lambda: sim.recorder.on("files"))[0]
    assert fetched.status == 200
    assert fetched.headers.get("x-goog-api-key") == KEY
    assert not sim.file_base_url.startswith(sim.base_url)


def test_the_key_is_not_needed_on_the_file_host(
    start_veo: StartDialect, genai_for: GenaiFor, client_tls: ssl.SSLContext
) -> None:
    """The redirect's target serves the clip with no key at all."""
    sim = start_veo(job_seconds=0.0)
    done = _render(genai_for(sim), prompt="Waves")
    assert done.response is not None and done.response.generated_videos
    video = done.response.generated_videos[0].video
    assert video is not None and video.uri is not None
    with httpx.Client(verify=client_tls) as plain:
        redirect = plain.get(video.uri, headers={"x-goog-api-key": KEY})
        assert redirect.status_code == 302
        clip = plain.get(redirect.headers["location"])
    assert clip.status_code == 200 and clip.content == clip_bytes_of(_task_id(done), None)


def test_a_failed_operation_carries_an_error(start_veo: StartDialect, genai_for: GenaiFor) -> None:
    """With fail_rate 1 the operation ends done with ``error`` and no response."""
    done = _render(genai_for(start_veo(fail_rate=1.0, job_seconds=0.0)), prompt="Waves")
    assert done.error is not None and done.error["code"] == 13
    assert done.response is None


def test_a_safety_refusal_has_filtered_counts_and_no_sample(
    start_veo: StartDialect, genai_for: GenaiFor
) -> None:
    """With refuse_rate 1 the response has raiMediaFilteredCount/Reasons and no video."""
    done = _render(genai_for(start_veo(refuse_rate=1.0, job_seconds=0.0)), prompt="Waves")
    assert done.error is None and done.response is not None
    assert done.response.rai_media_filtered_count == 1
    assert done.response.rai_media_filtered_reasons
    assert not done.response.generated_videos


def test_an_expired_link_answers_403_and_the_next_download_works(
    start_veo: StartDialect, genai_for: GenaiFor
) -> None:
    """With expire_first_url the first download fails 403; downloading again succeeds."""
    sim = start_veo(expire_first_url=True, job_seconds=0.0)
    client = genai_for(sim)
    done = _render(client, prompt="Waves")
    assert done.response is not None and done.response.generated_videos
    video = done.response.generated_videos[0]
    with pytest.raises(errors.ClientError) as refused:
        client.files.download(file=video)
    assert refused.value.code == 403
    assert client.files.download(file=video) == clip_bytes_of(_task_id(done), None)


def test_quirks_put_some_videos_inline(start_veo: StartDialect, genai_for: GenaiFor) -> None:
    """With quirks some samples carry ``encodedVideo`` (the clip's bytes) instead of a URI."""
    sim = start_veo(quirks=True, seed=5, job_seconds=0.0)
    client = genai_for(sim)
    inline = 0
    for _ in range(8):
        done = _render(client, prompt="Waves")
        assert done.response is not None and done.response.generated_videos
        video = done.response.generated_videos[0].video
        assert video is not None
        if video.video_bytes is not None:
            inline += 1
            assert video.uri is None and video.mime_type == "video/mp4"
            assert video.video_bytes == clip_bytes_of(_task_id(done), None)
    assert 0 < inline < 8


def test_a_lost_operation_answers_404(start_veo: StartDialect, genai_for: GenaiFor) -> None:
    """With lose_rate 1, the finished operation is forgotten: 404 NOT_FOUND."""
    sim = start_veo(lose_rate=1.0, job_seconds=0.0)
    client = genai_for(sim)
    operation = client.models.generate_videos(model=MODEL, source=_source())
    with pytest.raises(errors.ClientError) as lost:
        client.operations.get(operation)
    assert lost.value.code == 404 and lost.value.status == "NOT_FOUND"


# ----- keys and faults ----------------------------------------------------------------------


def test_a_wrong_key_answers_400_api_key_invalid(
    start_veo: StartDialect, genai_for: GenaiFor
) -> None:
    sim = start_veo()
    with pytest.raises(errors.ClientError) as refused:
        genai_for(sim, key="wrong").models.generate_videos(model=MODEL, source=_source())
    assert refused.value.code == 400 and "API key not valid" in str(refused.value.message)
    assert sim.recorder.tasks_created == 0


def test_no_key_answers_403(start_veo: StartDialect, client_tls: ssl.SSLContext) -> None:
    sim = start_veo()
    url = f"{sim.base_url}/v1beta/models/{MODEL}:predictLongRunning"
    with httpx.Client(verify=client_tls) as plain:
        answer = plain.post(url, json={"instances": [{"prompt": "Waves"}]})
    assert answer.status_code == 403
    assert answer.json()["error"]["status"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    ("knobs", "code", "status"),
    [
        ({"rate_limit_rate": 1.0}, 429, "RESOURCE_EXHAUSTED"),
        ({"max_active": 1, "job_seconds": 30}, 429, "RESOURCE_EXHAUSTED"),
    ],
    ids=["rate-limit", "max-active"],
)
def test_429s_speak_google(
    start_veo: StartDialect, genai_for: GenaiFor, knobs: dict[str, Any], code: int, status: str
) -> None:
    sim = start_veo(**knobs)
    client = genai_for(sim)
    with pytest.raises(errors.ClientError) as refused:
        for _ in range(2):
            client.models.generate_videos(model=MODEL, source=_source())
    assert refused.value.code == code and refused.value.status == status


def test_error_rate_answers_5xx(start_veo: StartDialect, genai_for: GenaiFor) -> None:
    sim = start_veo(error_rate=1.0, seed=3)
    with pytest.raises(errors.ServerError):
        genai_for(sim).models.generate_videos(model=MODEL, source=_source())
    assert sim.recorder.tasks_created == 0


def test_a_dropped_create_made_its_operation(start_veo: StartDialect, genai_for: GenaiFor) -> None:
    sim = start_veo(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        genai_for(sim).models.generate_videos(model=MODEL, source=_source())
    assert sim.recorder.tasks_created == 1


def test_deny_polls_refuses_operations_get(start_veo: StartDialect, genai_for: GenaiFor) -> None:
    client = genai_for(start_veo(deny_polls=403))
    operation = client.models.generate_videos(model=MODEL, source=_source())
    with pytest.raises(errors.ClientError) as denied:
        client.operations.get(operation)
    assert denied.value.code == 403 and denied.value.status == "PERMISSION_DENIED"


def test_idempotency_keys_are_not_honoured(
    start_veo: StartDialect, client_tls: ssl.SSLContext
) -> None:
    """The Gemini API documents no idempotency key: the same key makes two operations."""
    sim = start_veo()
    url = f"{sim.base_url}/v1beta/models/{MODEL}:predictLongRunning"
    headers = {"x-goog-api-key": KEY, "Idempotency-Key": "same"}
    with httpx.Client(verify=client_tls) as plain:
        names = {
            plain.post(url, json={"instances": [{"prompt": "W"}]}, headers=headers).json()["name"]
            for _ in range(2)
        }
    assert len(names) == 2 and sim.recorder.tasks_created == 2


# ----- what the Gemini API refuses ----------------------------------------------------------

REFERENCE = types.VideoGenerationReferenceImage(image=PNG, reference_type="ASSET")

REFUSED_BY_SDK_CALL: dict[str, tuple[dict[str, Any], str]] = {
    "1080p at 6 s": (
        {"config": types.GenerateVideosConfig(resolution="1080p", duration_seconds=6)},
        "resolution 1080p needs durationSeconds 8",
    ),
    "4k at 4 s": (
        {"config": types.GenerateVideosConfig(resolution="4k", duration_seconds=4)},
        "resolution 4k needs durationSeconds 8",
    ),
    "5 s": (
        {"config": types.GenerateVideosConfig(duration_seconds=5)},
        "durationSeconds must be one of 4, 6, 8",
    ),
    "square": (
        {"config": types.GenerateVideosConfig(aspect_ratio="1:1")},
        "aspectRatio must be one of 16:9, 9:16",
    ),
    "480p": (
        {"config": types.GenerateVideosConfig(resolution="480p")},
        "resolution must be one of 720p, 1080p, 4k",
    ),
    "last frame alone": (
        {"config": types.GenerateVideosConfig(last_frame=PNG)},
        "lastFrame needs image",
    ),
    "four reference images": (
        {"config": types.GenerateVideosConfig(reference_images=[REFERENCE] * 4)},
        "At most 3 reference images",
    ),
    "reference images with a first frame": (
        {"image": PNG, "config": types.GenerateVideosConfig(reference_images=[REFERENCE])},
        "referenceImages cannot be combined",
    ),
    "reference images at 6 s": (
        {"config": types.GenerateVideosConfig(reference_images=[REFERENCE], duration_seconds=6)},
        "referenceImages need durationSeconds 8",
    ),
    "two samples": (
        {"config": types.GenerateVideosConfig(number_of_videos=2)},
        "sampleCount must be 1",
    ),
}


@pytest.mark.parametrize("case", REFUSED_BY_SDK_CALL, ids=list(REFUSED_BY_SDK_CALL))
def test_what_veo_cannot_do_is_refused_with_400(
    start_veo: StartDialect, genai_for: GenaiFor, case: str
) -> None:
    kwargs, message = REFUSED_BY_SDK_CALL[case]
    sim = start_veo()
    with pytest.raises(errors.ClientError) as refused:
        genai_for(sim).models.generate_videos(
            model=MODEL, source=_source(image=kwargs.pop("image", None)), **kwargs
        )
    assert refused.value.code == 400 and refused.value.status == "INVALID_ARGUMENT"
    assert message in str(refused.value.message)
    assert sim.recorder.tasks_created == 0


REFUSED_RAW: dict[str, dict[str, Any]] = {
    "duration as a string": {"parameters": {"durationSeconds": "8"}},
    "seed": {"parameters": {"seed": 1}},
    "audio": {"parameters": {"generateAudio": True}},
    "storage URI": {"parameters": {"storageUri": "gs://bucket/"}},
    "unknown parameter": {"parameters": {"colour": "red"}},
    "unknown instance field": {"instances": [{"prompt": "W", "colour": "red"}]},
    "image without base64": {
        "instances": [
            {"prompt": "W", "image": {"bytesBase64Encoded": "%%", "mimeType": "image/png"}}
        ]
    },
    "image of another type": {
        "instances": [
            {"prompt": "W", "image": {"bytesBase64Encoded": "aGk=", "mimeType": "text/x"}}
        ]
    },
    "no prompt and no image": {"instances": [{}]},
    "two instances": {"instances": [{"prompt": "W"}, {"prompt": "V"}]},
}


@pytest.mark.parametrize("case", REFUSED_RAW, ids=list(REFUSED_RAW))
def test_bodies_the_sdk_would_not_build_are_refused_too(
    start_veo: StartDialect, client_tls: ssl.SSLContext, case: str
) -> None:
    sim = start_veo()
    body = {"instances": [{"prompt": "Waves"}], **REFUSED_RAW[case]}
    url = f"{sim.base_url}/v1beta/models/{MODEL}:predictLongRunning"
    with httpx.Client(verify=client_tls) as plain:
        answer = plain.post(url, json=body, headers={"x-goog-api-key": KEY})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert sim.recorder.tasks_created == 0


def test_an_unknown_model_answers_404(start_veo: StartDialect, genai_for: GenaiFor) -> None:
    with pytest.raises(errors.ClientError) as refused:
        genai_for(start_veo()).models.generate_videos(model="veo-9", source=_source())
    assert refused.value.code == 404 and "models/veo-9 is not found" in str(refused.value.message)


def test_a_plain_http_simulator_names_its_base_without_a_path(start_sim: Any) -> None:
    """Without TLS the Veo simulator still serves; its base URL is the API's origin."""
    sim: RunningSim = start_sim(dialect="veo")
    assert sim.base_url.startswith("http://127.0.0.1:") and sim.base_url.count("/") == 2
