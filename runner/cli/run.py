"""``run`` and ``status``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from runner.cli.common import echo_err, handles_errors, out_option
from runner.errors import ConfigError, InputError, Interrupted

API_KEY_ENV = "SHOTRUNNER_API_KEY"
API_BASE_ENV = "SHOTRUNNER_API_BASE"


def _seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise click.BadParameter("must be more than 0 seconds")
    return value


@click.command(name="run")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@out_option
@click.option("--api-base", help="API base URL with its version prefix [env SHOTRUNNER_API_BASE].")
@click.option("--simulate", is_flag=True, help="Use the built-in simulator (no key needed).")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Tasks in flight at most (lowered by itself on 429).",
)
@click.option(
    "--poll-interval",
    type=float,
    default=None,
    callback=_seconds,
    help="Seconds between polls of a task, with jitter [default: 15; 0.5 with --simulate].",
)
@click.option(
    "--task-timeout",
    type=float,
    default=7200.0,
    show_default=True,
    callback=_seconds,
    help="Seconds after submission before a pending task is failed (its id is kept).",
)
@click.option("--only", "only", multiple=True, metavar="ID", help="Only this shot (repeatable).")
@click.option(
    "--force",
    "force",
    multiple=True,
    metavar="ID",
    help="Render this shot again even if done (repeatable).",
)
@click.option(
    "--retry-failed", is_flag=True, help="Retry failed jobs (asks timed-out tasks first)."
)
@click.option("--rerender-rejected", is_flag=True, help="Render rejected takes again.")
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Attempts in all per render (policy refusals are never resubmitted).",
)
@click.option(
    "--verify", is_flag=True, help="Re-hash existing clips instead of trusting size and time."
)
@click.option(
    "--max-new",
    type=click.IntRange(min=0),
    default=None,
    help="Refuse to start (exit 2) when more than N tasks would be submitted.",
)
@handles_errors
def run_cmd(
    manifest_path: str,
    out: Path | None,
    api_base: str | None,
    simulate: bool,
    concurrency: int,
    poll_interval: float | None,
    task_timeout: float,
    only: tuple[str, ...],
    force: tuple[str, ...],
    retry_failed: bool,
    rerender_rejected: bool,
    max_attempts: int,
    verify: bool,
    max_new: int | None,
) -> None:
    """Validate, submit, poll and download; a second run continues the first."""
    try:
        code = _run(
            manifest_path,
            out,
            api_base,
            simulate,
            concurrency,
            poll_interval,
            task_timeout,
            only,
            force,
            retry_failed,
            rerender_rejected,
            max_attempts,
            verify,
            max_new,
        )
    except KeyboardInterrupt:
        raise Interrupted("interrupted: run the same command again to resume") from None
    sys.exit(code)


def _run(
    manifest_path: str,
    out: Path | None,
    api_base: str | None,
    simulate: bool,
    concurrency: int,
    poll_interval: float | None,
    task_timeout: float,
    only: tuple[str, ...],
    force: tuple[str, ...],
    retry_failed: bool,
    rerender_rejected: bool,
    max_attempts: int,
    verify: bool,
    max_new: int | None,
) -> int:
    from runner.batch import DEFAULT_API_BASE, SIMULATE_POLL_INTERVAL, BatchSettings, run_batch
    from runner.engine import RunOptions
    from runner.manifest import load_manifest
    from runner.reconcile import PlanOptions
    from runner.view import make_view

    manifest = load_manifest(manifest_path, out=out)
    for warning in manifest.warnings:
        echo_err(warning.format())
    ids = {shot.id for shot in manifest.shots}
    unknown = sorted((set(only) | set(force)) - ids)
    if unknown:
        raise InputError(f"no shot with id {', '.join(unknown)} in {manifest.display_path}")
    api_key = ""
    if not simulate:
        api_key = os.environ.get(API_KEY_ENV, "")
        if not api_key.strip():
            raise ConfigError(
                f"{API_KEY_ENV} is not set: export your API key in {API_KEY_ENV} "
                "(or try --simulate)"
            )
    base = api_base or os.environ.get(API_BASE_ENV) or DEFAULT_API_BASE
    if poll_interval is None:
        poll_interval = SIMULATE_POLL_INTERVAL if simulate else 15.0
    settings = BatchSettings(
        api_base=base,
        api_key=api_key.strip(),
        simulate=simulate,
        run=RunOptions(
            concurrency=concurrency,
            poll_interval=poll_interval,
            task_timeout=task_timeout,
            max_attempts=max_attempts,
            retry_failed=retry_failed,
            verify=verify,
            max_new=max_new,
        ),
        plan=PlanOptions(
            only=frozenset(only),
            force=frozenset(force),
            retry_failed=retry_failed,
            verify=verify,
            rerender_rejected=rerender_rejected,
        ),
        argv=tuple(sys.argv[1:]),
    )
    _, code = run_batch(manifest, settings, make_view())
    return code


@click.command(name="status")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@out_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document (SPEC.md) on stdout.")
@handles_errors
def status_cmd(manifest_path: str, out: Path | None, as_json: bool) -> None:
    """Each job's state from the state database (no network)."""
    from runner.jobs import expand_jobs
    from runner.manifest import load_manifest
    from runner.plan import jobs_document
    from runner.reconcile import reconcile
    from runner.view import status_table

    manifest = load_manifest(manifest_path, out=out)
    store = None
    if (manifest.output_dir / "state.db").is_file():
        from runner.store import Store

        store = Store.open_existing(manifest.output_dir)
    try:
        planned = reconcile(expand_jobs(manifest), store)
    finally:
        if store is not None:
            store.close()
    for item in planned:
        # status reports states, not plans: a job without a render yet is pending.
        if item.render is None:
            item.state = "pending"
    if as_json:
        click.echo(json.dumps(jobs_document(manifest, planned, with_action=False), indent=2))
    else:
        click.echo(status_table(manifest, planned))
