"""Which requests go through a proxy from the environment, and what a proxy's failure means."""

from __future__ import annotations

import asyncio

import pytest

from runner.api.client import ApiClient
from runner.api.errors import TransientError
from runner.api.proxies import proxy_for
from runner.errors import ConfigError

BODY = {"model": "omni-fast", "prompt": "Ocean waves", "seconds": "4"}


@pytest.mark.parametrize(
    ("url", "env", "proxy"),
    [
        ("https://api.example.test/v1/videos", {"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
        ("https://api.example.test/v1/videos", {"https_proxy": "http://p:3128"}, "http://p:3128"),
        ("https://api.example.test/v1/videos", {"ALL_PROXY": "http://p:3128"}, "http://p:3128"),
        ("https://api.example.test/v1/videos", {}, None),
        # Plain http never goes through a proxy: the key would cross it in clear.
        ("http://api.example.test/v1/videos", {"HTTP_PROXY": "http://p:3128"}, None),
        ("http://api.example.test/v1/videos", {"HTTPS_PROXY": "http://p:3128"}, None),
        (
            "https://api.example.test/v1/videos",
            {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "example.test"},
            None,
        ),
        (
            "https://files.example.test/x.mp4",
            {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "api.example.test"},
            "http://p:3128",
        ),
    ],
)
def test_proxy_for(
    monkeypatch: pytest.MonkeyPatch, url: str, env: dict[str, str], proxy: str | None
) -> None:
    """HTTPS_PROXY (or ALL_PROXY) for https URLs unless NO_PROXY names the host; never for http."""
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert proxy_for(url) == proxy


def test_a_socks_proxy_is_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy aiohttp cannot speak (socks5) is a clear configuration error, not a hang."""
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ConfigError, match="socks5"):
        ApiClient("https://api.example.test/v1", "k")


def test_a_socks_proxy_does_not_stop_a_plain_http_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """A socks ALL_PROXY in the environment does not matter to an http API (the simulator)."""
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    assert ApiClient("http://127.0.0.1:8765/v1", "k").base_url == "http://127.0.0.1:8765/v1"


async def test_a_tunnel_the_proxy_refuses_is_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy answering 407 to CONNECT: the request never reached the API, so a create may be
    sent again without a second charge (TransientError with sent=False)."""
    seen: list[bytes] = []

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        async with ApiClient("https://api.example.test/v1", "sk-proxy-Secret") as client:
            with pytest.raises(TransientError) as caught:
                await client.create(BODY, "k")
    finally:
        server.close()
        await server.wait_closed()
    assert caught.value.sent is False
    assert seen and seen[0].startswith(b"CONNECT api.example.test:443 ")
    assert b"sk-proxy-Secret" not in seen[0]
    assert "sk-proxy-Secret" not in str(caught.value)
