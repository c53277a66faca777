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
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from runner.cli.check import plan_options, prices_option
from runner.cli.common import echo_err, examples, handles_errors, out_option, run_exit_code
from runner.errors import ExitCode, InputError, Interrupted
from runner.text import visible

if TYPE_CHECKING:
    from types import FrameType

    from runner.engine import StopSwitch
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

_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class ByteSize(click.ParamType[int]):
    """A size in bytes, with an optional binary suffix: ``5000000``, ``512K``, ``8G`` (also
    ``8GiB``, ``8GB``: every suffix counts in 1024s)."""

    name = "size"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        match = _SIZE.match(str(value))
        if match is None or int(match.group(1)) == 0:
            self.fail(f"{value!r} is not a size above 0 (bytes, or with K, M, G, T)", param, ctx)
        return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]


BYTE_SIZE = ByteSize()


_RUN_EPILOG = f"""\b
Environment:
  {API_KEY_ENV}   the API key (not needed with --simulate); never written
                       to disk, sent only to the API base's own origin
  {API_BASE_ENV}  the API base URL when --api-base is not given
                       [default: https://octopusx.ai/v1]

\b
Examples:
  shotrunner run storyboard.yaml --simulate  # on the built-in simulator, nothing billed
  shotrunner run storyboard.yaml -q --json   # errors only; outcome and clips as JSON

Progress goes to stderr, the summary to stdout (with --json, the JSON document).
"""


@click.command(name="run", epilog=_RUN_EPILOG)
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@out_option
@click.option("--api-base", help=f"API base URL with its version prefix [env {API_BASE_ENV}].")
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
@prices_option
@click.option(
    "--max-cost",
    metavar="AMOUNT",
    default=None,
    help="Refuse a plan that costs more (exit 2); stop resubmitting once committed money "
    "would pass it.",
)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Execute exactly the plan saved with plan --save FILE; exit 2 if anything changed.",
)
@click.option(
    "--max-clip-size",
    type=BYTE_SIZE,
    default="4G",
    show_default=True,
    help="The largest clip downloaded (K, M, G suffixes); a larger one is a server fault.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors, failed jobs and the summary.")
@click.option("-v", "--verbose", is_flag=True, help="Also every retry, with its reason.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="At the end, one JSON document on stdout: the summary, each job's outcome, its clip.",
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
    prices: Path | None,
    max_cost: str | None,
    plan_file: Path | None,
    max_clip_size: int,
    quiet: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Validate, submit, poll and download; a second run continues the first."""
    from runner.api.base import check_base
    from runner.batch import (
        DEFAULT_API_BASE,
        SIMULATE_POLL_INTERVAL,
        BatchSettings,
        provider_keys,
        run_batch,
    )
    from runner.engine import RunOptions, StopSwitch
    from runner.plan import check_shot_ids
    from runner.planfile import read_plan_file
    from runner.pricing import parse_amount
    from runner.providers.check import load_checked
    from runner.view import make_view

    limit = None if max_cost is None else parse_amount(max_cost)
    saved_plan = None if plan_file is None else read_plan_file(plan_file)
    if saved_plan is not None:
        given = click.get_current_context().get_parameter_source("max_attempts")
        attempts_given = None if given is ParameterSource.DEFAULT else max_attempts
        plan, max_attempts = _saved_plan_options(saved_plan, plan, attempts_given)
    if quiet and verbose:
        raise InputError("-q and -v contradict each other: give one of them")
    if simulate and api_base:
        raise InputError(
            "--simulate and --api-base contradict each other: a simulated run uses the "
            "built-in simulator as its API; leave one out"
        )
    stop = StopSwitch()
    with _signals(stop):
        try:
            base = api_base or os.environ.get(API_BASE_ENV) or DEFAULT_API_BASE
            if not simulate:
                # Refused here (exit 2), before the batch folder or its run record is written.
                check_base(base)
            manifest = load_checked(manifest_path, out=out)
            for warning in manifest.warnings:
                echo_err(warning.format())
            plan = check_shot_ids(manifest, plan)
            keys = {} if simulate else provider_keys(manifest)
            if poll_interval is None:
                poll_interval = SIMULATE_POLL_INTERVAL if simulate else 15.0
            settings = BatchSettings(
                api_base=base,
                api_key=keys.get("gateway", ""),
                provider_keys=keys,
                base_override=api_base,
                simulate=simulate,
                run=RunOptions(
                    concurrency=concurrency,
                    poll_interval=poll_interval,
                    task_timeout=task_timeout,
                    max_attempts=max_attempts,
                    verify=plan.verify,
                    max_new=max_new,
                    max_cost=limit,
                ),
                plan=plan,
                argv=tuple(sys.argv[1:]),
                prices=prices,
                saved_plan=saved_plan,
                saved_plan_path=plan_file,
                max_clip_bytes=max_clip_size,
            )
            # With --json, stdout holds the document alone: the summary goes to stderr too.
            view = make_view(summary=sys.stderr if as_json else None, quiet=quiet, verbose=verbose)
            result = run_batch(manifest, settings, view, run_exit_code, stop)
        except KeyboardInterrupt:
            raise Interrupted("interrupted: run the same command again to resume") from None
    if as_json:
        import json

        from runner.view import run_document

        stopped = None if result.stopped_by is None else visible(str(result.stopped_by))
        document = run_document(manifest, result, run_exit_code(result), stopped)
        click.echo(json.dumps(document, indent=2))
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


def _saved_plan_options(
    saved: Any, given: PlanOptions, attempts_given: int | None
) -> tuple[PlanOptions, int]:
    """``run --plan``: the options the plan was saved with; options given too must agree
    (``attempts_given``: ``--max-attempts`` if given)."""
    from runner.plan import PlanOptions
    from runner.planfile import saved_options

    options, attempts = saved_options(saved)
    if given != PlanOptions() and given != options:
        raise InputError(
            "--plan: the saved plan carries its own --only/--force/--retry-failed/"
            "--rerender-rejected/--verify; leave them out (or save a new plan)"
        )
    if attempts_given is not None and attempts_given != attempts:
        raise InputError(
            f"--plan: the saved plan was made with --max-attempts {attempts}, its worst-case "
            f"cost with it; leave --max-attempts {attempts_given} out (or save a new plan)"
        )
    return options, attempts


@click.command(
    name="status",
    epilog=examples(
        "shotrunner status storyboard.yaml  # each job's state, verdict, task and file",
        "shotrunner status storyboard.yaml --json --out renders/night-1",
    ),
)
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@out_option
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON document on stdout (docs/running.md)."
)
@handles_errors
def status_cmd(manifest_path: str, out: Path | None, as_json: bool) -> None:
    """Each job's state from the state database (no network)."""
    from runner.manifest import load_manifest
    from runner.view import status_text

    click.echo(status_text(load_manifest(manifest_path, out=out), as_json=as_json))
