"""The providers' official SDKs pointed at the simulator: fixtures for the dialect tests.

``google-genai`` finds a video's file id only in an ``https://`` URI, so the Veo simulator
serves over TLS with a certificate from a test CA (trustme) that the SDK's client trusts.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme
from google import genai
from google.genai import types

from runner.sim import RunningSim
from tests.plugins.sim_fixtures import StartSim
from tests.plugins.waiting import wait_until

KEY = "sk-test-key"

#: A simulator of one dialect: ``start(**knobs)``.
StartDialect = Callable[..., RunningSim]


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(tls_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_tls(tls_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context


@pytest.fixture
def start_veo(start_sim: StartSim, server_tls: ssl.SSLContext) -> StartDialect:
    """Start Veo simulators over TLS that want the key ``KEY``."""

    def start(**knobs: Any) -> RunningSim:
        knobs.setdefault("token", KEY)
        return start_sim(dialect="veo", ssl_context=server_tls, **knobs)

    return start


@pytest.fixture
def start_runway(start_sim: StartSim) -> StartDialect:
    """Start Runway simulators that want the key ``KEY``."""

    def start(**knobs: Any) -> RunningSim:
        knobs.setdefault("token", KEY)
        return start_sim(dialect="runway", **knobs)

    return start


GenaiFor = Callable[[RunningSim], genai.Client]


@pytest.fixture
def genai_for(client_tls: ssl.SSLContext) -> Iterator[GenaiFor]:
    """``google-genai`` clients on a Veo simulator (closed at teardown)."""
    clients: list[genai.Client] = []

    def open_client(sim: RunningSim, key: str = KEY) -> genai.Client:
        options = types.HttpOptions(base_url=sim.base_url, client_args={"verify": client_tls})
        client = genai.Client(api_key=key, http_options=options)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()


def until_done(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 10.0) -> Any:
    """Call ``fetch`` until ``done`` holds for its answer, and return that answer; fail
    after a generous ``timeout``."""

    def attempt() -> tuple[Any] | None:
        answer = fetch()
        return (answer,) if done(answer) else None

    return wait_until(attempt, timeout, "a finished task")[0]
