"""Exit codes when several apply: the first of 130, 2, 1 wins (docs/running.md)."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli.run import run_cmd
from tests.e2e.conftest import Batch, RunBatch, run_cli, start_run, wait_for_line
from tests.plugins.sim_fixtures import StartSim


def _one_failed_job(start_sim: StartSim, batch: Batch, run_batch: RunBatch) -> None:
    refusing = start_sim(refuse_rate=1.0)
    batch.write({"s01": "a refused prompt"})
    assert run_batch(refusing.base_url).returncode == 1
    refusing.stop()
    batch.write({"s01": "a refused prompt", "s02": "a new shot"})


def test_a_refused_key_wins_over_failed_jobs(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A failed job held from before and a key the API refuses: exit 2, not 1."""
    _one_failed_job(start_sim, batch, run_batch)
    strict = start_sim(token="another-key")
    result = run_batch(strict.base_url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "SHOTRUNNER_API_KEY" in result.stderr


def test_an_interruption_wins_over_failed_jobs(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A failed job held from before and a Ctrl-C: exit 130, not 1."""
    _one_failed_job(start_sim, batch, run_batch)
    slow = start_sim(job_seconds=30.0)
    process = start_run(batch, slow.base_url)
    wait_for_line(process, " queued")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 130, stderr


def test_simulate_with_an_api_base_is_a_contradiction(batch: Batch) -> None:
    """``--simulate --api-base URL``: exit 2, nothing run."""
    result = run_cli(
        "run",
        str(batch.manifest),
        "--out",
        str(batch.out),
        "--simulate",
        "--api-base",
        "http://x/v1",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--simulate" in result.stderr and "--api-base" in result.stderr
    assert not batch.out.exists()


@pytest.mark.parametrize(
    "option",
    [
        ("--poll-interval", "nan"),
        ("--poll-interval", "inf"),
        ("--task-timeout", "nan"),
        ("--task-timeout", "-inf"),
        ("--poll-interval", "0"),
    ],
)
def test_durations_must_be_finite_positive_seconds(option: tuple[str, str], tmp_path: Path) -> None:
    """``--poll-interval nan`` (a tight loop of polls) and the like: exit 2, nothing run."""
    result = CliRunner().invoke(run_cmd, ["m.yaml", "--simulate", "--out", str(tmp_path), *option])
    assert result.exit_code == 2, result.output
    assert "seconds" in result.output


def test_an_api_never_reached_stops_early_with_exit_2(batch: Batch, run_batch: RunBatch) -> None:
    """A base whose port refuses connections: exit 2 within seconds, one line naming the base
    and the cause, the refusal shown once (not once per job), nothing recorded as sent."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    batch.write({"s01": "waves", "s02": "dunes", "s03": "gulls"})
    result = run_batch(base)
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: cannot reach the API at {base} (")
    assert "nothing was billed" in line
    lines = result.stdout.splitlines()
    assert len([line for line in lines if "not sent" in line]) == 1, result.stdout
    assert len([line for line in lines if "submitting" in line]) == 3, result.stdout
    assert {(r["state"], r["creates_sent"]) for r in batch.renders()} == {("pending", 0)}
