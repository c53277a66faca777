"""End-to-end fixtures: the real CLI in a subprocess against the real simulator on loopback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

KEY = "sk-test-e2e-7f3a9c"
#: Polls this often in tests (the simulator's tasks take TEST_JOB_SECONDS).
POLL = "0.1"


@dataclass
class Batch:
    """A manifest of text shots in ``tmp_path`` and its output folder."""

    manifest: Path
    out: Path
    shots: list[str]

    def write(self, prompts: dict[str, str], takes: int = 1, seconds: int = 4) -> None:
        lines = ["version: 1", "name: e2e", "defaults:", f"  seconds: {seconds}", "shots:"]
        for shot_id, prompt in prompts.items():
            lines += [f"  - id: {shot_id}", f"    prompt: {prompt}"]
            if takes > 1:
                lines.append(f"    takes: {takes}")
        self.manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.shots = list(prompts)

    def clips(self) -> list[Path]:
        return sorted(p for p in self.out.rglob("take-*.mp4") if ".history" not in p.parts)

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.out / "state.db")
        conn.row_factory = sqlite3.Row
        return conn

    def renders(self) -> list[dict[str, Any]]:
        with self.db() as conn:
            return [dict(row) for row in conn.execute("select * from renders")]

    def status(self) -> dict[str, Any]:
        result = run_cli("status", str(self.manifest), "--json", "--out", str(self.out))
        assert result.returncode == 0, result.stderr
        document: dict[str, Any] = json.loads(result.stdout)
        return document


@pytest.fixture
def batch(tmp_path: Path) -> Batch:
    """Four text shots, one take each."""
    made = Batch(manifest=tmp_path / "batch.yaml", out=tmp_path / "out", shots=[])
    made.write({f"s{i:02d}": f"shot number {i}, waves at dusk" for i in range(1, 5)})
    return made


def cli_env(key: str | None = KEY, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOTRUNNER_")}
    env["NO_COLOR"] = "1"
    if key is not None:
        env["SHOTRUNNER_API_KEY"] = key
    env.update(extra)
    return env


#: The environment for a run whose retries wait nothing (the retry policy's test switch).
INSTANT = cli_env(SHOTRUNNER_INSTANT_RETRY="1")


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``shotrunner ARGS`` as a user runs it: a new process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_run(batch: Batch, base_url: str, *args: str) -> subprocess.Popen[str]:
    """``shotrunner run`` of the batch as a background process, its output piped, for a test
    that signals it mid-run."""
    command = [sys.executable, "-m", "runner", "run", str(batch.manifest), "--out", str(batch.out)]
    return subprocess.Popen(
        [*command, "--api-base", base_url, "--poll-interval", POLL, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )


def wait_for_line(process: subprocess.Popen[str], needle: str, timeout: float = 15) -> None:
    """Read the process's stderr (where a run's progress goes) until a line holds ``needle``;
    fail if it never comes."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if needle in line:
            return
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"never saw {needle!r}")


RunBatch = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_batch(batch: Batch) -> RunBatch:
    """``shotrunner run`` of the batch against an API base, with fast polling."""

    def run(base_url: str, *args: str, env: dict[str, str] | None = None) -> Any:
        return run_cli(
            "run",
            str(batch.manifest),
            "--out",
            str(batch.out),
            "--api-base",
            base_url,
            "--poll-interval",
            POLL,
            *args,
            env=env,
        )

    return run


def run_retrying_failed(
    run_batch: RunBatch, base_url: str, rounds: int = 3
) -> subprocess.CompletedProcess[str]:
    """Run the batch with instant retries; while a run exits 1, run it again with
    ``--retry-failed``, at most ``rounds`` more times. A create that met 5xx or no answer
    three times in a row fails its job, flagged, until it is asked for again on purpose."""
    result = run_batch(base_url, env=INSTANT)
    for _ in range(rounds):
        if result.returncode != 1:
            break
        result = run_batch(base_url, "--retry-failed", env=INSTANT)
    return result


@pytest.fixture
def sim_process(tmp_path: Path) -> Iterator[Callable[..., tuple[str, Path]]]:
    """``shotrunner sim --state FILE`` as its own process (it survives the runner's kills)."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[str, Path]:
        state = tmp_path / "sim-state.db"
        command = [sys.executable, "-m", "runner", "sim", "--port", "0", "--quiet"]
        process = subprocess.Popen(
            [*command, "--state", str(state), *args],
            stdout=subprocess.PIPE,
            text=True,
            env=cli_env(None),
        )
        started.append(process)
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), base_url
        return base_url, state

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
