"""Fixtures for the store, plan and engine unit tests: real SQLite files, hand-made jobs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.model import Job, Shot
from runner.store import Store


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def store(out_dir: Path) -> Iterator[Store]:
    with Store.open(out_dir) as opened:
        yield opened


MakeJob = Callable[..., Job]


@pytest.fixture
def make_job() -> MakeJob:
    """A job built by hand; its fingerprint follows the prompt and take, not the shot id."""

    def make(shot_id: str = "s01", take: int = 1, prompt: str = "waves", seconds: int = 4) -> Job:
        shot = Shot(id=shot_id, index=0, prompt=prompt, seconds=seconds)
        fingerprint = hashlib.sha256(f"{prompt}|{seconds}|{take}".encode()).hexdigest()
        return Job(shot=shot, take=take, fingerprint=fingerprint)

    return make
