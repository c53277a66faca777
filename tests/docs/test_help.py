"""``--help`` of every command: it stands alone, and its examples are command lines that
parse; shell completion works as the README says."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import click
import pytest

from runner.cli import cli

COMMANDS = [
    "validate",
    "plan",
    "run",
    "status",
    "sim",
    "report",
    "review",
    "pick",
    "reject",
    "export",
]
WITH_EXAMPLES = COMMANDS


def shotrunner(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )


def example_lines(help_text: str) -> list[str]:
    """The command lines under ``Examples:``, without their trailing comments."""
    _, found, rest = help_text.partition("Examples:\n")
    assert found, help_text
    lines = []
    for line in rest.splitlines():
        if not line.startswith("    "):
            break
        lines.append(line.split("  #")[0].strip())
    return lines


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_no_contract_outside_the_repository(command: str) -> None:
    """No ``--help`` sends the reader to SPEC.md or API.md, which are not in the repository."""
    done = shotrunner(command, "--help")
    assert done.returncode == 0, done.stderr
    assert re.search(r"\b(?:SPEC|API)\.md\b", done.stdout) is None, done.stdout


@pytest.mark.parametrize("command", WITH_EXAMPLES)
def test_help_shows_examples_that_parse(command: str) -> None:
    """One or two examples, the first of the command itself, each accepted by its parser."""
    done = shotrunner(command, "--help")
    assert done.returncode == 0, done.stderr
    lines = example_lines(done.stdout)
    assert 1 <= len(lines) <= 2
    assert lines[0].startswith(f"shotrunner {command} ")
    for line in lines:
        program, name, *args = shlex.split(line)
        assert program == "shotrunner"
        chosen = cli.commands[name]
        with chosen.make_context(name, args) as context:  # raises on an unknown option
            assert isinstance(context, click.Context)


def test_shell_completion_completes_a_command_name() -> None:
    """What the README's completion line sets up: bash asks, and the command names come back."""
    env = {**os.environ, "_SHOTRUNNER_COMPLETE": "bash_complete"}
    env.update(COMP_WORDS="shotrunner val", COMP_CWORD="1")
    done = shotrunner(env=env)
    assert (done.returncode, done.stdout.split()) == (0, ["plain,validate"])
    script = shotrunner(env={**os.environ, "_SHOTRUNNER_COMPLETE": "bash_source"})
    assert "complete -o nosort -F _shotrunner_completion shotrunner" in script.stdout


def test_run_help_names_the_key_and_base_variables() -> None:
    """``run --help`` alone tells where the key and the API base come from."""
    done = shotrunner("run", "--help")
    assert done.returncode == 0, done.stderr
    environment = done.stdout.partition("Environment:\n")[2]
    assert "SHOTRUNNER_API_KEY" in environment and "SHOTRUNNER_API_BASE" in environment
