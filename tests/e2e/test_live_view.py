"""On a terminal, ``run`` shows a live view and ends with the summary; NO_COLOR means no colour."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from runner.sim import RunningSim
from tests.e2e.conftest import POLL, Batch, cli_env
from tests.plugins.sim_fixtures import StartSim

#: Select Graphic Rendition sequences that set a colour (foreground, background, 256, RGB).
_COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _run_on_a_terminal(
    batch: Batch, base_url: str, env: dict[str, str], out: Path | None = None
) -> tuple[int, str]:
    """``shotrunner run`` with stdout and stderr on a pseudo-terminal (the live view draws on
    stderr, the summary is on stdout); returns the exit code and output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    target = str(out or batch.out)
    command = [sys.executable, "-m", "runner", "run", str(batch.manifest), "--out", target]
    process = subprocess.Popen(
        [*command, "--api-base", base_url, "--poll-interval", POLL],
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color"},
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    code = process.wait(timeout=10)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_live_view_on_a_terminal_renders_and_ends_with_the_summary(
    sim: RunningSim, batch: Batch
) -> None:
    """A TTY gets the live table (not plain lines), then the summary as the last lines."""
    code, output = _run_on_a_terminal(batch, sim.base_url, cli_env())
    assert code == 0, output
    text = _ANSI.sub("", output).replace("\r", "")
    assert "4/4 finished" in text
    assert not re.search(r"^\[ *\d+\.\ds\]", text, re.MULTILINE), "plain lines on a terminal"
    last = [line for line in text.splitlines() if line.strip()][-1]
    assert last.startswith("done: 4 job(s)"), text[-500:]
    assert "wall time" in last


def test_no_color_yields_no_colour_codes_on_a_terminal(
    start_sim: StartSim, batch: Batch, tmp_path: Path
) -> None:
    """With NO_COLOR set, the live view sends no colour sequence; without it, it does."""
    sim = start_sim(refuse_rate=1.0)
    batch.write({"s01": "waves"})
    env = cli_env()
    del env["NO_COLOR"]
    code, coloured = _run_on_a_terminal(batch, sim.base_url, env)
    assert code == 1
    assert _COLOUR.search(coloured), "no colour without NO_COLOR: the test proves nothing"
    code, plain = _run_on_a_terminal(batch, sim.base_url, cli_env(), out=tmp_path / "again")
    assert code == 1
    assert "failed" in plain
    assert not _COLOUR.search(plain), repr(_COLOUR.findall(plain)[:5])
