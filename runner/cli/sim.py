"""``sim``: serve the built-in simulator of the video API on loopback."""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.cli.common import examples, handles_errors
from runner.errors import ConfigError

if TYPE_CHECKING:
    from runner.sim import RecordedRequest, SimConfig

_RATE = click.FloatRange(0.0, 1.0)
_SECONDS = click.FloatRange(min=0.0)
_PORT = click.IntRange(0, 65535)
#: The simulator's dialects (``runner.sim.dialects.DIALECTS``), named here so that the CLI
#: starts without importing the simulator.
DIALECT_NAMES = ("gateway", "veo", "runway")


_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _rate(name: str, help_text: str) -> _Decorator:
    return click.option(name, type=_RATE, default=0.0, show_default=True, help=help_text)


@click.command(
    name="sim",
    epilog=examples(
        "shotrunner sim --job-seconds 2 --fail-rate 0.1",
        "shotrunner run my-board.yaml --api-base http://127.0.0.1:8765/v1  # another terminal",
    ),
)
@click.option(
    "--dialect",
    type=click.Choice(DIALECT_NAMES),
    default="gateway",
    show_default=True,
    help="Which API to speak: the gateway's /v1/videos, Google Veo (Gemini API) or Runway.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=_PORT, default=8765, show_default=True, help="API port (0 picks a free one)."
)
@click.option(
    "--file-port",
    type=_PORT,
    default=0,
    show_default=True,
    help="Port of the file host that video_url points to (0 picks a free one).",
)
@click.option(
    "--job-seconds",
    type=_SECONDS,
    default=5.0,
    show_default=True,
    help="How long a task takes, in seconds (with a little jitter).",
)
@_rate("--fail-rate", "Share of tasks that fail upstream (upstream_error).")
@_rate("--refuse-rate", "Share of tasks refused by a policy check (content_policy_violation).")
@_rate("--hang-rate", "Share of tasks that stay in_progress forever.")
@_rate("--lose-rate", "Share of tasks the server forgets (later polls answer not found).")
@_rate("--error-rate", "Share of API requests answered with 500, 502 or 503.")
@_rate("--rate-limit-rate", "Share of API requests answered with 429.")
@_rate("--drop-rate", "Share of creates whose connection drops after the task is made.")
@click.option(
    "--max-active",
    type=click.IntRange(min=1),
    default=None,
    help="Answer creates with 429 while this many tasks are unfinished.",
)
@click.option(
    "--url-ttl",
    type=click.FloatRange(min=0.0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Seconds a signed video_url stays valid.",
)
@click.option(
    "--token",
    default=None,
    help="Require this API key, presented as the dialect's API wants it.",
)
@click.option(
    "--clip-bytes",
    type=click.IntRange(min=0),
    default=None,
    help="Pad every clip to this many bytes (still playable).",
)
@click.option(
    "--file-rate",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    metavar="BYTES_PER_S",
    help="Serve clip bodies at about this many bytes per second (slow but moving).",
)
@click.option(
    "--stall-after",
    type=click.IntRange(min=0),
    default=None,
    metavar="BYTES",
    help="Send at most this many body bytes per file response, then go silent (a stall).",
)
@click.option(
    "--cut-after",
    type=click.IntRange(min=0),
    default=None,
    metavar="BYTES",
    help="The first file response for each task closes after this many body bytes.",
)
@click.option(
    "--expire-first-url",
    is_flag=True,
    help="The first download of each task's file answers 403, as an expired link.",
)
@click.option(
    "--deny-polls",
    type=click.Choice(["401", "403"]),
    default=None,
    metavar="STATUS",
    help="Answer every retrieve of a task with 401 or 403 (a key revoked mid-run).",
)
@click.option(
    "--create-delay",
    type=_SECONDS,
    default=0.0,
    show_default=True,
    help="Seconds to hold each create before answering it (a slow gateway).",
)
@click.option(
    "--quirks",
    is_flag=True,
    help="Answer in the API's odder forms (gateway status words, Veo inline videos, ...).",
)
@click.option("--ignore-idempotency", is_flag=True, help="Ignore Idempotency-Key headers.")
@click.option(
    "--redirect-content",
    is_flag=True,
    help="Answer /content with a redirect to the file host instead of the bytes.",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keep tasks in this SQLite file, so a restarted simulator knows them.",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Serve over TLS with this PEM certificate chain (with --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The private key of --tls-cert (PEM).",
)
@click.option("--seed", type=int, default=None, help="Seed the random draws for repeatable runs.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the base URL, no request lines.")
@handles_errors
def sim_cmd(
    quiet: bool,
    deny_polls: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    **knobs: Any,
) -> None:
    """Serve the built-in simulator of a video API until interrupted.

    The first line on stdout is the API's base URL (for --api-base): the gateway's ends in
    /v1, Veo's and Runway's are the API's origin. Then one line per
    request unless --quiet. Ctrl-C or SIGTERM stops it (exit 0).
    """
    import asyncio
    import sqlite3

    from runner.sim import SimConfig

    try:
        # A long-lived server keeps no request log: memory stays flat however long it runs.
        denied = None if deny_polls is None else int(deny_polls)
        tls = _tls_context(tls_cert, tls_key)
        config = SimConfig(**knobs, deny_polls=denied, ssl_context=tls, record=False)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    try:
        asyncio.run(_serve_until_signal(config, quiet))
    except sqlite3.Error as error:
        raise ConfigError(f"cannot use the state file {config.state_path}: {error}") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"cannot listen on {config.host}: {reason}") from None


def _tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The server's TLS context from PEM files; ``ValueError`` when they do not go together."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ValueError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as error:
        raise ValueError(f"--tls-cert, --tls-key: cannot use them: {error}") from None
    return context


async def _serve_until_signal(config: SimConfig, quiet: bool) -> None:
    import asyncio
    import signal

    from runner.sim import serve

    def ready(base_url: str) -> None:
        click.echo(base_url)
        sys.stdout.flush()

    reader_gone = False

    def log(request: RecordedRequest) -> None:
        nonlocal reader_gone
        if reader_gone:
            return
        status = "dropped" if request.status is None else str(request.status)
        try:
            click.echo(f"{request.listener} {request.method} {request.path} {status}")
        except BrokenPipeError:
            # Whoever read our stdout (``| head -1`` for the URL) is gone; keep serving.
            reader_gone = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    server = asyncio.ensure_future(serve(config, ready, None if quiet else log))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.cancel)
    try:
        await server
    except asyncio.CancelledError:
        if not server.cancelled():
            raise
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
