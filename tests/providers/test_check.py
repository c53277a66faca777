"""The offline check: a shot held against its model's capability table, with messages that
name what the model does accept."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner.model import ImageRef, Shot
from runner.providers import PROFILES, ImageNeed, Needs, profile

VEO = "veo-3.1-generate-preview"
FILE = ImageNeed("file", 1000, "image/png")


def _check(provider: str, **fields: Any) -> list[str]:
    fields.setdefault("mode", "text")
    return profile(provider).check(Needs(**fields))


def test_what_veo_renders_passes() -> None:
    assert _check("veo", model=VEO, seconds=8, aspect_ratio="9:16", resolution="4k") == []
    assert _check("veo", model=VEO, mode="first_last", images=(FILE, FILE), seconds=4) == []
    assert _check("veo", model=VEO, mode="reference", images=(FILE,) * 3, seconds=8) == []
    assert _check("veo", model=VEO, mode="reference", images=(FILE,) * 3) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"resolution": "1080p", "seconds": 6}, f"{VEO} renders 1080p only at 8 s"),
        ({"resolution": "4k", "seconds": 4}, f"{VEO} renders 4k only at 8 s"),
        ({"seconds": 5}, f"{VEO} renders 4, 6 or 8 s, not 5 s"),
        ({"aspect_ratio": "1:1"}, f"{VEO} renders aspect ratio 16:9 or 9:16, not 1:1"),
        ({"resolution": "2k"}, f"{VEO} renders 720p, 1080p or 4k, not 2k"),
        (
            {"mode": "reference", "images": (FILE,) * 4, "seconds": 8},
            f"{VEO} takes at most 3 reference images, not 4",
        ),
        (
            {"mode": "reference", "images": (FILE,), "seconds": 6},
            f"{VEO} renders reference images only at 8 s",
        ),
        (
            {"mode": "first_frame", "images": (ImageNeed("url"),)},
            f"{VEO} takes images as a local file or a data URI, not a URL",
        ),
        (
            {"mode": "first_frame", "images": (ImageNeed("file", 10, "image/gif"),)},
            f"{VEO} takes image/png, image/jpeg or image/webp images, not image/gif",
        ),
        (
            {"extra": ("seed",)},
            f"{VEO} does not take seed: the Gemini API takes it only on Vertex AI",
        ),
        (
            {"extra": ("colour",)},
            f"{VEO} does not take the extra field colour "
            "(it takes negativePrompt or personGeneration)",
        ),
    ],
)
def test_what_veo_cannot_render_is_named_with_what_it_can(
    fields: dict[str, Any], message: str
) -> None:
    assert _check("veo", model=VEO, **fields) == [message]


def test_an_unknown_model_names_the_known_ones() -> None:
    [message] = _check("veo", model="veo-9")
    assert message == (
        "veo has no model 'veo-9' (it has veo-3.1-generate-preview, veo-3.1-fast-generate-preview)"
    )


def test_several_problems_are_all_reported() -> None:
    assert len(_check("veo", model=VEO, seconds=5, aspect_ratio="4:3", resolution="8k")) == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"seconds": None}, "gen4.5 needs seconds (2 to 10)"),
        ({"seconds": 11}, "gen4.5 renders 2 to 10 s, not 11 s"),
        (
            {"aspect_ratio": "1:1"},
            "gen4.5 renders aspect ratio 16:9 or 9:16 without an image, not 1:1",
        ),
        (
            {"mode": "first_last", "images": (FILE, FILE)},
            "gen4.5 takes a first frame only, not a last frame",
        ),
        ({"mode": "reference", "images": (FILE,)}, "gen4.5 takes no reference images"),
        ({"resolution": "1080p"}, "gen4.5 renders 720p, not 1080p"),
        (
            {"mode": "first_frame", "images": (ImageNeed("file", 4 * 1024 * 1024),)},
            "gen4.5 takes images of at most 5.0 MB as a data URI; this one makes 5.3 MB",
        ),
        (
            {"mode": "first_frame", "images": (FILE,), "has_prompt": False},
            "gen4.5 needs a prompt, even with a first frame",
        ),
    ],
)
def test_what_gen4_5_cannot_render(fields: dict[str, Any], message: str) -> None:
    fields.setdefault("seconds", 5)
    assert _check("runway", model="gen4.5", **fields) == [message]


def test_runway_takes_image_urls_over_https_only() -> None:
    needs = Needs.from_request(
        {"model": "veo3.1", "prompt": "p", "first_image_url": "http://example.com/a.png"}
    )
    assert PROFILES["runway"].check(needs) == ["veo3.1 takes image URLs over https only"]
    https = {"model": "veo3.1", "prompt": "p", "first_image_url": "https://example.com/a.png"}
    assert PROFILES["runway"].check(Needs.from_request(https)) == []


def test_gen4_5_takes_square_with_a_first_frame() -> None:
    needs = {"mode": "first_frame", "images": (FILE,), "seconds": 5, "aspect_ratio": "1:1"}
    assert _check("runway", model="gen4.5", **needs) == []


def test_veo3_1_on_runway_takes_first_and_last_without_a_prompt() -> None:
    needs = {"mode": "first_last", "images": (FILE, FILE), "has_prompt": False}
    assert _check("runway", model="veo3.1", **needs) == []
    assert _check("runway", model="veo3.1", seconds=5) == ["veo3.1 renders 4, 6 or 8 s, not 5 s"]


def test_the_gateway_checks_nothing_offline() -> None:
    assert _check("gateway", model="anything", seconds=99, aspect_ratio="7:3") == []


def test_needs_from_a_resolved_shot(tmp_path: Path) -> None:
    """A shot's images count with their kind and size; its extra fields by name."""
    image = ImageRef(
        source="a.png", kind="file", sha256="0" * 64, path=tmp_path, media_type="image/png", size=7
    )
    shot = Shot(
        id="s",
        index=0,
        prompt="Waves",
        mode="first_last",
        images=(image, image),
        model=VEO,
        seconds=6,
        resolution="1080p",
        extra={"negativePrompt": "rain"},
    )
    needs = Needs.from_shot(shot)
    assert needs.images == (ImageNeed("file", 7, "image/png"),) * 2
    assert needs.extra == ("negativePrompt",)
    assert PROFILES["veo"].check(needs) == [f"{VEO} renders 1080p only at 8 s"]


def test_needs_from_a_generic_request() -> None:
    """From the gateway's body: the mode from its image fields, sizes from data URIs."""
    request = {
        "model": "gen4.5",
        "prompt": "Waves",
        "seconds": "5",
        "first_image_url": "data:image/png;base64,AAAA",
        "last_image_url": "https://example.com/b.png",
        "seed": 3,
    }
    needs = Needs.from_request(request)
    assert needs.mode == "first_last" and needs.seconds == 5
    assert needs.images == (ImageNeed("data", 3, "image/png"), ImageNeed("url"))
    assert needs.extra == ("seed",)


def test_an_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="gateway, veo, runway"):
        profile("openai")


def test_a_provider_is_part_of_the_fingerprint_and_the_gateway_keeps_the_old_one() -> None:
    from runner.jobs import fingerprint

    shot = Shot(id="x", index=0, prompt="waves", seconds=8, aspect_ratio="16:9")
    before = "bd7221ac4ff9ae85e1192ab4c9dd145fa2195e3bfe1c303871b54f9d3e1a2022"
    assert fingerprint(shot, 1) == before
    assert fingerprint(replace(shot, provider="gateway"), 1) == before
    others = {fingerprint(replace(shot, provider=name), 1) for name in ("veo", "runway")}
    assert len(others) == 2 and before not in others


def test_a_problem_set_in_defaults_is_reported_once_where_it_is_written(tmp_path: Path) -> None:
    """The check runs as each shot is built: a field from ``defaults`` that no shot's model
    renders is one diagnostic at ``defaults``, however many shots inherit it; a shot's own
    field is reported on the shot."""
    from runner.errors import ManifestInvalid
    from runner.providers.check import load_checked, validate_checked

    manifest = tmp_path / "m.yaml"
    shots = "".join(f"  - {{id: s{i}, prompt: waves}}\n" for i in range(50))
    manifest.write_text(
        f"version: 1\nprovider: veo\ndefaults:\n  model: {VEO}\n  seconds: 4\n"
        f"  resolution: 1080p\nshots:\n{shots}  - {{id: own, prompt: p, seconds: 5}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ManifestInvalid) as raised:
        load_checked(manifest)
    counts, diagnostics = validate_checked(manifest)
    assert counts is None
    for found in (raised.value.diagnostics, diagnostics):
        errors = [d for d in found if d.severity == "error"]
        assert [(d.line, d.path) for d in errors] == [
            (6, "defaults.resolution"),
            (58, "shots[50].seconds"),
        ]
        assert errors[0].message == f"veo: {VEO} renders 1080p only at 8 s"
