"""The checks a create request passes on the gateway, as the simulator's gateway applies them."""

from __future__ import annotations

import binascii
import re
from typing import Any

from runner.sim.dialect import Invalid

RESOLUTIONS = frozenset({"720p", "1080p", "2k", "4k"})
VIDEO_FIELDS = ("video", "video_url", "input_video")
IMAGE_FIELDS = ("first_image_url", "last_image_url")
MAX_IMAGES = 5

_DATA_URI = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,(?P<payload>.*)", re.DOTALL)


def check_create(body: Any) -> Invalid | None:
    """The first reason the real service would refuse this create body, or None."""
    if not isinstance(body, dict):
        return Invalid("invalid_request", "The request body must be a JSON object.")
    for name in ("model", "prompt"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            return Invalid("invalid_request", f"'{name}' is required.", name)
    if body["model"] == "omni-fast":
        for name in VIDEO_FIELDS:
            if name in body:
                message = f"'{name}' is not supported by omni-fast (use omni-fast-v2v)."
                return Invalid("invalid_request", message, name)
    if "seconds" in body:
        seconds = body["seconds"]
        if not isinstance(seconds, str):
            message = f"'seconds' must be a string of digits, not {type(seconds).__name__}."
            return Invalid("invalid_request", message, "seconds")
        if not seconds.isdigit():
            return Invalid("invalid_request", "'seconds' must be a string of digits.", "seconds")
    if "resolution" in body and body["resolution"] not in RESOLUTIONS:
        allowed = ", ".join(sorted(RESOLUTIONS))
        message = f"Unknown resolution {body['resolution']!r}; expected one of {allowed}."
        return Invalid("invalid_request", message, "resolution")
    if "aspect_ratio" in body and not isinstance(body["aspect_ratio"], str):
        return Invalid("invalid_request", "'aspect_ratio' must be a string.", "aspect_ratio")
    if "last_image_url" in body and "first_image_url" not in body:
        message = "'last_image_url' needs 'first_image_url'."
        return Invalid("invalid_request", message, "last_image_url")
    for name in IMAGE_FIELDS:
        if name in body:
            problem = _check_image(body[name], name)
            if problem is not None:
                return problem
    if "images" in body:
        return _check_images(body["images"])
    return None


def _check_images(images: Any) -> Invalid | None:
    if not isinstance(images, list):
        return Invalid("invalid_request", "'images' must be an array of strings.", "images")
    if len(images) > MAX_IMAGES:
        message = f"At most {MAX_IMAGES} images are allowed, got {len(images)}."
        return Invalid("invalid_request", message, "images")
    for index, image in enumerate(images):
        problem = _check_image(image, f"images[{index}]")
        if problem is not None:
            return problem
    return None


def _check_image(value: Any, where: str) -> Invalid | None:
    if not isinstance(value, str):
        return Invalid("invalid_request", f"'{where}' must be a string.", where)
    if value.startswith(("http://", "https://")):
        return None
    match = _DATA_URI.fullmatch(value)
    if match is None:
        message = f"'{where}' must be an http(s) URL or a data:image/...;base64, URI."
        return Invalid("invalid_image", message, where)
    try:
        decoded = binascii.a2b_base64(match["payload"], strict_mode=True)
    except binascii.Error:
        decoded = b""
    if not decoded:
        return Invalid("invalid_image", f"'{where}' holds a data URI that is not base64.", where)
    return None
