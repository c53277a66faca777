"""Jobs, fingerprints and request bodies."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.errors import InputError
from runner.jobs import expand_jobs, fingerprint, provenance_request, request_body
from runner.manifest import load_manifest
from runner.model import ImageRef, Shot
from tests.manifest.conftest import WriteManifest

TWO_SHOTS = """
version: 1
defaults: {seconds: 8, aspect_ratio: '16:9'}
shots:
  - {id: %s, prompt: waves, takes: 2}
  - {id: %s, prompt: hero, mode: first_frame, images: [frames/s02.png]}
"""


def fingerprints_by_prompt(path: Path) -> dict[tuple[str, int], str]:
    return {(j.shot.prompt, j.take): j.fingerprint for j in expand_jobs(load_manifest(path))}


def test_jobs_come_in_storyboard_order_with_takes(write_manifest: WriteManifest) -> None:
    """expand_jobs yields each shot's takes 1..n, shots in manifest order."""
    jobs = expand_jobs(load_manifest(write_manifest(TWO_SHOTS % ("a", "b"))))
    assert [j.key for j in jobs] == ["a/1", "a/2", "b/1"]


def test_fingerprint_is_64_hex_and_differs_per_take(write_manifest: WriteManifest) -> None:
    """Each take of a shot is its own job with its own fingerprint."""
    jobs = expand_jobs(load_manifest(write_manifest(TWO_SHOTS % ("a", "b"))))
    assert all(len(j.fingerprint) == 64 and int(j.fingerprint, 16) >= 0 for j in jobs)
    assert jobs[0].fingerprint != jobs[1].fingerprint


def test_renaming_and_reordering_shots_keeps_fingerprints(write_manifest: WriteManifest) -> None:
    """Neither the shot id nor the order of shots is part of the fingerprint."""
    before = fingerprints_by_prompt(write_manifest(TWO_SHOTS % ("a", "b")))
    swapped = """
version: 1
defaults: {seconds: 8, aspect_ratio: '16:9'}
shots:
  - {id: renamed, prompt: hero, mode: first_frame, images: [frames/s02.png]}
  - {id: other, prompt: waves, takes: 2}
"""
    assert fingerprints_by_prompt(write_manifest(swapped)) == before


def test_changing_image_bytes_changes_the_fingerprint(
    write_manifest: WriteManifest, workdir: Path
) -> None:
    """A local image is identified by its content hash, not its name."""
    path = write_manifest(TWO_SHOTS % ("a", "b"))
    before = fingerprints_by_prompt(path)
    image = workdir / "frames" / "s02.png"
    image.write_bytes(image.read_bytes() + b"\x00")
    after = fingerprints_by_prompt(path)
    assert after[("hero", 1)] != before[("hero", 1)]
    assert after[("waves", 1)] == before[("waves", 1)]


def test_seconds_written_differently_give_one_fingerprint(write_manifest: WriteManifest) -> None:
    """seconds 8 and "08" are the same request, so the same job."""
    a = fingerprints_by_prompt(
        write_manifest("version: 1\nshots: [{id: a, prompt: p, seconds: 8}]")
    )
    b = fingerprints_by_prompt(
        write_manifest("version: 1\nshots: [{id: a, prompt: p, seconds: '08'}]")
    )
    assert a == b


def test_fingerprint_is_stable_across_versions() -> None:
    """A known shot keeps a known fingerprint, so stored batches stay recognised."""
    shot = Shot(id="x", index=0, prompt="waves", seconds=8, aspect_ratio="16:9")
    assert fingerprint(shot, 1) == (
        "bd7221ac4ff9ae85e1192ab4c9dd145fa2195e3bfe1c303871b54f9d3e1a2022"
    )


def test_request_body_sends_local_images_as_data_uris(
    write_manifest: WriteManifest, workdir: Path
) -> None:
    """first_frame sends first_image_url; a local file's bytes travel as a data URI."""
    shot = load_manifest(write_manifest(TWO_SHOTS % ("a", "b"))).shots[1]
    body = request_body(shot)
    data = (workdir / "frames" / "s02.png").read_bytes()
    assert body == {
        "model": "omni-fast",
        "prompt": "hero",
        "seconds": "8",
        "aspect_ratio": "16:9",
        "first_image_url": "data:image/png;base64," + base64.b64encode(data).decode(),
    }


def test_request_body_maps_modes_to_fields(write_manifest: WriteManifest) -> None:
    """first_last sends first and last image; reference sends images; extra is merged."""
    path = write_manifest(
        """
        version: 1
        shots:
          - {id: fl, prompt: p, mode: first_last, images: ['https://a.test/1.png', 'https://a.test/2.png']}
          - {id: rf, prompt: p, mode: reference, images: ['https://a.test/1.png'], extra: {seed: 3}}
        """
    )
    fl, rf = (request_body(s) for s in load_manifest(path).shots)
    assert (fl["first_image_url"], fl["last_image_url"]) == (
        "https://a.test/1.png",
        "https://a.test/2.png",
    )
    assert (rf["images"], rf["seed"]) == (["https://a.test/1.png"], 3)


def test_request_body_refuses_an_image_changed_since_validation(
    write_manifest: WriteManifest, workdir: Path
) -> None:
    """Bytes that no longer match the fingerprint's hash are not sent."""
    shot = load_manifest(write_manifest(TWO_SHOTS % ("a", "b"))).shots[1]
    (workdir / "frames" / "s02.png").write_bytes(b"\x89PNG\r\n\x1a\nother")
    with pytest.raises(InputError, match="changed after the manifest was validated"):
        request_body(shot)


def test_request_body_refuses_a_vanished_image(
    write_manifest: WriteManifest, workdir: Path
) -> None:
    """A local image deleted since validation gives a clear InputError."""
    shot = load_manifest(write_manifest(TWO_SHOTS % ("a", "b"))).shots[1]
    (workdir / "frames" / "s02.png").unlink()
    with pytest.raises(InputError, match="can no longer be read"):
        request_body(shot)


def test_provenance_request_never_holds_base64(write_manifest: WriteManifest) -> None:
    """The sidecar's request names images by source and sha256 only."""
    shot = load_manifest(write_manifest(TWO_SHOTS % ("a", "b"))).shots[1]
    body = provenance_request(shot)
    assert body["first_image_url"] == {
        "source": "frames/s02.png",
        "kind": "file",
        "sha256": shot.images[0].sha256,
    }
    assert "base64" not in json.dumps(body)


texts = st.text(max_size=40)
shots = st.builds(
    Shot,
    id=st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
    index=st.integers(0, 1000),
    prompt=texts,
    mode=st.sampled_from(["text", "first_frame", "first_last", "reference"]),
    images=st.lists(
        st.builds(ImageRef, source=st.just("https://x.test/i.png"), kind=st.just("url")),
        max_size=2,
    ).map(tuple),
    seconds=st.none() | st.integers(1, 60),
    aspect_ratio=st.none() | st.sampled_from(["16:9", "9:16", "4:3"]),
    resolution=st.none() | st.sampled_from(["720p", "4k"]),
    takes=st.integers(1, 20),
    extra=st.dictionaries(st.text(max_size=5), st.integers() | texts, max_size=3),
)


@given(shot=shots, take=st.integers(1, 20), new_id=st.text(min_size=1), new_index=st.integers(0))
def test_fingerprint_ignores_id_and_position(
    shot: Shot, take: int, new_id: str, new_index: int
) -> None:
    """Any shot renamed and moved keeps its fingerprint."""
    moved = dataclasses.replace(shot, id=new_id, index=new_index, line=99)
    assert fingerprint(moved, take) == fingerprint(shot, take)


@given(shot=shots, take=st.integers(1, 20), prompt=texts)
def test_fingerprint_follows_the_prompt(shot: Shot, take: int, prompt: str) -> None:
    """Two prompts give the same fingerprint only if they are the same prompt."""
    other = dataclasses.replace(shot, prompt=prompt)
    assert (fingerprint(other, take) == fingerprint(shot, take)) == (prompt == shot.prompt)


@given(shot=shots, take=st.integers(1, 19))
def test_fingerprint_follows_the_take(shot: Shot, take: int) -> None:
    """Takes of one shot never share a fingerprint."""
    assert fingerprint(shot, take) != fingerprint(shot, take + 1)
