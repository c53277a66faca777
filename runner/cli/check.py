"""``validate`` and ``plan``: offline commands over manifests."""

from __future__ import annotations

import click


@click.command(name="validate")
def validate_cmd() -> None:
    """Check manifests against the schema and the rules of the manifest language."""
    raise click.ClickException("not built yet")


@click.command(name="plan")
def plan_cmd() -> None:
    """Show what ``run`` would do now for each job."""
    raise click.ClickException("not built yet")
