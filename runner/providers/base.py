"""What every provider profile says, and the offline check of a shot against a model.

A ``Profile`` is everything the client needs to know about one video API, and nothing it
does: no HTTP, no store. It names the key's environment variable and headers, builds the
create call from the generic request (the gateway's body, see ``runner.jobs.request_body``),
names the poll path, and reads the provider's task JSON into the client's checked ``Task``
(``runner.api.task``). Its
``Capabilities`` per model let ``check`` refuse, before anything is sent, what a model
cannot render, naming what it does accept.
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from runner.api.task import Task
from runner.model import REQUEST_FIELDS, ImageRef, Mode, Shot

#: The media type of a frame of another shot's clip, as it is sent (``runner.frames``).
FRAME_MEDIA_TYPE = "image/png"
_DATA_URI = re.compile(r"data:(?P<type>image/[A-Za-z0-9.+-]+);base64,(?P<payload>.*)\Z", re.DOTALL)


class Unmappable(ValueError):
    """A generic request the provider cannot take (``check`` says so before any send)."""


@dataclass(frozen=True)
class Capabilities:
    """What one model of one provider renders; ``check`` holds a shot against it."""

    provider: str
    model: str
    durations: tuple[int, ...]
    aspect_ratios: tuple[str, ...]
    resolutions: tuple[str, ...]
    #: Aspect ratios without any image (text-to-video), when they differ from the others.
    text_aspect_ratios: tuple[str, ...] | None = None
    #: Resolutions rendered only at ``full_seconds``.
    full_length_resolutions: tuple[str, ...] = ()
    full_seconds: int | None = None
    first_frame: bool = True
    last_frame: bool = False
    #: How many reference images it takes (0: none).
    reference_images: int = 0
    references_full_length: bool = False
    seconds_required: bool = False
    #: Whether a shot with a first (and last) frame still needs a prompt; text and
    #: reference shots always do.
    prompt_required_with_frames: bool = True
    #: Image kinds it takes: "file", "data" (both sent as bytes) and "url".
    image_kinds: tuple[str, ...] = ("file", "data", "url")
    #: Whether an image URL must be https.
    https_only: bool = False
    #: The media types of images it takes (None: any the runner reads).
    image_types: tuple[str, ...] | None = None
    #: The longest data URI it takes for one image, in bytes (None: no limit of its own).
    max_data_uri_bytes: int | None = None
    #: Extra fields it takes, by the provider's own names.
    extra_fields: frozenset[str] = frozenset()
    #: Extra fields it refuses, with why.
    refused_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageNeed:
    """One image of a shot: its kind ("file", "data" or "url"), and for bytes their size
    and media type (None for a URL)."""

    kind: str
    size: int | None = None
    media_type: str | None = None
    #: For a URL: whether it is https.
    https: bool = True


@dataclass(frozen=True)
class Needs:
    """What a shot asks of a model, from a resolved shot or from a generic request."""

    model: str
    mode: Mode
    seconds: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    has_prompt: bool = True
    images: tuple[ImageNeed, ...] = ()
    extra: tuple[str, ...] = ()

    @classmethod
    def from_shot(cls, shot: Shot) -> Needs:
        return cls(
            model=shot.model,
            mode=shot.mode,
            seconds=shot.seconds,
            aspect_ratio=shot.aspect_ratio,
            resolution=shot.resolution,
            has_prompt=bool(shot.prompt.strip()),
            images=tuple(_shot_image_need(image) for image in shot.images),
            extra=tuple(shot.extra),
        )

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> Needs:
        """From a generic request: images are URLs or data URIs (sized by their bytes)."""
        images = request_images(request)
        seconds = request.get("seconds")
        return cls(
            model=str(request.get("model", "")),
            mode=request_mode(request),
            seconds=int(seconds) if isinstance(seconds, str) and seconds.isdigit() else None,
            aspect_ratio=request.get("aspect_ratio"),
            resolution=request.get("resolution"),
            has_prompt=bool(str(request.get("prompt") or "").strip()),
            images=tuple(_image_need(image) for image in images),
            extra=tuple(name for name in request if name not in REQUEST_FIELDS),
        )


def _shot_image_need(image: ImageRef) -> ImageNeed:
    if image.kind == "shot":
        # A frame of another shot's clip is sent as a local file is: a PNG's bytes, taken
        # when that clip is delivered (so its size is not known offline).
        return ImageNeed("file", None, FRAME_MEDIA_TYPE)
    https = image.kind != "url" or _is_https(image.source)
    return ImageNeed(image.kind, image.size, image.media_type, https=https)


def request_mode(request: Mapping[str, Any]) -> Mode:
    """The generic request's mode, from which image fields it carries."""
    if "last_image_url" in request:
        return "first_last"
    if "first_image_url" in request:
        return "first_frame"
    if request.get("images"):
        return "reference"
    return "text"


def request_images(request: Mapping[str, Any]) -> list[str]:
    """The generic request's images in order: first and last frame, or the references."""
    images = [request[name] for name in ("first_image_url", "last_image_url") if name in request]
    references = request.get("images") or []
    return [str(image) for image in [*images, *references]]


def _image_need(image: str) -> ImageNeed:
    match = _DATA_URI.match(image)
    if match is None:
        return ImageNeed("url", https=_is_https(image))
    return ImageNeed("data", math.floor(len(match["payload"]) * 3 / 4), match["type"])


def _is_https(source: str) -> bool:
    return source[:8].lower() == "https://"


def split_data_uri(image: str) -> tuple[str, str]:
    """A data URI's media type and base64 payload; ``Unmappable`` for anything else."""
    match = _DATA_URI.match(image)
    if match is None:
        raise Unmappable("only a local file or a data:image/...;base64, URI can be sent inline")
    return match["type"], match["payload"]


@dataclass(frozen=True)
class Call:
    """One HTTP call to make: method, path under the base URL, and its JSON body."""

    method: str
    path: str
    json: dict[str, Any] | None = None


class Profile:
    """One provider's API, as data and pure functions. Subclasses fill in every hook."""

    #: The name ``provider:`` takes in a manifest.
    name: ClassVar[str]
    #: The environment variable the key comes from.
    key_env: ClassVar[str]
    #: The API's base URL when the run gives none (``--api-base`` overrides it).
    default_base: ClassVar[str | None] = None
    #: Whether ``Idempotency-Key`` is honoured; if not, ambiguous creates are guarded by
    #: the client alone.
    idempotent_creates: ClassVar[bool] = False
    #: The shortest sensible wait between two polls of one task, in seconds.
    poll_seconds: ClassVar[float | None] = None
    #: What ``Task.cost`` counts, if the provider reports a price.
    cost_unit: ClassVar[str | None] = None
    #: Whether a finished task may carry the clip inline in its answer.
    inline_video: ClassVar[bool] = False
    #: Whether a finished task that names no URL is fetched from ``{base}/videos/{id}/content``
    #: (the gateway's own route; other APIs have none).
    content_route: ClassVar[bool] = False
    #: The capability table: one entry per model (empty: every model is the service's call).
    models: ClassVar[Mapping[str, Capabilities]] = {}

    def headers(self, key: str) -> dict[str, str]:
        """The headers of every API call, the key among them (never to another origin)."""
        raise NotImplementedError

    def create_call(self, request: Mapping[str, Any]) -> Call:
        """The create call for a generic request; ``Unmappable`` if it cannot be sent."""
        raise NotImplementedError

    def created_id(self, answer: Any) -> str:
        """The task id in a create's answer; ``ValueError`` if there is none."""
        raise NotImplementedError

    def poll_path(self, task_id: str) -> str:
        """The path under the base URL that answers the task now."""
        raise NotImplementedError

    def read_task(self, answer: Any) -> Task:
        """The provider's task JSON as a checked ``Task`` (``Task.checked``); ``ValueError``
        if it has no id, ``UnreadableTask`` if a field cannot be kept."""
        raise NotImplementedError

    def base_advice(self) -> str:
        """What to check when the API's base looks wrong: nothing answers there, or it has
        no route for creating a task."""
        example = f", e.g. {self.default_base}" if self.default_base else ""
        return f"check --api-base (the {self.name} API's origin, without a version{example})"

    def poll_delay(self, planned: float, interval: float) -> float:
        """The wait before the next poll of one task: ``planned`` (``runner.polling``), but
        never under ``poll_seconds``, a task's answer changing no sooner, unless the run's
        ``--poll-interval`` is itself shorter (a run that asks for it, a simulator's)."""
        if self.poll_seconds is None:
            return planned
        return max(planned, min(self.poll_seconds, interval))

    def refuses_key(self, status: int, answer: Any) -> bool:
        """Whether an error answer (its JSON, or None) other than a 401 or 403 says the key
        is refused: the run stops as for any refused key, nothing failed."""
        return False

    def download_needs_key(self, url: str, base_url: str) -> bool:
        """Whether fetching the video's URL takes the key: only ever on the API's origin.
        Redirects are followed without it."""
        return False

    def check(self, needs: Needs) -> list[str]:
        """Why the model cannot render what a shot asks, one message each; empty if it can."""
        if not self.models:
            return []
        capabilities = self.models.get(needs.model)
        if capabilities is None:
            known = ", ".join(self.models)
            return [f"{self.name} has no model {needs.model!r} (it has {known})"]
        return check_capabilities(capabilities, needs)


def check_capabilities(caps: Capabilities, needs: Needs) -> list[str]:
    """Every way ``needs`` goes beyond ``caps``, each naming what the model accepts."""
    model = caps.model
    problems: list[str] = []
    with_image = needs.mode != "text"
    seconds = needs.seconds
    if seconds is None and caps.seconds_required:
        problems.append(f"{model} needs seconds ({_choices(caps.durations)})")
    elif seconds is not None and seconds not in caps.durations:
        problems.append(f"{model} renders {_choices(caps.durations)} s, not {seconds} s")
    ratios = caps.aspect_ratios
    if not with_image and caps.text_aspect_ratios is not None:
        ratios = caps.text_aspect_ratios
    if needs.aspect_ratio is not None and needs.aspect_ratio not in ratios:
        without = " without an image" if ratios is caps.text_aspect_ratios else ""
        problems.append(
            f"{model} renders aspect ratio {_choices(ratios)}{without}, not {needs.aspect_ratio}"
        )
    resolution = needs.resolution
    if resolution is not None and resolution not in caps.resolutions:
        problems.append(f"{model} renders {_choices(caps.resolutions)}, not {resolution}")
    full = caps.full_seconds
    # A shot without seconds gets the model's default, which is its full length.
    short = full is not None and seconds is not None and seconds != full
    if short and resolution in caps.full_length_resolutions:
        problems.append(f"{model} renders {resolution} only at {full} s")
    problems.extend(_image_problems(caps, needs))
    frames = needs.mode in ("first_frame", "first_last")
    if not needs.has_prompt and not frames:
        problems.append(f"{model} needs a prompt")
    elif not needs.has_prompt and caps.prompt_required_with_frames:
        problems.append(f"{model} needs a prompt, even with a first frame")
    for name in needs.extra:
        if name in caps.refused_fields:
            problems.append(f"{model} does not take {name}: {caps.refused_fields[name]}")
        elif name not in caps.extra_fields:
            takes = _choices(sorted(caps.extra_fields)) if caps.extra_fields else "none"
            problems.append(f"{model} does not take the extra field {name} (it takes {takes})")
    return problems


def _image_problems(caps: Capabilities, needs: Needs) -> list[str]:
    model = caps.model
    problems: list[str] = []
    mode = needs.mode
    if mode in ("first_frame", "first_last") and not caps.first_frame:
        problems.append(f"{model} takes no first frame")
    if mode == "first_last" and not caps.last_frame:
        problems.append(f"{model} takes a first frame only, not a last frame")
    if mode == "reference":
        count = len(needs.images)
        if caps.reference_images == 0:
            problems.append(f"{model} takes no reference images")
        elif count > caps.reference_images:
            problems.append(
                f"{model} takes at most {caps.reference_images} reference images, not {count}"
            )
        full = caps.full_seconds
        seconds = needs.seconds
        if caps.references_full_length and seconds is not None and seconds != full:
            problems.append(f"{model} renders reference images only at {full} s")
    for image in needs.images:
        kind, size, media_type = image.kind, image.size, image.media_type
        if kind not in caps.image_kinds:
            problems.append(
                f"{model} takes images as {_kinds(caps.image_kinds)}, not {_kinds((kind,))}"
            )
        if kind == "url" and caps.https_only and not image.https:
            problems.append(f"{model} takes image URLs over https only")
        types = caps.image_types
        if types is not None and media_type is not None and media_type not in types:
            problems.append(f"{model} takes {_choices(types)} images, not {media_type}")
        limit = caps.max_data_uri_bytes
        if limit is not None and kind != "url" and size is not None:
            sent = 4 * math.ceil(size / 3) + len("data:image/jpeg;base64,")
            if sent > limit:
                problems.append(
                    f"{model} takes images of at most {_mb(limit)} as a data URI; "
                    f"this one makes {_mb(sent)}"
                )
    return problems


def _choices(values: Any) -> str:
    words = [str(value) for value in values]
    if len(words) > 3 and all(word.isdigit() for word in words):
        numbers = [int(word) for word in words]
        if numbers == list(range(numbers[0], numbers[-1] + 1)):
            return f"{numbers[0]} to {numbers[-1]}"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _kinds(kinds: tuple[str, ...]) -> str:
    names = {"file": "a local file", "data": "a data URI", "url": "a URL"}
    return _choices([names.get(kind, kind) for kind in kinds])


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def decode_base64(text: Any) -> bytes:
    """Strict base64 into bytes; ``ValueError`` for anything else."""
    if not isinstance(text, str):
        raise ValueError("inline video is not a base64 string")
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as error:
        raise ValueError(f"inline video is not base64: {error}") from None


def text_of(value: object) -> str | None:
    """A non-empty string from a string or a number (codes are sometimes numeric)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).strip()
        return text or None
    return None
