"""Warnings before money is spent on a clip twice, and the bounds on a prompt's length,
through the real command line (``validate``, ``plan``, ``run``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner.manifest import LONG_PROMPT_CHARS, MAX_PROMPT_CHARS
from tests.plugins.images import tiny_png


def shotrunner(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


SEEDED_TAKES = """\
version: 1
defaults:
  extra: {seed: 42}
  takes: 2
shots:
  - id: a
    prompt: waves at dusk
"""
SEEDED_WARNING = (
    "m.yaml:4:10: warning: takes: 2 with a fixed seed (extra.seed) sends 2 identical requests: "
    "the same clip, paid for 2 times; remove the seed or set takes: 1 (at defaults.takes)\n"
)


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_seed_with_several_takes_is_warned_about(tmp_path: Path, command: str) -> None:
    """``defaults.extra: {seed: 42}`` with ``takes: 2``: the same request twice, a warning."""
    (tmp_path / "m.yaml").write_text(SEEDED_TAKES)
    done = shotrunner(tmp_path, command, "m.yaml")
    assert (done.returncode, done.stderr) == (0, SEEDED_WARNING)


def test_takes_without_a_seed_are_not_warned_about(tmp_path: Path) -> None:
    """Takes without a seed differ by the service's randomness: that is what takes are for."""
    (tmp_path / "m.yaml").write_text(SEEDED_TAKES.replace("  extra: {seed: 42}\n", ""))
    done = shotrunner(tmp_path, "validate", "m.yaml")
    assert (done.returncode, done.stderr) == (0, "")


def test_a_seed_on_one_take_is_not_warned_about(tmp_path: Path) -> None:
    """A fixed seed with one take is a reproducible render, paid once."""
    (tmp_path / "m.yaml").write_text(SEEDED_TAKES.replace("takes: 2", "takes: 1"))
    done = shotrunner(tmp_path, "validate", "m.yaml")
    assert (done.returncode, done.stderr) == (0, "")


SAME_REQUEST = """\
version: 1
vars: {who: a surfer}
shots:
  - id: first
    mode: first_frame
    images: [frames/f.png]
    prompt: ${who} at dawn
  - {id: other, prompt: a surfer at noon}
  - id: again
    mode: first_frame
    images: [copy.png]
    prompt: a surfer at dawn
"""


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_two_shots_sending_the_same_request_are_warned_about(tmp_path: Path, command: str) -> None:
    """Same prompt once vars are filled in, same image bytes under another name: a warning."""
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "f.png").write_bytes(tiny_png())
    (tmp_path / "copy.png").write_bytes(tiny_png())
    (tmp_path / "m.yaml").write_text(SAME_REQUEST)
    done = shotrunner(tmp_path, command, "m.yaml")
    assert (done.returncode, done.stderr) == (
        0,
        "m.yaml:9:5: warning: shot 'again' sends the same request as shot 'first' (line 4): "
        "they share one render per take, the same clip in both folders; change its prompt or "
        "settings if they are to differ (at shots[2])\n",
    )


def test_shots_differing_in_their_image_bytes_are_not_warned_about(tmp_path: Path) -> None:
    """Another image content makes another request: no warning."""
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "f.png").write_bytes(tiny_png())
    (tmp_path / "copy.png").write_bytes(tiny_png(rgb=(1, 2, 3)))
    (tmp_path / "m.yaml").write_text(SAME_REQUEST)
    done = shotrunner(tmp_path, "validate", "m.yaml")
    assert (done.returncode, done.stderr) == (0, "")


def long_prompts(tmp_path: Path, length: int) -> None:
    (tmp_path / "m.yaml").write_text(
        f"version: 1\nvars:\n  v: {'x' * length}\nshots:\n  - id: a\n    prompt: ${{v}}\n"
    )


def test_a_long_prompt_is_warned_about(tmp_path: Path) -> None:
    """Past 2,000 characters (after vars): a warning at the prompt, and still valid."""
    long_prompts(tmp_path, LONG_PROMPT_CHARS + 1)
    done = shotrunner(tmp_path, "validate", "m.yaml")
    assert (done.returncode, done.stderr) == (
        0,
        "m.yaml:6:13: warning: the prompt is 2,001 characters long once its vars are filled "
        "in (more than 2,000); check that nothing was pasted in by mistake "
        "(at shots[0].prompt)\n",
    )
    long_prompts(tmp_path, LONG_PROMPT_CHARS)
    assert shotrunner(tmp_path, "validate", "m.yaml").stderr == ""


def test_a_prompt_past_the_cap_is_refused_and_nothing_is_sent(tmp_path: Path) -> None:
    """200,000 characters: validate and run exit 2 at the prompt; run creates no batch."""
    (tmp_path / "m.yaml").write_text(
        f"version: 1\nshots:\n  - id: a\n    prompt: {'y' * 200_000}\n"
    )
    expected = (
        "m.yaml:4:13: error: the prompt is 200,000 characters long, past the limit of 20,000 "
        "(at shots[0].prompt)\n"
    )
    validated = shotrunner(tmp_path, "validate", "--json", "m.yaml")
    assert validated.returncode == 2
    assert json.loads(validated.stdout)["files"][0]["errors"][0]["message"] == (
        "the prompt is 200,000 characters long, past the limit of 20,000"
    )
    run = shotrunner(tmp_path, "run", "m.yaml", "--simulate")
    assert (run.returncode, run.stdout, run.stderr) == (2, "", expected)
    assert not (tmp_path / "renders").exists()


def test_the_cap_is_inclusive(tmp_path: Path) -> None:
    """Exactly 20,000 characters still validates (with the long-prompt warning)."""
    (tmp_path / "m.yaml").write_text(
        f"version: 1\nshots:\n  - id: a\n    prompt: {'y' * MAX_PROMPT_CHARS}\n"
    )
    done = shotrunner(tmp_path, "validate", "m.yaml")
    assert done.returncode == 0
    assert "warning: the prompt is 20,000 characters long" in done.stderr


def test_run_shows_the_warning_before_anything_is_sent(tmp_path: Path) -> None:
    """run prints the same warning before its plan; here --max-new 0 then refuses to start."""
    (tmp_path / "m.yaml").write_text(SEEDED_TAKES)
    done = shotrunner(tmp_path, "run", "m.yaml", "--simulate", "--max-new", "0")
    assert (done.returncode, done.stderr) == (
        2,
        SEEDED_WARNING
        + "error: 2 task(s) would be submitted, more than --max-new 0; nothing was sent\n",
    )
