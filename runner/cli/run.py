"""``run`` and ``status``: options in, one call to the layer below, exit code out.

``run`` also owns the signal policy: the first SIGINT or SIGTERM asks the run to stop (no
new submissions; a create on the wire records its answer; everything is saved), a second
one leaves at once with 130. Before and after the run's loop, the first one interrupts
like Ctrl-C at any other moment.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runner.cli.check import plan_options
from runner.cli.common import echo_err, handles_errors, out_option, run_exit_code
from runner.errors import ConfigError, ExitCode, InputError, Interrupted

if TYPE_CHECKING:
    from types import FrameType

    from runner.engine import StopSwitch
    from runner.model import RunResult
    from runner.plan import PlanOptions

API_KEY_ENV = "SHOTRUNNER_API_KEY"
API_BASE_ENV = "SHOTRUNNER_API_BASE"


class Seconds(click.ParamType[float]):
    """A duration in seconds: a finite number above 0 (``nan`` would poll in a tight loop)."""

    name = "seconds"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            seconds = value
        else:
            try:
                seconds = float(str(value))
            except ValueError:
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(f"{value!r} is not a finite number of seconds above 0", param, ctx)
        return seconds


SECONDS = Seconds()


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
    type=SECONDS,
    default=None,
    help="Seconds between polls of a task, with jitter [default: 15; 0.5 with --simulate].",
)
@click.option(
    "--task-timeout",
    type=SECONDS,
    default=7200.0,
    show_default=True,
    help="Seconds after submission before a pending task is failed (its id is kept).",
)
@plan_options
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Attempts in all per render (policy refusals are never resubmitted).",
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
    plan: PlanOptions,
    max_attempts: int,
    max_new: int | None,
) -> None:
    """Validate, submit, poll and download; a second run continues the first."""
    from runner.engine import StopSwitch

    stop = StopSwitch()
    with _signals(stop):
        result = _run(
            manifest_path,
            out,
            api_base,
            simulate,
            concurrency,
            poll_interval,
            task_timeout,
            plan,
            max_attempts,
            max_new,
            stop,
        )
    if result.stopped_by is not None:
        raise result.stopped_by
    sys.exit(run_exit_code(result))


@contextlib.contextmanager
def _signals(stop: StopSwitch) -> Iterator[None]:
    """SIGINT and SIGTERM while ``run`` runs: the first stops the run (or interrupts, when no
    run is there to stop yet), a second leaves at once."""
    received = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        if received > 1:
            # Every state change is already committed, and the kernel drops the batch lock;
            # the next run resumes from the store.
            os._exit(int(ExitCode.INTERRUPTED))
        if not stop.request():
            raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, on_signal) for signum in _STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _run(
    manifest_path: str,
    out: Path | None,
    api_base: str | None,
    simulate: bool,
    concurrency: int,
    poll_interval: float | None,
    task_timeout: float,
    plan: PlanOptions,
    max_attempts: int,
    max_new: int | None,
    stop: StopSwitch,
) -> RunResult:
    try:
        from runner.batch import (
            DEFAULT_API_BASE,
            SIMULATE_POLL_INTERVAL,
            BatchSettings,
            provider_keys,
            run_batch,
        )
        from runner.engine import RunOptions
        from runner.plan import check_shot_ids
        from runner.providers.check import load_checked
        from runner.view import make_view

        if simulate and api_base:
            raise InputError(
                "--simulate and --api-base contradict each other: a simulated run uses the "
                "built-in simulator as its API; leave one out"
            )
        manifest = load_checked(manifest_path, out=out)
        for warning in manifest.warnings:
            echo_err(warning.format())
        plan = check_shot_ids(manifest, plan)
        keys = {} if simulate else provider_keys(manifest)
        if poll_interval is None:
            poll_interval = SIMULATE_POLL_INTERVAL if simulate else 15.0
        settings = BatchSettings(
            api_base=api_base or os.environ.get(API_BASE_ENV) or DEFAULT_API_BASE,
            api_key=keys.get("gateway", ""),
            provider_keys=keys,
            base_override=api_base,
            simulate=simulate,
            run=RunOptions(
                concurrency=concurrency,
                poll_interval=poll_interval,
                task_timeout=task_timeout,
                max_attempts=max_attempts,
                retry_failed=plan.retry_failed,
                verify=plan.verify,
                max_new=max_new,
            ),
            plan=plan,
            argv=tuple(sys.argv[1:]),
        )
        return run_batch(manifest, settings, make_view(), run_exit_code, stop)
    except KeyboardInterrupt:
        raise Interrupted("interrupted: run the same command again to resume") from None


def _api_key() -> str:
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise ConfigError(
            f"{API_KEY_ENV} is not set: export your API key in {API_KEY_ENV} (or try --simulate)"
        )
    return key


@click.command(name="status")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@out_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document (SPEC.md) on stdout.")
@handles_errors
def status_cmd(manifest_path: str, out: Path | None, as_json: bool) -> None:
    """Each job's state from the state database (no network)."""
    from runner.manifest import load_manifest
    from runner.view import status_text

    click.echo(status_text(load_manifest(manifest_path, out=out), as_json=as_json))
