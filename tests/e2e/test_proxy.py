"""Proxies from the environment, end to end: an https API reached through a real CONNECT proxy
on loopback, NO_PROXY, and plain http never sent through a proxy (the key would cross it in
clear). The https API is the simulator behind a TLS front whose certificate comes from a test
CA (trustme), which the CLI trusts through SSL_CERT_FILE."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from tests.e2e.conftest import KEY, Batch, RunBatch, cli_env
from tests.plugins.sim_fixtures import StartSim

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


@dataclass
class Relays:
    """A loop in a thread running a TLS front for the simulator and a CONNECT proxy."""

    loop: asyncio.AbstractEventLoop
    #: ``host:port`` of each CONNECT the proxy was asked for, in order.
    tunnels: list[str] = field(default_factory=list)
    #: Request lines the proxy got that were not CONNECT (a plain http request via the proxy).
    plain: list[str] = field(default_factory=list)
    #: Every header block the proxy read, as text.
    seen: list[str] = field(default_factory=list)

    servers: list[asyncio.Server] = field(default_factory=list)
    writers: list[Writer] = field(default_factory=list)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for writer in self.writers:
            writer.close()
        for server in self.servers:
            await server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def call(self, coroutine: Callable[[], object]) -> object:
        return asyncio.run_coroutine_threadsafe(coroutine(), self.loop).result(10)  # type: ignore[arg-type]

    async def _pipe(self, reader: Reader, writer: Writer) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()

    async def _splice(self, reader: Reader, writer: Writer, port: int) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        self.writers += [writer, upstream_writer]
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def front(self, context: ssl.SSLContext, port: int) -> int:
        """A TLS server that passes the decrypted bytes on to 127.0.0.1:``port``."""

        async def handle(reader: Reader, writer: Writer) -> None:
            await self._splice(reader, writer, port)

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def proxy(self) -> int:
        """An HTTP proxy that only tunnels (CONNECT); it records what it was asked."""

        async def handle(reader: Reader, writer: Writer) -> None:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            self.seen.append(head)
            method, target, _ = head.split("\r\n", 1)[0].split(" ", 2)
            if method != "CONNECT":
                self.plain.append(f"{method} {target}")
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                writer.close()
                return
            self.tunnels.append(target)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await self._splice(reader, writer, int(target.rsplit(":", 1)[1]))

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])


@pytest.fixture
def relays() -> Iterator[Relays]:
    """The relays' loop in a thread; at the end their servers, connections and loop close."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    made = Relays(loop)
    yield made
    made.call(made.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@dataclass
class Https:
    """The simulator as an https API: its base URL, the CA bundle to trust, the proxy's port."""

    base_url: str
    ca_file: Path
    proxy_port: int


@pytest.fixture
def https_sim(start_sim: StartSim, relays: Relays, tmp_path: Path) -> Https:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    sim = start_sim()
    sim_port = int(sim.base_url.split(":")[2].split("/")[0])
    front = relays.call(lambda: relays.front(context, sim_port))
    proxy = relays.call(relays.proxy)
    assert isinstance(front, int) and isinstance(proxy, int)
    return Https(f"https://localhost:{front}/v1", ca_file, proxy)


def _env(https: Https, **extra: str) -> dict[str, str]:
    env = cli_env(SSL_CERT_FILE=str(https.ca_file), **extra)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        if name not in extra:
            env.pop(name, None)
    return env


def test_an_https_api_is_reached_through_https_proxy(
    https_sim: Https, relays: Relays, batch: Batch, run_batch: RunBatch
) -> None:
    """With HTTPS_PROXY set, creates and polls go through a CONNECT tunnel to the API's host;
    the proxy sees the host and port only, never the key."""
    proxy = f"http://127.0.0.1:{https_sim.proxy_port}"
    result = run_batch(https_sim.base_url, env=_env(https_sim, HTTPS_PROXY=proxy))
    assert result.returncode == 0, result.stderr
    assert len(batch.clips()) == 4
    port = https_sim.base_url.split(":")[2].split("/")[0]
    assert relays.tunnels and set(relays.tunnels) == {f"localhost:{port}"}
    assert not relays.plain
    assert KEY not in "".join(relays.seen)


def test_no_proxy_reaches_the_api_directly(
    https_sim: Https, relays: Relays, batch: Batch, run_batch: RunBatch
) -> None:
    """A host that NO_PROXY names is reached directly, HTTPS_PROXY or not."""
    proxy = f"http://127.0.0.1:{https_sim.proxy_port}"
    env = _env(https_sim, HTTPS_PROXY=proxy, NO_PROXY="localhost")
    result = run_batch(https_sim.base_url, env=env)
    assert result.returncode == 0, result.stderr
    assert len(batch.clips()) == 4
    assert not relays.tunnels and not relays.plain


def test_plain_http_never_goes_through_a_proxy(
    start_sim: StartSim, https_sim: Https, relays: Relays, batch: Batch, run_batch: RunBatch
) -> None:
    """HTTP_PROXY is not used: through a proxy, plain http would show it the key in clear."""
    sim = start_sim()
    proxy = f"http://127.0.0.1:{https_sim.proxy_port}"
    env = _env(https_sim, HTTP_PROXY=proxy, HTTPS_PROXY=proxy)
    result = run_batch(sim.base_url, env=env)
    assert result.returncode == 0, result.stderr
    assert len(batch.clips()) == 4
    assert not relays.tunnels and not relays.plain


def test_a_proxy_shotrunner_cannot_speak_stops_before_anything_is_sent(
    https_sim: Https, relays: Relays, batch: Batch, run_batch: RunBatch
) -> None:
    """A socks HTTPS_PROXY for the API: exit 2 naming the setting, no request anywhere."""
    env = _env(https_sim, HTTPS_PROXY="socks5://127.0.0.1:1080")
    result = run_batch(https_sim.base_url, env=env)
    assert result.returncode == 2
    assert "HTTPS_PROXY" in result.stderr and "socks5" in result.stderr
    assert "Traceback" not in result.stderr
    assert not batch.clips() and not relays.tunnels
