"""The runner's own exceptions and the one place where they become exit codes.

    ShotrunnerError            anything the runner reports to the user (exit 1 unless below)
    ├── InputError             bad manifest, bad option, bad configuration (exit 2)
    │   └── ManifestInvalid    a manifest with diagnostics; carries them
    ├── ConfigError            missing or rejected API key, unusable --api-base (exit 2)
    ├── Unreachable            no answer from the API for a long time; jobs stay pending (exit 1)
    └── Interrupted            SIGINT / SIGTERM (exit 130)

Library code raises these (or, for a run, returns the one that stopped it); only the CLI
turns them into messages and exit codes (``runner.cli.common``): ``exit_code`` names the
code the docs give each kind (docs/running.md). API failures: ``runner.api.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.diagnostics import Diagnostic


class ExitCode(IntEnum):
    """Exit codes of every command (README.md, docs/running.md)."""

    OK = 0
    JOBS_FAILED = 1
    BAD_INPUT = 2
    INTERRUPTED = 130


class ShotrunnerError(Exception):
    """An error with a user-facing message."""

    exit_code: ExitCode = ExitCode.JOBS_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(ShotrunnerError):
    """Bad input or configuration: nothing was sent."""

    exit_code = ExitCode.BAD_INPUT


class ManifestInvalid(InputError):
    """A manifest failed validation; ``diagnostics`` holds every problem found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        errors = [d for d in diagnostics if d.severity == "error"]
        super().__init__(f"{len(errors)} error(s) in manifest")
        self.diagnostics = list(diagnostics)


class ConfigError(InputError):
    """A missing or rejected API key, or an unusable setting."""


class Unreachable(ShotrunnerError):
    """The API gave no answer for a long time: the run stopped, its jobs still pending."""


class Interrupted(ShotrunnerError):
    """Stopped by a signal; running the same command again resumes."""

    exit_code = ExitCode.INTERRUPTED
