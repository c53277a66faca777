"""The API base: which URLs may be one, checked before anything is sent.

A base is an absolute ``http://`` or ``https://`` URL with a host, and a path the API's routes
are appended to (``/videos``, ``/videos/{id}``). It may not carry a query string or a fragment:
routes appended to ``http://host/v1?token=Q`` would read ``/v1?token=Q/videos``, and a query
kept on every request is a second credential shotrunner would have to guard like the key. A
``user:password`` is dropped (the key is the credential; it is never sent or shown). Kept
apart from the client so that a command can check its base without importing the HTTP stack.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from runner.errors import ConfigError

_SCHEMES = frozenset({"http", "https"})


def check_base(url: str) -> str:
    """``url`` as the client uses it (no ``user:password``, no trailing slash); raises
    ConfigError (exit 2) for a base that is not one. Messages never repeat a query, a
    fragment or a password: any of them may be a secret."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConfigError("unusable API base: not a URL (expected http(s)://host/...)") from None
    host = parts.hostname
    shown = urlunsplit(
        (parts.scheme, _netloc(host, port) if host else "", parts.path.rstrip("/"), "", "")
    )
    if parts.scheme.lower() not in _SCHEMES or not host:
        raise ConfigError(f"unusable API base {shown!r}: expected http(s)://host/...")
    if "?" in text or "#" in text:
        raise ConfigError(
            f"unusable API base {shown!r} with a query string or fragment: a base may carry "
            "neither; give the API's path alone (the key travels as the bearer token)"
        )
    return shown


def _netloc(host: str, port: int | None) -> str:
    if ":" in host:
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"
