"""``run`` and ``status``."""

from __future__ import annotations

import click


@click.command(name="run")
def run_cmd() -> None:
    """Validate, submit, poll and download; a second run continues the first."""
    raise click.ClickException("not built yet")


@click.command(name="status")
def status_cmd() -> None:
    """Each job's state from the state database."""
    raise click.ClickException("not built yet")
