"""A plan or a status without side effects, and its presentation: table and JSON document.

``plan_jobs`` reconciles a manifest's jobs with its batch's state database read-only (the
database is never created; without one every job is new). ``check_shot_ids`` refuses
``--only``/``--force`` ids that name no shot, with a did-you-mean, and spells the others as
the manifest does. ``plan`` and ``status`` share the table and SPEC.md's JSON document:
``plan`` shows each job's action and sums by action, ``status`` shows states and sums by
state. Both count what would be paid for per render (fingerprint and generation), since jobs
that share a fingerprint share one task. ``plan`` also lists the earlier renders still in
flight (of shots edited or removed since) that ``run`` would collect into ``.history/``.
Knows nothing of HTTP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from runner.delivery import HISTORY
from runner.errors import InputError
from runner.jobs import expand_jobs
from runner.model import ACTIONS, ASSUMED_SECONDS, JOB_STATES, Manifest
from runner.reconcile import EarlierRender, PlannedJob, PlanOptions, earlier_renders, reconcile
from runner.schema import closest
from runner.view import earlier_wording

if TYPE_CHECKING:
    from runner.store import Store

#: Actions that would pay for a render.
PAYING_ACTIONS = frozenset({"submit", "retry"})

_ACTION_NOTES = {
    "fetch": "will fetch again; renders only if the service lost it",
}

#: Marks a length the manifest leaves to the service, counted at ``ASSUMED_SECONDS``.
ASSUMED_MARK = "*"
ASSUMED_NOTE = (
    f"{ASSUMED_MARK} not set: the service's default applies; counted as {ASSUMED_SECONDS} s"
)


def plan_jobs(manifest: Manifest, options: PlanOptions | None = None) -> list[PlannedJob]:
    """What ``run`` with ``options`` would do now for each job in scope, read-only.

    Raises ``InputError`` when ``options`` name a shot the manifest lacks, and when the
    batch's state database cannot be read.
    """
    options = check_shot_ids(manifest, options or PlanOptions())
    jobs = expand_jobs(manifest)
    with _batch_store(manifest) as store:
        return reconcile(jobs, store, options, output_dir=manifest.output_dir)


def plan_batch(
    manifest: Manifest, options: PlanOptions | None = None
) -> tuple[list[PlannedJob], list[EarlierRender]]:
    """``plan_jobs``, and the earlier renders in flight that ``run`` would collect.

    Those are renders no job of the manifest points at any more (a shot edited or removed,
    fewer takes) whose tasks may be paid for: ``run`` follows them and keeps their clips in
    ``.history/``, or, without a task id, reports them as possibly billed.
    """
    options = check_shot_ids(manifest, options or PlanOptions())
    jobs = expand_jobs(manifest)
    with _batch_store(manifest) as store:
        planned = reconcile(jobs, store, options, output_dir=manifest.output_dir)
        if store is None:
            return planned, []
        keys = [(job.shot.id, job.take) for job in jobs]
        return planned, earlier_renders(store, planned, keys)


@contextlib.contextmanager
def _batch_store(manifest: Manifest) -> Iterator[Store | None]:
    """The batch's state database opened read-only, or None when it has none yet."""
    # sqlite-utils is imported only for a batch that has a database, so that planning a
    # new batch stays fast.
    if not (manifest.output_dir / "state.db").is_file():
        yield None
        return
    from runner.store import Store

    store = Store.open_existing(manifest.output_dir)
    if store is None:
        yield None
        return
    with store:
        yield store


def check_shot_ids(manifest: Manifest, options: PlanOptions) -> PlanOptions:
    """``options`` with its ``--only``/``--force`` ids spelt as the manifest spells them.

    Ids are unique ignoring case (SPEC.md), so ``--only A`` names shot ``a``; the plan then
    compares exact ids. Raises ``InputError`` naming each id that is no shot, with a hint:
    the one id it begins, else the closest one.
    """
    by_folded = {shot.id.casefold(): shot.id for shot in manifest.shots}
    problems = []
    spelt: dict[str, frozenset[str]] = {}
    for option, ids in (("--only", options.only), ("--force", options.force)):
        unknown = sorted(i for i in ids if i.casefold() not in by_folded)
        if unknown:
            named = ", ".join(f"{i!r}{_id_hint(i, by_folded)}" for i in unknown)
            problems.append(f"{option}: no shot with id {named}")
        spelt[option] = frozenset(by_folded[i.casefold()] for i in ids if i not in unknown)
    if problems:
        raise InputError(f"{'; '.join(problems)} in {manifest.display_path}")
    return dataclasses.replace(options, only=spelt["--only"], force=spelt["--force"])


def _id_hint(shot_id: str, by_folded: dict[str, str]) -> str:
    folded = shot_id.casefold()
    prefixed = [k for k in by_folded if k.startswith(folded)]
    close = prefixed[0] if len(prefixed) == 1 else closest(folded, list(by_folded))
    return f" (did you mean {by_folded[close]!r}?)" if close is not None else ""


def paying_renders(planned: Iterable[PlannedJob]) -> list[PlannedJob]:
    """One job for each render (fingerprint, generation) that would be submitted or retried.

    Jobs that share a fingerprint share one task and one clip (SPEC.md, "Identity"), so
    they are paid for once.
    """
    renders: dict[tuple[str, int], PlannedJob] = {}
    for p in planned:
        if p.action in PAYING_ACTIONS:
            renders.setdefault(p.render_key, p)
    return list(renders.values())


def seconds_to_pay(planned: Sequence[PlannedJob]) -> int:
    """Seconds of video the renders that would be submitted or retried would cost."""
    return sum(p.job.shot.seconds_to_pay for p in paying_renders(planned))


def summary(planned: Sequence[PlannedJob], *, with_action: bool) -> dict[str, int]:
    """Counts of jobs by action (plan) or by state (status); then jobs, possible duplicates,
    and what would be paid for: ``tasks_to_submit`` (one per render) and ``seconds_to_pay``."""
    words: Sequence[str] = ACTIONS if with_action else JOB_STATES
    counts = dict.fromkeys(words, 0)
    for p in planned:
        word = p.action if with_action else p.state
        counts[word] = counts.get(word, 0) + 1
    counts["jobs"] = len(planned)
    counts["possible_duplicates"] = sum(1 for p in planned if p.possible_duplicate)
    counts["tasks_to_submit"] = len(paying_renders(planned))
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
            "creates_sent": p.creates_sent,
        }
    )
    return entry


def jobs_document(
    manifest: Manifest,
    planned: Sequence[PlannedJob],
    *,
    with_action: bool,
    earlier: Sequence[EarlierRender] | None = None,
) -> dict[str, Any]:
    """``{"manifest", "output_dir", "jobs": [...], "summary": {...}}``, null for no value.

    Given ``earlier`` (``plan``), the document also lists them as ``"earlier_renders"`` and
    the summary counts those to collect and those possibly billed.
    """
    document: dict[str, Any] = {
        "manifest": manifest.display_path,
        "output_dir": str(manifest.output_dir),
        "jobs": [job_entry(p, with_action=with_action) for p in planned],
        "summary": summary(planned, with_action=with_action),
    }
    if earlier is not None:
        document["earlier_renders"] = [earlier_entry(e) for e in earlier]
        collected, billed = _earlier_counts(earlier)
        document["summary"]["earlier_to_collect"] = collected
        document["summary"]["possibly_billed"] = billed
    return document


def earlier_entry(earlier: EarlierRender) -> dict[str, Any]:
    """One earlier render as ``plan --json`` lists it: the job it was last bound to, its
    render, and what ``run`` does with it (``"collect"`` into ``.history/``, or
    ``"possibly_billed"`` for a create that got no answer)."""
    render = earlier.render
    return {
        "shot": earlier.shot,
        "take": earlier.take,
        "fingerprint": render.fingerprint,
        "generation": render.generation,
        "state": render.state,
        "action": "collect" if render.task_id is not None else "possibly_billed",
        "attempts": render.attempt,
        "task_id": render.task_id,
        "progress": render.progress,
        "history": f"{earlier.shot}/{HISTORY}/" if render.task_id is not None else None,
        "possible_duplicate": render.possible_duplicate,
        "note": earlier_note(earlier),
    }


def earlier_note(earlier: EarlierRender) -> str:
    """What ``run`` does with an earlier render, in the words of its plan line."""
    if earlier.render.task_id is None:
        return "create got no answer: not sent again, possibly billed"
    return f"in flight: will be collected into {earlier.shot}/{HISTORY}/"


def _earlier_counts(earlier: Sequence[EarlierRender]) -> tuple[int, int]:
    """How many earlier renders ``run`` would collect, and how many are possibly billed."""
    billed = sum(1 for e in earlier if e.render.task_id is None)
    return len(earlier) - billed, billed


def display_dir(manifest: Manifest) -> str:
    """The output folder relative to the working directory when it is below it."""
    relative = os.path.relpath(manifest.output_dir)
    return str(manifest.output_dir) if relative.startswith("..") else relative


def render_table(
    manifest: Manifest,
    planned: Sequence[PlannedJob],
    *,
    with_action: bool,
    earlier: Sequence[EarlierRender] = (),
) -> str:
    """A plain-text table, one row per job, then a summary line.

    A length the manifest leaves unset shows as the length it is counted at, marked, with a
    footnote under the table: the service's default may differ. Earlier renders in flight
    follow the table in one of their own, and the summary line counts them as ``run``'s does.
    """
    last = "ACTION" if with_action else "STATE"
    header = ("SHOT", "TAKE", "MODE", "SECONDS", "FINGERPRINT", last)
    rows = [header]
    for p in planned:
        shot = p.job.shot
        seconds = str(shot.seconds_to_pay) + ("" if shot.seconds is not None else ASSUMED_MARK)
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
    if any(p.job.shot.seconds is None for p in planned):
        lines.append(ASSUMED_NOTE)
    if earlier:
        lines += ["", EARLIER_HEADING, *_earlier_table(earlier)]
    lines.append("")
    lines.append(summary_line(manifest, planned, with_action=with_action) + earlier_line(earlier))
    return "\n".join(lines)


#: Above the table of earlier renders in ``plan``'s text.
EARLIER_HEADING = "Earlier renders in flight (their shots were edited or removed since):"


def _earlier_table(earlier: Sequence[EarlierRender]) -> list[str]:
    rows = [("SHOT", "TAKE", "FINGERPRINT", "TASK", "STATE")]
    for e in earlier:
        render = e.render
        rows.append(
            (
                e.shot,
                str(e.take),
                render.fingerprint[:12],
                render.task_id or "-",
                f"{render.state} ({earlier_note(e)})",
            )
        )
    return format_columns(rows)


def earlier_line(earlier: Sequence[EarlierRender]) -> str:
    """The end of the summary line for earlier renders, worded as ``run``'s plan line."""
    return earlier_wording(*_earlier_counts(earlier))


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
    return (
        f"{manifest.display_path} -> {display_dir(manifest)}: {len(planned)} job(s)"
        f" ({', '.join(parts) or 'none'}); {counts['tasks_to_submit']} task(s) to submit,"
        f" {counts['seconds_to_pay']} s of video to pay for"
    )
