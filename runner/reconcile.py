"""Reconcile the manifest's jobs with the state store: what ``run`` would do for each.

Placeholder until the state store exists: every job is new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.model import Action, Job, JobState


@dataclass(frozen=True, slots=True)
class PlanOptions:
    only: frozenset[str] = frozenset()
    force: frozenset[str] = frozenset()
    retry_failed: bool = False
    verify: bool = False
    rerender_rejected: bool = False


@dataclass(slots=True)
class PlannedJob:
    job: Job
    action: Action
    state: JobState = "pending"
    generation: int = 1
    attempts: int = 0
    task_id: str | None = None
    progress: float | None = None
    file: str | None = None
    error: str | None = None
    possible_duplicate: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def reconcile(
    jobs: Sequence[Job], store: object | None = None, options: PlanOptions | None = None
) -> list[PlannedJob]:
    """Every job is new until the store exists."""
    return [PlannedJob(job=job, action="submit") for job in jobs]
