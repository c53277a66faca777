"""Fixtures for the API client's tests: a client wired to a plain-function MockTransport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from runner.api.client import ApiClient

KEY = "sk-test-Secret-9f8e7d"
BASE = "https://api.example.test/v1"
FILES = "https://files.example.test"

Handler = Callable[[httpx.Request], httpx.Response]
#: The start of an MP4 file: a 24-byte ``ftyp`` box (brand isom), as ffmpeg writes it.
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def mp4(size: int) -> bytes:
    """``size`` bytes that start like an MP4 file, the rest a repeating pattern."""
    pattern = bytes(range(256)) * (size // 256 + 1)
    return (MP4_HEAD + pattern)[:size]


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[Handler], ApiClient]]:
    """Build an ``ApiClient`` on ``BASE`` with ``KEY`` whose requests go to a handler function."""
    clients: list[ApiClient] = []

    def make(handler: Handler) -> ApiClient:
        client = ApiClient(BASE, KEY, transport=httpx.MockTransport(handler))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def task_json(**fields: object) -> dict[str, object]:
    """A task object as docs/api.md shows it, with ``fields`` on top."""
    task: dict[str, object] = {
        "id": "video_abc123",
        "task_id": "video_abc123",
        "object": "video",
        "model": "omni-fast",
        "status": "queued",
        "progress": 0,
        "created_at": 1735689600,
        "video_url": "",
    }
    task.update(fields)
    return task


def answer(status: int, payload: object = None, **kwargs: object) -> Handler:
    """A handler that always gives the same answer (JSON when ``payload`` is not None)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if payload is not None:
            return httpx.Response(status, json=payload, **kwargs)  # type: ignore[arg-type]
        return httpx.Response(status, **kwargs)  # type: ignore[arg-type]

    return handler
