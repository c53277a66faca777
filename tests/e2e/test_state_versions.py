"""A state database written by a newer shotrunner is refused, and left exactly as it was."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from runner.sim import RunningSim
from tests.e2e.conftest import Batch, RunBatch, run_cli


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file of the folder with its hash and modification time."""
    return {
        path.relative_to(folder).as_posix(): (
            f"{hashlib.sha256(path.read_bytes()).hexdigest()} {path.stat().st_mtime_ns}"
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _from_the_future(batch: Batch) -> None:
    """Record a migration this version does not know, as a newer shotrunner would."""
    with sqlite3.connect(batch.out / "state.db") as conn:
        conn.execute(
            "insert into _sqlite_migrations (migration_set, name, applied_at) "
            "values ('shotrunner', 'm042_renders_in_orbit', '2031-01-01 00:00:00')"
        )
        conn.execute("update renders set state = 'orbiting'")
    conn.close()


def test_run_refuses_a_database_of_a_newer_shotrunner(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """run on a state.db with an unknown migration: exit 2, the schema named, nothing sent,
    no byte of the batch folder changed (its unknown states kept)."""
    assert run_batch(sim.base_url).returncode == 0
    _from_the_future(batch)
    before = _snapshot(batch.out)
    sent = len(sim.recorder.requests)
    result = run_batch(sim.base_url)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {batch.out / 'state.db'} was written by a newer shotrunner (schema 42); "
        "upgrade, or use another --out\n"
    )
    assert len(sim.recorder.requests) == sent
    assert _snapshot(batch.out) == before
    assert {r["state"] for r in batch.renders()} == {"orbiting"}


def test_status_refuses_a_database_of_a_newer_shotrunner(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """status cannot tell what a newer version's states mean: it says so instead of
    guessing, and changes nothing."""
    assert run_batch(sim.base_url).returncode == 0
    _from_the_future(batch)
    before = _snapshot(batch.out)
    result = run_cli("status", str(batch.manifest), "--out", str(batch.out))
    assert result.returncode == 2
    assert "was written by a newer shotrunner (schema 42)" in result.stderr
    assert _snapshot(batch.out) == before
