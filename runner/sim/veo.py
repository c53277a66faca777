"""Google Veo through the Gemini API (``v1beta``), as the ``google-genai`` 2.x SDK calls it.

- ``POST /v1beta/models/{model}:predictLongRunning`` with ``{"instances": [{"prompt",
  "image", "lastFrame", "referenceImages"}], "parameters": {"durationSeconds", "aspectRatio",
  "resolution", ...}}`` answers an operation ``{"name": "models/{model}/operations/{id}"}``.
- ``GET /v1beta/models/{model}/operations/{id}``: ``done`` is absent while it runs; at the end
  ``done: true`` and either ``response.generateVideoResponse.generatedSamples[].video.uri``,
  or only ``raiMediaFilteredCount``/``raiMediaFilteredReasons`` (a safety refusal), or an
  ``error``. A lost operation answers 404.
- ``GET /v1beta/files/{id}:download?alt=media`` needs the key and answers a 302 to the
  clip's signed URL on the file host (another origin), as the real service redirects to
  storage: a client that sends its key there shows in the recorder.

The key travels in ``x-goog-api-key`` (or ``?key=``); a missing key answers 403, a wrong one
400 ``API_KEY_INVALID``. Errors are ``{"error": {"code", "message", "status"}}``. There is
no idempotency key. With ``quirks``, some tasks carry the video inline (``encodedVideo`` and
``encoding``) instead of a ``uri``.

Creates are checked against the limits the Gemini API documents for Veo 3.1: durations 4, 6
or 8 s, and 8 s for 1080p, 4k and reference images; 16:9 or 9:16; 720p, 1080p or 4k; a last
frame needs a first frame; at most 3 reference images (``ASSET``), never with frames; seed,
fps, audio, storage URIs and masks are refused outside Vertex AI; unknown fields are refused.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from typing import Any, ClassVar

from aiohttp import web

from runner.sim.clip import clip_bytes_of
from runner.sim.dialect import Dialect, Invalid, json_response
from runner.sim.state import Task

MODELS = frozenset({"veo-3.1-generate-preview", "veo-3.1-fast-generate-preview"})
DURATIONS = (4, 6, 8)
DEFAULT_DURATION = 8
#: Resolutions (and reference images) that are rendered at 8 s only.
LONG_ONLY_RESOLUTIONS = frozenset({"1080p", "4k"})
LONG_DURATION = 8
ASPECT_RATIOS = ("16:9", "9:16")
RESOLUTIONS = ("720p", "1080p", "4k")
MAX_REFERENCE_IMAGES = 3
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
INSTANCE_FIELDS = frozenset({"prompt", "image", "lastFrame", "referenceImages", "video"})
PARAMETER_FIELDS = frozenset(
    {
        "durationSeconds",
        "aspectRatio",
        "resolution",
        "negativePrompt",
        "personGeneration",
        "sampleCount",
        "enhancePrompt",
    }
)
#: Parameters the Gemini API refuses (Vertex AI takes them).
VERTEX_ONLY = frozenset(
    {"seed", "fps", "generateAudio", "storageUri", "mask", "pubsubTopic", "compressionQuality"}
)
_RESPONSE_TYPE = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
)
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
}
_FILTERED_REASON = (
    "Your prompt or image may violate our usage guidelines and was blocked; "
    "you will not be charged for this request."
)


class Veo(Dialect):
    """Veo on the Gemini API."""

    name: ClassVar[str] = "veo"

    def routes(self) -> list[web.RouteDef]:
        model = "{model:[^/:]+}"
        return [
            web.post(f"/v1beta/models/{model}:predictLongRunning", self._create),
            web.get(f"/v1beta/models/{model}/operations/{{task_id}}", self._retrieve),
            web.get("/v1beta/files/{task_id:[a-z0-9]+}:download", self._download),
        ]

    def new_task_id(self) -> str:
        # Lowercase letters and digits only: the SDK finds a file's id in its URI that way.
        return secrets.token_hex(8)

    def key_refusal(self, request: web.Request, token: str) -> web.Response | None:
        given = request.headers.get("x-goog-api-key") or request.query.get("key")
        if given is None:
            message = (
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity."
            )
            return self.error(403, "PERMISSION_DENIED", message)
        if hmac.compare_digest(given.encode(), token.encode()):
            return None
        # As Google answers it: a 400 whose ErrorInfo names the reason.
        error = {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        }
        return json_response({"error": error}, 400)

    def error(self, status: int, code: str, message: str, param: str | None = None) -> web.Response:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
        if param is not None:
            violation = {"field": param, "description": message}
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [violation],
                }
            ]
        return json_response({"error": error}, status)

    def rate_limited(self) -> web.Response:
        return self.error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (check quota).")

    def busy(self, limit: int) -> web.Response:
        message = f"Too many concurrent requests (at most {limit}); try again later."
        return self.error(429, "RESOURCE_EXHAUSTED", message)

    def not_found(self) -> web.Response:
        return self.error(404, "NOT_FOUND", "Operation not found.")

    # ----- handlers -----------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        sim = self.sim
        body = await sim.read_create(request)
        if isinstance(body, web.Response):
            return body
        model = request.match_info["model"]
        if model not in MODELS:
            message = (
                f"models/{model} is not found for API version v1beta, "
                "or is not supported for predictLongRunning."
            )
            return self.error(404, "NOT_FOUND", message)
        problem = check_create(body)
        if problem is not None:
            return self.error(400, problem.code, problem.message, problem.param)
        duration = (body.get("parameters") or {}).get("durationSeconds", DEFAULT_DURATION)
        task = sim.start_task(request, model, str(duration))
        if isinstance(task, web.Response):
            return task
        return sim.maybe_drop(request, json_response({"name": _operation_name(task)}))

    async def _retrieve(self, request: web.Request) -> web.StreamResponse:
        task = self.sim.known_task(request, poll=True)
        if isinstance(task, web.Response):
            return task
        if task.model != request.match_info["model"]:
            return self.not_found()
        status, _ = task.phase(time.time())
        if status == "gone":
            return self.not_found()
        return json_response(self.operation(task, status))

    async def _download(self, request: web.Request) -> web.StreamResponse:
        sim = self.sim
        task = sim.known_task(request)
        if isinstance(task, web.Response):
            return task
        if request.query.get("alt") != "media":
            return self.error(400, "INVALID_ARGUMENT", "Only alt=media downloads are served.")
        now = time.time()
        if task.phase(now)[0] != "completed":
            return self.error(404, "NOT_FOUND", f"File files/{task.id} is not ready.")
        return web.Response(status=302, headers={"Location": sim.file_url(task.id, now)})

    # ----- bodies -------------------------------------------------------------------------

    def operation(self, task: Task, status: str) -> dict[str, Any]:
        """The operation object of ``task`` in ``status``."""
        body: dict[str, Any] = {"name": _operation_name(task)}
        if status in ("queued", "in_progress"):
            return body
        body["done"] = True
        if task.outcome == "failed":
            body["error"] = {"code": 13, "message": "Video generation failed; try again."}
            return body
        answer: dict[str, Any]
        if task.outcome == "refused":
            answer = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [_FILTERED_REASON]}
        else:
            answer = {"generatedSamples": [{"video": self._video(task)}]}
        body["response"] = {"@type": _RESPONSE_TYPE, "generateVideoResponse": answer}
        return body

    def _video(self, task: Task) -> dict[str, Any]:
        config = self.sim.config
        if config.quirks and task.variant % 2 == 1:
            clip = clip_bytes_of(task.id, config.clip_bytes)
            return {"encodedVideo": base64.b64encode(clip).decode(), "encoding": "video/mp4"}
        return {"uri": f"{self.sim.api_origin}/v1beta/files/{task.id}:download?alt=media"}


def _operation_name(task: Task) -> str:
    return f"models/{task.model}/operations/{task.id}"


# ----- validation -------------------------------------------------------------------------


def check_create(body: Any) -> Invalid | None:
    """The first reason the Gemini API would refuse this Veo create, or None."""
    if not isinstance(body, dict):
        return Invalid("INVALID_ARGUMENT", "The request body must be a JSON object.")
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return Invalid("INVALID_ARGUMENT", "Exactly one instance is required.", "instances")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        return Invalid("INVALID_ARGUMENT", "'parameters' must be an object.", "parameters")
    for name in body:
        if name not in ("instances", "parameters"):
            return _unknown(name, "")
    return _check_instance(instances[0]) or _check_parameters(parameters, instances[0])


def _check_instance(instance: dict[str, Any]) -> Invalid | None:
    for name in instance:
        if name not in INSTANCE_FIELDS:
            return _unknown(name, "instances[0]")
    if "video" in instance:
        return Invalid("INVALID_ARGUMENT", "`video` isn't supported by this model.", "video")
    prompt = instance.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return Invalid("INVALID_ARGUMENT", "'prompt' must be a string.", "instances[0].prompt")
    if (not isinstance(prompt, str) or not prompt.strip()) and "image" not in instance:
        return Invalid("INVALID_ARGUMENT", "A prompt is required.", "instances[0].prompt")
    for name in ("image", "lastFrame"):
        if name in instance:
            problem = _check_image(instance[name], f"instances[0].{name}")
            if problem is not None:
                return problem
    if "lastFrame" in instance and "image" not in instance:
        message = "lastFrame needs image (the first frame)."
        return Invalid("INVALID_ARGUMENT", message, "instances[0].lastFrame")
    if "referenceImages" in instance:
        return _check_references(instance)
    return None


def _check_references(instance: dict[str, Any]) -> Invalid | None:
    where = "instances[0].referenceImages"
    references = instance["referenceImages"]
    if not isinstance(references, list) or not references:
        return Invalid("INVALID_ARGUMENT", "'referenceImages' must be a list.", where)
    if len(references) > MAX_REFERENCE_IMAGES:
        message = f"At most {MAX_REFERENCE_IMAGES} reference images, got {len(references)}."
        return Invalid("INVALID_ARGUMENT", message, where)
    if "image" in instance or "lastFrame" in instance:
        message = "referenceImages cannot be combined with image or lastFrame."
        return Invalid("INVALID_ARGUMENT", message, where)
    for index, reference in enumerate(references):
        place = f"{where}[{index}]"
        if not isinstance(reference, dict):
            return Invalid("INVALID_ARGUMENT", "A reference image must be an object.", place)
        if reference.get("referenceType", "ASSET") != "ASSET":
            message = f"referenceType {reference.get('referenceType')!r} is not supported."
            return Invalid("INVALID_ARGUMENT", message, f"{place}.referenceType")
        problem = _check_image(reference.get("image"), f"{place}.image")
        if problem is not None:
            return problem
    return None


def _check_image(image: Any, where: str) -> Invalid | None:
    if not isinstance(image, dict):
        return Invalid("INVALID_ARGUMENT", f"'{where}' must be an image object.", where)
    if "gcsUri" in image:
        return Invalid("INVALID_ARGUMENT", "`gcsUri` isn't supported by the Gemini API.", where)
    if image.get("mimeType") not in IMAGE_TYPES:
        allowed = ", ".join(sorted(IMAGE_TYPES))
        message = f"'{where}.mimeType' must be one of {allowed}."
        return Invalid("INVALID_ARGUMENT", message, f"{where}.mimeType")
    data = image.get("bytesBase64Encoded")
    try:
        decoded = binascii.a2b_base64(data, strict_mode=True) if isinstance(data, str) else b""
    except binascii.Error:
        decoded = b""
    if not decoded:
        message = f"'{where}.bytesBase64Encoded' must hold base64 image bytes."
        return Invalid("INVALID_ARGUMENT", message, f"{where}.bytesBase64Encoded")
    return None


def _check_parameters(parameters: dict[str, Any], instance: dict[str, Any]) -> Invalid | None:
    for name in parameters:
        if name in VERTEX_ONLY:
            message = f"`{name}` isn't supported by the Gemini API."
            return Invalid("INVALID_ARGUMENT", message, f"parameters.{name}")
        if name not in PARAMETER_FIELDS:
            return _unknown(name, "parameters")
    duration = parameters.get("durationSeconds", DEFAULT_DURATION)
    if isinstance(duration, bool) or not isinstance(duration, int):
        message = f"durationSeconds must be an integer, not {type(duration).__name__}."
        return Invalid("INVALID_ARGUMENT", message, "parameters.durationSeconds")
    if duration not in DURATIONS:
        message = f"durationSeconds must be one of {', '.join(map(str, DURATIONS))}."
        return Invalid("INVALID_ARGUMENT", message, "parameters.durationSeconds")
    ratio = parameters.get("aspectRatio", ASPECT_RATIOS[0])
    if ratio not in ASPECT_RATIOS:
        message = f"aspectRatio must be one of {', '.join(ASPECT_RATIOS)}."
        return Invalid("INVALID_ARGUMENT", message, "parameters.aspectRatio")
    resolution = parameters.get("resolution", RESOLUTIONS[0])
    if resolution not in RESOLUTIONS:
        message = f"resolution must be one of {', '.join(RESOLUTIONS)}."
        return Invalid("INVALID_ARGUMENT", message, "parameters.resolution")
    if resolution in LONG_ONLY_RESOLUTIONS and duration != LONG_DURATION:
        message = f"resolution {resolution} needs durationSeconds {LONG_DURATION}."
        return Invalid("INVALID_ARGUMENT", message, "parameters.durationSeconds")
    if "referenceImages" in instance and duration != LONG_DURATION:
        message = f"referenceImages need durationSeconds {LONG_DURATION}."
        return Invalid("INVALID_ARGUMENT", message, "parameters.durationSeconds")
    if parameters.get("sampleCount", 1) != 1:
        return Invalid("INVALID_ARGUMENT", "sampleCount must be 1.", "parameters.sampleCount")
    return None


def _unknown(name: str, where: str) -> Invalid:
    place = f" at '{where}'" if where else ""
    message = f'Invalid JSON payload received. Unknown name "{name}"{place}: Cannot find field.'
    return Invalid("INVALID_ARGUMENT", message, f"{where}.{name}" if where else name)
