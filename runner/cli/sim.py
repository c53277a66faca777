"""``sim``: serve the built-in simulator of the video API on loopback."""

from __future__ import annotations

import click


@click.command(name="sim")
def sim_cmd() -> None:
    """Serve the built-in simulator of the video API until interrupted."""
    raise click.ClickException("not built yet")
