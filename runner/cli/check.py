"""``validate`` and ``plan``: offline commands over manifests."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runner.cli.common import echo_err, handles_errors, out_option
from runner.errors import ExitCode

if TYPE_CHECKING:
    from runner.plan import PlanOptions

R = TypeVar("R")


@click.command(name="validate")
@click.argument("manifests", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document on stdout; the diagnostics are in it, not on stderr.",
)
@handles_errors
def validate_cmd(manifests: tuple[str, ...], as_json: bool) -> None:
    """Check manifests against the schema and the rules of the manifest language.

    Problems go to stderr as FILE:LINE:COL: error: MESSAGE (at PATH), or with --json into
    the document on stdout instead; exit 2 if any file is invalid.
    """
    from runner.providers.check import checked_manifest

    files = []
    all_valid = True
    for path in manifests:
        manifest, diagnostics = checked_manifest(path)
        if not as_json:  # the document carries them; twice would be noise
            for diagnostic in diagnostics:
                echo_err(diagnostic.format())
        valid = manifest is not None
        all_valid = all_valid and valid
        files.append(
            {
                "path": path,
                "valid": valid,
                "errors": [d.to_json() for d in diagnostics if d.severity == "error"],
                "warnings": [d.to_json() for d in diagnostics if d.severity == "warning"],
            }
        )
        if not as_json and manifest is not None:
            jobs = sum(shot.takes for shot in manifest.shots)
            click.echo(f"{path}: valid, {len(manifest.shots)} shot(s), {jobs} job(s)")
    if as_json:
        click.echo(json.dumps({"files": files}, indent=2))
    if not all_valid:
        sys.exit(int(ExitCode.BAD_INPUT))


#: The options that choose what a run does to each job; ``plan`` shows their effect.
_PLAN_OPTIONS = (
    click.option(
        "--only", "only", multiple=True, metavar="ID", help="Only this shot (repeatable)."
    ),
    click.option(
        "--force",
        "force",
        multiple=True,
        metavar="ID",
        help="Render this shot again even if done (repeatable).",
    ),
    click.option(
        "--retry-failed", is_flag=True, help="Retry failed jobs (asks timed-out tasks first)."
    ),
    click.option("--rerender-rejected", is_flag=True, help="Render rejected takes again."),
    click.option(
        "--verify", is_flag=True, help="Re-hash existing clips instead of trusting size and time."
    ),
)


def plan_options(command: Callable[..., R]) -> Callable[..., R]:
    """Add ``--only``, ``--force``, ``--retry-failed``, ``--rerender-rejected`` and ``--verify``.

    The command receives them as one ``plan: PlanOptions`` argument, so that every command
    that plans (``plan``, and ``run`` if it likes) builds it the same way.
    """

    @functools.wraps(command)
    def with_plan(
        *args: Any,
        only: tuple[str, ...],
        force: tuple[str, ...],
        retry_failed: bool,
        rerender_rejected: bool,
        verify: bool,
        **kwargs: Any,
    ) -> R:
        from runner.plan import PlanOptions

        plan = PlanOptions(
            only=frozenset(only),
            force=frozenset(force),
            retry_failed=retry_failed,
            verify=verify,
            rerender_rejected=rerender_rejected,
        )
        return command(*args, plan=plan, **kwargs)

    decorated: Callable[..., R] = with_plan
    for option in reversed(_PLAN_OPTIONS):
        decorated = option(decorated)
    return decorated


@click.command(name="plan")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=str))
@out_option
@plan_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@handles_errors
def plan_cmd(manifest_path: str, out: Path | None, plan: PlanOptions, as_json: bool) -> None:
    """Show what run with the same options would do now for each job (offline).

    Reads the batch's state database if there is one, and never writes it. Renders still in
    flight for shots edited or removed since are listed too: run collects them into
    .history/.
    """
    from runner.plan import plan_batch
    from runner.providers.check import load_checked
    from runner.view import plan_document, plan_text

    manifest = load_checked(manifest_path, out=out)
    for warning in manifest.warnings:
        echo_err(warning.format())
    planned = plan_batch(manifest, plan)
    if as_json:
        click.echo(json.dumps(plan_document(manifest, planned), indent=2))
    else:
        click.echo(plan_text(manifest, planned))
