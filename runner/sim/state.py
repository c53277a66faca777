"""The simulator's tasks: their lifecycle by wall-clock time, and the optional SQLite file.

A task's status is computed from the time since its creation, never advanced by a timer,
so a simulator started again on the same state file carries on where the last one stopped.
Without a state file everything lives in memory; with one, each new task is one small
write (WAL, ``synchronous=NORMAL``) and the signing secret is kept so that URLs handed out
before a restart still verify.
"""

from __future__ import annotations

import heapq
import math
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

#: What a task is destined to do, drawn when it is created.
Outcome = Literal["completed", "failed", "refused", "hang", "lost"]
OUTCOMES: tuple[Outcome, ...] = ("completed", "failed", "refused", "hang", "lost")

#: Canonical statuses, plus ``gone`` for a task the server has forgotten.
Status = Literal["queued", "in_progress", "completed", "failed", "gone"]

#: The share of a job spent queued before it starts.
QUEUED_SHARE = 0.1

FAILURES: dict[Outcome, dict[str, str]] = {
    "failed": {
        "code": "upstream_error",
        "message": "The upstream provider failed to generate the video.",
    },
    "refused": {
        "code": "content_policy_violation",
        "message": "The request was rejected by the content policy (prompt flagged).",
    },
}


@dataclass(frozen=True, slots=True)
class Task:
    """A task and its destiny; its status at any moment follows from these fields."""

    id: str
    created_at: float
    duration: float
    outcome: Outcome
    model: str
    seconds: str | None = None
    #: Picks the task's dialect in quirks mode (status words, progress form, URL place).
    variant: int = 0
    idempotency_key: str | None = None

    @property
    def started_at(self) -> float:
        return self.created_at + self.duration * QUEUED_SHARE

    @property
    def finishes_at(self) -> float:
        """When the task stops counting as active (never, for a hung task)."""
        if self.outcome == "hang":
            return math.inf
        if self.outcome == "refused":
            return self.started_at
        return self.created_at + self.duration

    def phase(self, now: float) -> tuple[Status, int]:
        """The task's status and progress (0 to 100) at ``now``."""
        if now < self.started_at:
            return "queued", 0
        if now >= self.finishes_at:
            if self.outcome == "completed":
                return "completed", 100
            if self.outcome == "lost":
                return "gone", 0
            if self.outcome == "refused":
                return "failed", 0
            return "failed", 99
        running = self.duration - self.duration * QUEUED_SHARE
        share = (now - self.started_at) / running if running > 0 else 1.0
        return "in_progress", max(0, min(99, int(share * 100)))

    @property
    def error(self) -> dict[str, str] | None:
        """The error object of a task that fails."""
        return FAILURES.get(self.outcome)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    duration REAL NOT NULL,
    outcome TEXT NOT NULL,
    model TEXT NOT NULL,
    seconds TEXT,
    variant INTEGER NOT NULL,
    idempotency_key TEXT
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLUMNS = ("id", "created_at", "duration", "outcome", "model", "seconds", "variant")


class TaskStore:
    """All tasks by id and by idempotency key, in memory, mirrored to SQLite when asked.

    Used from one thread only (the server's event loop).
    """

    def __init__(self, path: Path | None = None) -> None:
        self._tasks: dict[str, Task] = {}
        self._keys: dict[str, str] = {}
        #: Finish times of tasks that may still be active; pruned lazily.
        self._pending: list[float] = []
        self._db: sqlite3.Connection | None = None
        self.secret = secrets.token_bytes(32)
        if path is not None:
            self._open(path)

    def _open(self, path: Path) -> None:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._db = db
        row = db.execute("SELECT value FROM meta WHERE name = 'secret'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta (name, value) VALUES ('secret', ?)", (self.secret.hex(),))
        else:
            self.secret = bytes.fromhex(row[0])
        query = f"SELECT {', '.join(_COLUMNS)}, idempotency_key FROM tasks ORDER BY rowid"
        for values in db.execute(query):
            self._remember(Task(*values))

    def _remember(self, task: Task) -> None:
        self._tasks[task.id] = task
        if task.idempotency_key is not None:
            self._keys.setdefault(task.idempotency_key, task.id)
        heapq.heappush(self._pending, task.finishes_at)

    def add(self, task: Task) -> None:
        """Keep a new task (and write it through to the state file)."""
        self._remember(task)
        if self._db is not None:
            row: tuple[Any, ...] = (
                task.id,
                task.created_at,
                task.duration,
                task.outcome,
                task.model,
                task.seconds,
                task.variant,
                task.idempotency_key,
            )
            self._db.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def by_key(self, key: str) -> Task | None:
        """The first task created with this idempotency key."""
        task_id = self._keys.get(key)
        return None if task_id is None else self._tasks[task_id]

    def active_count(self, now: float) -> int:
        """How many tasks are queued or in progress at ``now`` (hung tasks count forever)."""
        pending = self._pending
        while pending and pending[0] <= now:
            heapq.heappop(pending)
        return len(pending)

    def __len__(self) -> int:
        return len(self._tasks)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
