"""What every command shares: the ``--out`` option and turning errors into exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from runner.errors import ManifestInvalid, ShotrunnerError, exit_code_for

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


def echo_err(message: str) -> None:
    click.echo(message, err=True)


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
        except ShotrunnerError as error:
            echo_err(f"error: {error.message}")
            sys.exit(exit_code_for(error))

    return wrapper
