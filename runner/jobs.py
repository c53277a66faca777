"""Jobs: each (shot, take), its fingerprint, and the request bodies that render it.

The fingerprint is a sha256 over canonical JSON of everything that shapes the video
(model, final prompt, seconds, aspect ratio, resolution, mode, images by content hash or
URL, extra, take number, and the provider unless it is the gateway) and nothing else:
renaming or reordering shots keeps it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from runner.images import data_uri
from runner.model import DEFAULT_PROVIDER, ImageRef, Job, Manifest, Shot

#: Bumped only if the fingerprint's inputs change meaning; part of every fingerprint.
FINGERPRINT_VERSION = 1


# No cycle check: the values are a manifest's, built without cycles (runner.yamlsrc).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the same value always gives the same text."""
    return _CANONICAL.encode(value)


def canonical_seconds(seconds: int | None) -> str | None:
    """Seconds as the API wants them: a digit string without leading zeros."""
    return None if seconds is None else str(int(seconds))


def fingerprint(shot: Shot, take: int) -> str:
    """64 hex characters identifying what (shot, take) renders; not the id, not the order."""
    identity = {
        "v": FINGERPRINT_VERSION,
        "model": shot.model,
        "prompt": shot.prompt,
        "seconds": canonical_seconds(shot.seconds),
        "aspect_ratio": shot.aspect_ratio,
        "resolution": shot.resolution,
        "mode": shot.mode,
        "images": [image.identity() for image in shot.images],
        "extra": shot.extra,
        "take": take,
    }
    if shot.provider != DEFAULT_PROVIDER:
        # Another API renders another clip; the gateway's (every manifest from before
        # providers) keeps its fingerprint.
        identity["provider"] = shot.provider
    return hashlib.sha256(canonical_json(identity).encode("utf-8")).hexdigest()


def expand_jobs(manifest: Manifest) -> list[Job]:
    """Every job of the manifest in storyboard order, takes 1..n of each shot."""
    jobs: list[Job] = []
    for shot in manifest.shots:
        for take in range(1, shot.takes + 1):
            jobs.append(Job(shot=shot, take=take, fingerprint=fingerprint(shot, take)))
    return jobs


def _body(shot: Shot, images: list[Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": shot.model, "prompt": shot.prompt}
    if shot.seconds is not None:
        body["seconds"] = canonical_seconds(shot.seconds)
    if shot.aspect_ratio is not None:
        body["aspect_ratio"] = shot.aspect_ratio
    if shot.resolution is not None:
        body["resolution"] = shot.resolution
    if shot.mode in ("first_frame", "first_last"):
        body["first_image_url"] = images[0]
        if shot.mode == "first_last":
            body["last_image_url"] = images[1]
    elif shot.mode == "reference":
        body["images"] = images
    body.update(shot.extra)
    return body


def request_body(shot: Shot) -> dict[str, Any]:
    """The JSON body of POST /v1/videos; local images are read now and sent as data URIs.

    Raises ``InputError`` if a local image vanished or changed since validation, or a
    frame of another shot's clip cannot be taken.
    """
    return _body(shot, [_uri(image) for image in shot.images])


def _uri(image: ImageRef) -> str:
    if image.kind == "shot":
        # A frame of another shot's delivered clip: taken now, stored beside the shot.
        from runner.frames import frame_uri

        return frame_uri(image)
    return data_uri(image)


def _as_sent(image: ImageRef) -> str:
    """What stands for ``image`` in ``request_identity``: a local file's data URI is decided
    by its media type and bytes, so its media type and hash stand for it."""
    if image.kind != "file" or image.path is None:
        return image.source
    return f"data:{image.media_type};sha256:{image.sha256}"


def request_identity(shot: Shot) -> str:
    """``request_body(shot)`` as canonical JSON, without reading any image: equal for two
    shots exactly when the requests they send are the same."""
    return canonical_json(_body(shot, [_as_sent(image) for image in shot.images]))


def provenance_request(shot: Shot) -> dict[str, Any]:
    """The same body for a sidecar: each image as its source and sha256, never base64."""
    return _body(shot, [ImageRef.provenance(image) for image in shot.images])
