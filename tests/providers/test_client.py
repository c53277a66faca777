"""The API client with a provider's profile, against MockTransport: where each key goes, and
how much of an answer that may carry the clip inline (Veo's ``encodedVideo``) is read."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from runner.api import client as client_module
from runner.api.client import MAX_ANSWER_BYTES, ApiClient
from runner.api.errors import BadClip, TransientError
from runner.providers import PROFILES
from tests.api.conftest import mp4

KEY = "gm-Secret-3c4d"
BASE = "https://generativelanguage.example.test"
STORAGE = "https://storage.example.test"
NAME = "models/veo-3.1-generate-preview/operations/abc123"


def veo_client(handler: object, **caps: int) -> ApiClient:
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
    return ApiClient(BASE, KEY, transport=transport, profile=PROFILES["veo"], **caps)


def inline_answer(clip: bytes) -> bytes:
    sample = {"video": {"encodedVideo": base64.b64encode(clip).decode(), "encoding": "video/mp4"}}
    answer = {"name": NAME, "done": True, "response": {"generateVideoResponse": {}}}
    answer["response"]["generateVideoResponse"]["generatedSamples"] = [sample]  # type: ignore[index]
    return json.dumps(answer).encode()


async def test_an_inline_clip_within_the_caps_is_read_and_written(tmp_path: Path) -> None:
    clip = mp4(2 * MAX_ANSWER_BYTES)
    async with veo_client(lambda request: httpx.Response(200, content=inline_answer(clip))) as api:
        task = await api.retrieve(NAME)
        assert task.status == "completed" and task.video_bytes == clip
        done = api.save_inline(task.video_bytes, tmp_path / "take.mp4.part")
    assert done.bytes == len(clip) and (tmp_path / "take.mp4.part").read_bytes() == clip


async def test_max_clip_bytes_bounds_the_answer_that_may_carry_the_clip() -> None:
    """With ``--max-clip-size`` 64 KiB, an answer of 2 MiB is not read (a server fault, polled
    again), where the default cap reads it."""
    answer = inline_answer(mp4(3 * MAX_ANSWER_BYTES // 2))
    handler = lambda request: httpx.Response(200, content=answer)  # noqa: E731
    async with veo_client(handler, max_clip_bytes=64 * 1024) as api:
        with pytest.raises(TransientError, match="an answer over"):
            await api.retrieve(NAME)
    async with veo_client(handler) as api:
        assert (await api.retrieve(NAME)).video_bytes is not None


async def test_an_inline_clip_has_a_bound_of_its_own_below_the_clip_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The answer is held in memory whole: however large ``max_clip_bytes``, an inline clip
    over ``MAX_INLINE_CLIP_BYTES`` is never read."""
    monkeypatch.setattr(client_module, "MAX_INLINE_CLIP_BYTES", 256 * 1024)
    answer = inline_answer(mp4(MAX_ANSWER_BYTES))
    async with veo_client(lambda request: httpx.Response(200, content=answer)) as api:
        with pytest.raises(TransientError, match="an answer over"):
            await api.retrieve(NAME)


async def test_an_inline_clip_over_the_clip_cap_or_not_a_video_is_refused(tmp_path: Path) -> None:
    async with veo_client(lambda request: httpx.Response(404), max_clip_bytes=1000) as api:
        with pytest.raises(BadClip, match="over the cap"):
            api.save_inline(mp4(1001), tmp_path / "a.part")
        with pytest.raises(BadClip, match="MP4 or WebM"):
            api.save_inline(b"<html>" * 10, tmp_path / "b.part")
    assert not (tmp_path / "a.part").exists()


async def test_answers_of_a_provider_without_inline_clips_stay_within_1_mib() -> None:
    task = {"id": "t1", "status": "RUNNING", "failure": "x" * (MAX_ANSWER_BYTES + 10)}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=task))
    api = ApiClient(BASE, KEY, transport=transport, profile=PROFILES["runway"])
    async with api:
        with pytest.raises(TransientError, match="an answer over"):
            await api.retrieve("t1")


async def test_the_veo_key_goes_to_the_file_route_on_the_api_origin_and_not_past_its_redirect(
    tmp_path: Path,
) -> None:
    seen: list[httpx.Request] = []
    clip = mp4(4096)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "storage.example.test":
            return httpx.Response(200, content=clip)
        return httpx.Response(302, headers={"Location": f"{STORAGE}/clip.mp4?sig=1"})

    async with veo_client(handler) as api:
        await api.download(f"{BASE}/v1beta/files/abc123:download?alt=media", tmp_path / "c.part")
        # A video URI on any other origin never gets the key either.
        await api.download(f"{STORAGE}/v1beta/files/abc123:download", tmp_path / "d.part")
    assert [r.url.host for r in seen] == [
        "generativelanguage.example.test",
        "storage.example.test",
        "storage.example.test",
    ]
    assert seen[0].headers["x-goog-api-key"] == KEY
    for request in seen[1:]:
        assert KEY not in json.dumps(dict(request.headers)) and "key" not in str(request.url)
