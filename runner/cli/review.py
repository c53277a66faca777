"""The review surface: ``report``, ``pick``, ``reject``, ``export``."""

from __future__ import annotations

import click


@click.command(name="report")
def report_cmd() -> None:
    """Write the contact sheet, <output_dir>/index.html."""
    raise click.ClickException("not built yet")


@click.command(name="pick")
def pick_cmd() -> None:
    """Mark a take as the chosen one for its shot."""
    raise click.ClickException("not built yet")


@click.command(name="reject")
def reject_cmd() -> None:
    """Mark a take as rejected (``run --rerender-rejected`` renders it again)."""
    raise click.ClickException("not built yet")


@click.command(name="export")
def export_cmd() -> None:
    """Copy the chosen take of each shot, in storyboard order, with a cut list."""
    raise click.ClickException("not built yet")
