"""The command line: a thin layer; each command calls one function of the layer below.

Heavy libraries (httpx, aiohttp, sqlite-utils, rich) are imported inside the commands
that need them, so that ``validate`` and ``plan`` start fast.
"""

from __future__ import annotations

import click

from runner import __version__
from runner.cli import check, review, run, sim


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shotrunner")
def cli() -> None:
    """Render batches of AI video shots from YAML manifests, exactly once, resumably."""


for command in (
    check.validate_cmd,
    check.plan_cmd,
    run.run_cmd,
    run.status_cmd,
    sim.sim_cmd,
    review.report_cmd,
    review.review_cmd,
    review.pick_cmd,
    review.reject_cmd,
    review.export_cmd,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="shotrunner")
