"""Google Veo through the Gemini API: the profile.

Create ``POST /v1beta/models/{model}:predictLongRunning`` with the key in
``x-goog-api-key``; the body is ``{"instances": [{...}], "parameters": {...}}`` with images
inline (``bytesBase64Encoded`` + ``mimeType``) and ``durationSeconds`` an integer. The answer
is an operation ``{"name"}``, polled at ``/v1beta/{name}``: ``done`` is absent while it runs,
then there is a sample's ``video.uri`` (or the video inline), only
``raiMediaFilteredCount``/``raiMediaFilteredReasons`` (a safety refusal), or an ``error``.
The video's URI is on the API's origin and takes the key there; it redirects to storage on
another origin, where the key must not follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from runner.api.task import Task
from runner.model import REQUEST_FIELDS
from runner.providers.base import (
    Call,
    Capabilities,
    Profile,
    Unmappable,
    decode_base64,
    request_images,
    request_mode,
    split_data_uri,
    text_of,
)

_VERTEX_ONLY = "the Gemini API takes it only on Vertex AI"


def _veo(model: str) -> Capabilities:
    return Capabilities(
        provider="veo",
        model=model,
        durations=(4, 6, 8),
        aspect_ratios=("16:9", "9:16"),
        resolutions=("720p", "1080p", "4k"),
        full_length_resolutions=("1080p", "4k"),
        full_seconds=8,
        first_frame=True,
        last_frame=True,
        reference_images=3,
        references_full_length=True,
        prompt_required_with_frames=False,
        image_kinds=("file", "data"),
        image_types=("image/png", "image/jpeg", "image/webp"),
        extra_fields=frozenset({"negativePrompt", "personGeneration"}),
        refused_fields={
            name: _VERTEX_ONLY
            for name in ("seed", "fps", "generateAudio", "storageUri", "mask", "pubsubTopic")
        },
    )


MODELS: dict[str, Capabilities] = {
    model: _veo(model) for model in ("veo-3.1-generate-preview", "veo-3.1-fast-generate-preview")
}


class Veo(Profile):
    """Veo on the Gemini API (``v1beta``)."""

    name: ClassVar[str] = "veo"
    key_env: ClassVar[str] = "GEMINI_API_KEY"
    default_base: ClassVar[str | None] = "https://generativelanguage.googleapis.com"
    poll_seconds: ClassVar[float | None] = 10.0
    inline_video: ClassVar[bool] = True
    models: ClassVar[Mapping[str, Capabilities]] = MODELS

    def headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def create_call(self, request: Mapping[str, Any]) -> Call:
        model = str(request.get("model", ""))
        instance: dict[str, Any] = {}
        if request.get("prompt"):
            instance["prompt"] = request["prompt"]
        images = [_inline(image) for image in request_images(request)]
        mode = request_mode(request)
        if mode == "reference":
            instance["referenceImages"] = [
                {"image": image, "referenceType": "ASSET"} for image in images
            ]
        elif images:
            instance["image"] = images[0]
            if mode == "first_last":
                instance["lastFrame"] = images[1]
        parameters: dict[str, Any] = {}
        seconds = request.get("seconds")
        if seconds is not None:
            parameters["durationSeconds"] = _integer(seconds)
        if request.get("aspect_ratio") is not None:
            parameters["aspectRatio"] = request["aspect_ratio"]
        if request.get("resolution") is not None:
            parameters["resolution"] = request["resolution"]
        # Veo's own knobs (negativePrompt, personGeneration) are parameters.
        parameters.update(
            (name, value)
            for name, value in request.items()
            if name not in REQUEST_FIELDS and name not in parameters
        )
        body: dict[str, Any] = {"instances": [instance]}
        if parameters:
            body["parameters"] = parameters
        return Call("POST", f"/v1beta/models/{model}:predictLongRunning", body)

    def created_id(self, answer: Any) -> str:
        name = text_of(answer.get("name")) if isinstance(answer, dict) else None
        if name is None:
            raise ValueError("the operation has no name")
        return name

    def poll_path(self, task_id: str) -> str:
        return f"/v1beta/{task_id}"

    def read_task(self, answer: Any) -> Task:
        task_id = self.created_id(answer)
        if answer.get("done") is not True:
            return Task.checked(id=task_id, status="pending", raw_status="running")
        error = answer.get("error")
        if isinstance(error, dict) or error is not None:
            details = error if isinstance(error, dict) else {}
            return Task.checked(
                id=task_id,
                status="failed",
                raw_status="done",
                error_code=text_of(details.get("status")) or text_of(details.get("code")),
                error_message=text_of(details.get("message")) or text_of(error),
            )
        response = answer.get("response")
        generated = response.get("generateVideoResponse") if isinstance(response, dict) else None
        if not isinstance(generated, dict):
            generated = {}
        samples = generated.get("generatedSamples")
        video = _first_video(samples)
        if video is not None:
            url = text_of(video.get("uri"))
            inline = None if url else decode_base64(video.get("encodedVideo"))
            return Task.checked(
                id=task_id, status="completed", raw_status="done", video_url=url, video_bytes=inline
            )
        reasons = generated.get("raiMediaFilteredReasons")
        filtered = generated.get("raiMediaFilteredCount")
        if filtered or reasons:
            # The reasons are a list of strings; a hostile answer's other shapes give none.
            listed = reasons if isinstance(reasons, list) else [reasons] * isinstance(reasons, str)
            shown = [text for text in map(text_of, listed) if text]
            return Task.checked(
                id=task_id,
                status="failed",
                raw_status="done",
                error_code="safety_filtered",
                error_message="; ".join(shown) or "the video was filtered for safety",
                refused=True,
            )
        return Task.checked(
            id=task_id,
            status="failed",
            raw_status="done",
            error_code="no_video",
            error_message="the operation finished without a video",
        )

    def download_needs_key(self, url: str, base_url: str) -> bool:
        return _origin(url) == _origin(base_url)

    def refuses_key(self, status: int, answer: Any) -> bool:
        # A wrong key is a 400 whose ErrorInfo's reason is API_KEY_INVALID.
        error = answer.get("error") if isinstance(answer, dict) else None
        details = error.get("details") if isinstance(error, dict) else None
        if status != 400 or not isinstance(details, list):
            return False
        return any(
            isinstance(detail, dict) and detail.get("reason") == "API_KEY_INVALID"
            for detail in details
        )


def _inline(image: str) -> dict[str, str]:
    media_type, payload = split_data_uri(image)
    return {"bytesBase64Encoded": payload, "mimeType": media_type}


def _integer(seconds: Any) -> int:
    text = str(seconds)
    if not text.isdigit():
        raise Unmappable(f"seconds must be a whole number, not {seconds!r}")
    return int(text)


def _first_video(samples: Any) -> dict[str, Any] | None:
    if not isinstance(samples, list):
        return None
    for sample in samples:
        video = sample.get("video") if isinstance(sample, dict) else None
        if isinstance(video, dict) and (video.get("uri") or video.get("encodedVideo")):
            return video
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port
