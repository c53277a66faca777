"""``validate`` and ``plan``: offline commands over manifests."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runner.cli.common import echo_err, examples, handles_errors, out_option
from runner.errors import ExitCode
from runner.text import visible

if TYPE_CHECKING:
    from runner.plan import PlanOptions
    from runner.shotfiles import Progress

R = TypeVar("R")


@click.command(
    name="validate",
    epilog=examples(
        "shotrunner validate my-board.yaml",
        "shotrunner validate --json boards/*.yaml",
    ),
)
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
    the document on stdout instead; exit 2 if any file is invalid. Warnings (a long prompt,
    a request sent twice for the same clip, ...) are shown the same way and do not fail.
    """
    from runner.providers.check import validate_checked

    files = []
    all_valid = True
    for path in manifests:
        # A shots file of a million rows takes a while: say how far it is, on a terminal.
        with _progress(path, enabled=not as_json and sys.stderr.isatty()) as progress:
            counts, diagnostics = validate_checked(path, progress=progress)
        if not as_json:  # the document carries them; twice would be noise
            for diagnostic in diagnostics:
                echo_err(diagnostic.format())
        valid = counts is not None
        all_valid = all_valid and valid
        files.append(
            {
                "path": path,
                "valid": valid,
                "errors": [d.to_json() for d in diagnostics if d.severity == "error"],
                "warnings": [d.to_json() for d in diagnostics if d.severity == "warning"],
            }
        )
        if not as_json and counts is not None:
            click.echo(f"{visible(path)}: valid, {counts.shots} shot(s), {counts.jobs} job(s)")
    if as_json:
        click.echo(json.dumps({"files": files}, indent=2))
    if not all_valid:
        sys.exit(int(ExitCode.BAD_INPUT))


@contextlib.contextmanager
def _progress(path: str, *, enabled: bool) -> Iterator[Progress | None]:
    """A progress callback that draws a transient bar on stderr, or None when not
    ``enabled``; the bar appears only once a shots file is being read."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, TextColumn
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn(f"checking {path}"),
        BarColumn(),
        DownloadColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("rows", total=None)

    def advance(done: int, total: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=total)

    try:
        yield advance
    finally:
        bar.stop()


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


#: ``--prices FILE``: the price table (``runner.pricing``), for ``plan`` and ``run``.
prices_option = click.option(
    "--prices",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A TOML file with a [pricing] table [default: shotrunner.toml beside the manifest].",
)


@click.command(
    name="plan",
    epilog=examples(
        "shotrunner plan my-board.yaml",
        "shotrunner plan my-board.yaml --retry-failed --only s02-hero",
    ),
)
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=str))
@out_option
@plan_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--show-requests", is_flag=True, help="Print the body of each create run would send.")
@prices_option
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Attempts in all per render, for the worst-case cost.",
)
@click.option(
    "--save",
    "save",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the plan to FILE for run --plan FILE (terraform's plan -out; --out is the "
    "batch folder here).",
)
@handles_errors
def plan_cmd(
    manifest_path: str,
    out: Path | None,
    plan: PlanOptions,
    as_json: bool,
    show_requests: bool,
    prices: Path | None,
    max_attempts: int,
    save: Path | None,
) -> None:
    """Show what run with the same options would do now for each job (offline).

    Reads the batch's state database if there is one, and never writes it. Renders still in
    flight for shots edited or removed since are listed too: run collects them into
    .history/.
    """
    from runner.chainview import chain_document, order_lines
    from runner.plan import plan_batch
    from runner.pricing import price_plan
    from runner.providers.check import load_checked
    from runner.view import plan_document, plan_text, requests_text

    manifest = load_checked(manifest_path, out=out)
    for warning in manifest.warnings:
        echo_err(warning.format())
    planned = plan_batch(manifest, plan)
    price_plan(planned, manifest, prices, max_attempts)
    if save is not None:
        from runner.planfile import write_plan_file

        write_plan_file(save, manifest, planned, max_attempts)
    if as_json:
        document = plan_document(manifest, planned)
        if planned.needs:
            document["chain"] = chain_document(planned)
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(plan_text(manifest, planned))
        for line in order_lines(manifest, planned):
            click.echo(line)
        if show_requests:
            from runner.chainview import waiting_requests_text

            click.echo("")
            # The jobs that wait send theirs later in the run: shown after, as far as known.
            later = waiting_requests_text(planned)
            sends_now = any(p.action in ("submit", "retry") for p in planned.jobs)
            parts = [requests_text(planned)] if sends_now or not later else []
            click.echo("\n\n".join([*parts, later] if later else parts))
