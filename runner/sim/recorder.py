"""What the simulator received: every request on both listeners, for tests to assert on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Listener = Literal["api", "files"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator saw it, and how it answered.

    ``status`` is None when the simulator dropped the connection without answering.
    ``task_id`` names the task a create made or replayed, or the task a request was about.
    ``created`` is true only for a create that made a new task.
    """

    listener: Listener
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    status: int | None
    task_id: str | None = None
    created: bool = False
    at: float = field(default=0.0, compare=False)


class Recorder:
    """A thread-safe log of requests: the server appends, tests read snapshots."""

    def __init__(self, keep: bool = True) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._tasks_created = 0
        self._keep = keep
        self._listeners: list[Callable[[RecordedRequest], None]] = []

    def add(self, request: RecordedRequest) -> None:
        with self._lock:
            if self._keep:
                self._requests.append(request)
            if request.created:
                self._tasks_created += 1
            listeners = list(self._listeners)
        for listener in listeners:
            listener(request)

    @property
    def listening(self) -> bool:
        """Whether anyone wants each request; if not, the server only counts creates."""
        return self._keep or bool(self._listeners)

    def count_created(self) -> None:
        """Count a new task without recording its request."""
        with self._lock:
            self._tasks_created += 1

    def subscribe(self, listener: Callable[[RecordedRequest], None]) -> None:
        """Call ``listener`` with each request from now on (in the server's thread)."""
        with self._lock:
            self._listeners.append(listener)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def creates(self) -> list[RecordedRequest]:
        """The create requests that made a new task (not replays, not refusals)."""
        return [r for r in self.requests if r.created]

    @property
    def tasks_created(self) -> int:
        """How many tasks were created, counted even when requests are not kept."""
        with self._lock:
            return self._tasks_created

    def on(self, listener: Listener) -> list[RecordedRequest]:
        """The requests that reached one listener (``"api"`` or ``"files"``)."""
        return [r for r in self.requests if r.listener == listener]

    def clear(self) -> None:
        """Forget the requests so far (the created-task count stays)."""
        with self._lock:
            self._requests.clear()
