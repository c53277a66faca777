"""Proxies from the environment: which requests go through one, and which never may.

``HTTPS_PROXY`` (else ``ALL_PROXY``), in either case, for https URLs whose host ``NO_PROXY``
does not name; plain http never goes through a proxy, which would read the request, key
included, in clear. Kept apart from the transport so that a run checks its setting before
anything (and without importing the HTTP stack).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from runner.errors import ConfigError


def proxies_from_environment() -> dict[str, str]:
    """``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` (either case), as urllib reads them."""
    return {
        scheme: value
        for scheme, value in urllib.request.getproxies_environment().items()
        if scheme in ("https", "all", "no") and value
    }


def check_proxy(url: str, proxies: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError when ``url`` would go through a proxy aiohttp cannot speak (socks,
    say): better said before a run than found as a run that cannot connect."""
    proxy = proxy_for(url, proxies)
    if proxy is not None and urlsplit(proxy).scheme not in ("http", "https"):
        raise ConfigError(
            f"HTTPS_PROXY / ALL_PROXY gives {urlsplit(url).hostname} a "
            f"{urlsplit(proxy).scheme or 'scheme-less'} proxy, which shotrunner cannot use: "
            "set an http:// or https:// proxy, or name the host in NO_PROXY"
        )


def proxy_for(url: str, proxies: Mapping[str, str] | None = None) -> str | None:
    """The proxy for ``url``: ``HTTPS_PROXY`` (else ``ALL_PROXY``) for an https URL whose host
    ``NO_PROXY`` does not name; never one for plain http, where a proxy would read the
    request, key included, in clear."""
    if proxies is None:
        proxies = proxies_from_environment()
    parts = urlsplit(url)
    proxy = proxies.get("https") or proxies.get("all")
    if parts.scheme != "https" or not proxy or not parts.hostname:
        return None
    # The standard library's NO_PROXY rules (suffixes, ports, "*"); typeshed does not list it.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if bypass(parts.hostname, dict(proxies)):
        return None
    return proxy
