"""What every command shares: the ``--out`` option, the examples under ``--help``, and the
exit codes of README.md and docs/running.md: every command's exit code is picked here, from
an error (``exit_code_for``) or from a run's result (``run_exit_code``)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import click

from runner.errors import ExitCode, Interrupted, ManifestInvalid, ShotrunnerError
from runner.text import visible

if TYPE_CHECKING:
    from runner.model import RunResult

P = ParamSpec("P")
R = TypeVar("R")

out_option = click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Batch folder (overrides the manifest's output_dir; the state database lives there).",
)


def examples(*lines: str) -> str:
    """A command's epilog: its example command lines, shown as written under ``--help``.

    ``\b`` keeps click from rewrapping the paragraph into one line.
    """
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def exit_code_for(error: BaseException) -> int:
    """The exit code for an exception that reached the CLI (its kind's, see ``ExitCode``)."""
    if isinstance(error, ShotrunnerError):
        return int(error.exit_code)
    if isinstance(error, KeyboardInterrupt):
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.JOBS_FAILED)


def run_exit_code(result: RunResult) -> int:
    """A run's exit code: why it stopped early if it did, else 1 when a job failed, else 0."""
    if result.stopped_by is not None:
        return exit_code_for(result.stopped_by)
    return int(ExitCode.JOBS_FAILED if result.failed else ExitCode.OK)


def echo_err(message: str) -> None:
    """A message on stderr. Messages quote outside text (a manifest's image path, a server's
    answer): every control character is shown as its escape here, the one way to stderr, so
    no caller can let a sequence act on the terminal (click strips only some, only in pipes)."""
    click.echo(visible(message, keep_newlines=True), err=True)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the runner's own exceptions into a message on stderr and their exit code.

    Never a traceback for an error the runner knows about.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ManifestInvalid as error:
            for diagnostic in error.diagnostics:
                echo_err(diagnostic.format())
            sys.exit(exit_code_for(error))
        except Interrupted as error:
            # Not an error of anything: the one message of an interruption.
            echo_err(visible(error.message, keep_newlines=True))
            sys.exit(exit_code_for(error))
        except ShotrunnerError as error:
            # Messages carry outside text (a server's answer, a path): shown, never acted on.
            echo_err(f"error: {visible(error.message, keep_newlines=True)}")
            sys.exit(exit_code_for(error))

    return wrapper
