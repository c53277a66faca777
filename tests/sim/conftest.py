"""Helpers for the simulator's tests: clients bound to a running simulator, polling."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from runner.sim import RunningSim
from tests.sim.sdk import client_tls, genai_for, server_tls, start_runway, start_veo, tls_ca

#: Fixtures for the dialect tests, defined in tests/sim/sdk.py.
__all__ = ["client_tls", "genai_for", "server_tls", "start_runway", "start_veo", "tls_ca"]

BODY: dict[str, Any] = {"model": "omni-fast", "prompt": "Ocean waves at golden hour"}

Connect = Callable[..., httpx.Client]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Open httpx clients on a simulator's API (closed at teardown)."""
    clients: list[httpx.Client] = []

    def open_client(sim: RunningSim, **kwargs: Any) -> httpx.Client:
        client = httpx.Client(base_url=sim.base_url, timeout=10, **kwargs)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()


def create(client: httpx.Client, key: str | None = None, **fields: Any) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/videos", json={**BODY, **fields}, headers=headers)


def poll(
    client: httpx.Client,
    task_id: str,
    until: Callable[[httpx.Response], bool],
    timeout: float = 5.0,
) -> httpx.Response:
    """Retrieve the task until ``until`` holds for the answer, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/videos/{task_id}")
        if until(response):
            return response
        assert time.monotonic() < deadline, f"gave up waiting; last answer {response.text}"
        time.sleep(0.02)


def finished(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json()["status"] in ("completed", "failed")


@pytest.fixture
def instant(start_sim: Callable[..., RunningSim]) -> RunningSim:
    """A simulator whose tasks are done at once, for tests about what follows completion."""
    return start_sim(job_seconds=0.0)
