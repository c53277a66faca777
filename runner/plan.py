"""A plan or a status without side effects, and its presentation: table and JSON document.

``plan_jobs`` reconciles a manifest's jobs with its batch's state database read-only (the
database is never created; without one every job is new). ``check_shot_ids`` refuses
``--only``/``--force`` ids that name no shot, with a did-you-mean. ``plan`` and ``status``
share the table and SPEC.md's JSON document: ``plan`` shows each job's action and sums by
action, ``status`` shows states and sums by state. Knows nothing of HTTP.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from typing import Any

from runner.errors import InputError
from runner.jobs import expand_jobs
from runner.model import ACTIONS, JOB_STATES, Manifest
from runner.reconcile import PlannedJob, PlanOptions, reconcile

#: Actions that would pay for a render.
PAYING_ACTIONS = frozenset({"submit", "retry"})

_ACTION_NOTES = {
    "fetch": "will fetch again; renders only if the service lost it",
}


def plan_jobs(manifest: Manifest, options: PlanOptions | None = None) -> list[PlannedJob]:
    """What ``run`` with ``options`` would do now for each job in scope, read-only.

    Raises ``InputError`` when ``options`` name a shot the manifest lacks, and when the
    batch's state database cannot be read.
    """
    options = options or PlanOptions()
    check_shot_ids(manifest, options)
    jobs = expand_jobs(manifest)
    # sqlite-utils is imported only for a batch that has a database, so that planning a
    # new batch stays fast.
    if not (manifest.output_dir / "state.db").is_file():
        return reconcile(jobs, None, options)
    from runner.store import Store

    store = Store.open_existing(manifest.output_dir)
    try:
        return reconcile(jobs, store, options)
    finally:
        if store is not None:
            store.close()


def check_shot_ids(manifest: Manifest, options: PlanOptions) -> None:
    """Raise ``InputError`` naming each ``--only``/``--force`` id that is no shot, with a hint.

    Ids are matched exactly, as the plan selects shots; the hint offers the id written in
    another case, else the one id it begins, else the closest one.
    """
    known = [shot.id for shot in manifest.shots]
    known_set = set(known)
    problems = []
    for option, ids in (("--only", options.only), ("--force", options.force)):
        unknown = sorted(set(ids) - known_set)
        if unknown:
            named = ", ".join(f"{i!r}{_id_hint(i, known)}" for i in unknown)
            problems.append(f"{option}: no shot with id {named}")
    if problems:
        raise InputError(f"{'; '.join(problems)} in {manifest.display_path}")


def _id_hint(shot_id: str, known: Sequence[str]) -> str:
    folded = shot_id.casefold()
    same_case = [k for k in known if k.casefold() == folded]
    prefixed = [k for k in known if k.casefold().startswith(folded)]
    close = same_case or (prefixed if len(prefixed) == 1 else [])
    close = close or difflib.get_close_matches(shot_id, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def seconds_to_pay(planned: Sequence[PlannedJob]) -> int:
    """Seconds of video the jobs that would be submitted or retried would cost."""
    return sum(p.job.shot.seconds_to_pay for p in planned if p.action in PAYING_ACTIONS)


def summary(planned: Sequence[PlannedJob], *, with_action: bool) -> dict[str, int]:
    """Counts by action (plan) or by state (status), plus jobs, seconds_to_pay and duplicates."""
    words: Sequence[str] = ACTIONS if with_action else JOB_STATES
    counts = dict.fromkeys(words, 0)
    for p in planned:
        word = p.action if with_action else p.state
        counts[word] = counts.get(word, 0) + 1
    counts["jobs"] = len(planned)
    counts["possible_duplicates"] = sum(1 for p in planned if p.possible_duplicate)
    counts["seconds_to_pay"] = seconds_to_pay(planned)
    return counts


def job_entry(p: PlannedJob, *, with_action: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "shot": p.job.shot.id,
        "take": p.job.take,
        "fingerprint": p.job.fingerprint,
        "generation": p.generation,
        "state": p.state,
    }
    if with_action:
        entry["action"] = p.action
    entry.update(
        {
            "attempts": p.attempts,
            "task_id": p.task_id,
            "progress": p.progress,
            "file": p.file,
            "error": p.error,
            "possible_duplicate": p.possible_duplicate,
        }
    )
    return entry


def jobs_document(
    manifest: Manifest, planned: Sequence[PlannedJob], *, with_action: bool
) -> dict[str, Any]:
    """``{"manifest", "output_dir", "jobs": [...], "summary": {...}}``, null for no value."""
    return {
        "manifest": manifest.display_path,
        "output_dir": str(manifest.output_dir),
        "jobs": [job_entry(p, with_action=with_action) for p in planned],
        "summary": summary(planned, with_action=with_action),
    }


def display_dir(manifest: Manifest) -> str:
    """The output folder relative to the working directory when it is below it."""
    relative = os.path.relpath(manifest.output_dir)
    return str(manifest.output_dir) if relative.startswith("..") else relative


def render_table(manifest: Manifest, planned: Sequence[PlannedJob], *, with_action: bool) -> str:
    """A plain-text table, one row per job, then a summary line."""
    last = "ACTION" if with_action else "STATE"
    header = ("SHOT", "TAKE", "MODE", "SECONDS", "FINGERPRINT", last)
    rows = [header]
    for p in planned:
        shot = p.job.shot
        seconds = str(shot.seconds) if shot.seconds is not None else "-"
        word = p.action if with_action else p.state
        note = _ACTION_NOTES.get(word, "") if with_action else (p.error or "")
        rows.append(
            (
                shot.id,
                str(p.job.take),
                shot.mode,
                seconds,
                p.job.fingerprint[:12],
                f"{word} ({note})" if note else word,
            )
        )
    lines = format_columns(rows)
    lines.append("")
    lines.append(summary_line(manifest, planned, with_action=with_action))
    return "\n".join(lines)


def format_columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as lines of left-aligned columns two spaces apart; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        for row in rows
    ]


def summary_line(manifest: Manifest, planned: Sequence[PlannedJob], *, with_action: bool) -> str:
    counts = summary(planned, with_action=with_action)
    words: Sequence[str] = ACTIONS if with_action else JOB_STATES
    parts = [f"{counts[w]} {w}" for w in words if counts[w]]
    to_submit = sum(1 for p in planned if p.action in PAYING_ACTIONS)
    return (
        f"{manifest.display_path} -> {display_dir(manifest)}: {len(planned)} job(s)"
        f" ({', '.join(parts) or 'none'}); {to_submit} task(s) to submit,"
        f" {counts['seconds_to_pay']} s of video to pay for"
    )
