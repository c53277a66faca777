"""What a run shows: a live view on a terminal, one plain line per state change elsewhere.

Both end with the same summary: done, failed with reasons, possible duplicates, seconds of
video delivered, wall time. ``NO_COLOR`` turns colour off. Memory stays bounded: the live
view keeps counts and only the jobs currently in flight.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from runner.model import IN_FLIGHT_STATES, JOB_STATES

if TYPE_CHECKING:
    from rich.console import Group

    from runner.model import Manifest
    from runner.reconcile import PlannedJob

#: Jobs listed in the live view at most (the rest are counted).
LIVE_ROWS = 12


def earlier_wording(collected: int, billed: int) -> str:
    """The end of a plan line for renders of edited or removed shots (``run`` and ``plan``)."""
    line = ""
    if collected:
        line += f"; {collected} earlier render(s) in flight will be collected into .history/"
    if billed:
        line += f"; {billed} earlier create(s) got no answer: not sent again, possibly billed"
    return line


@dataclass(slots=True)
class PlanSummary:
    """What a run is about to do, printed before anything is sent (the money guard)."""

    to_submit: int = 0
    seconds_to_submit: int = 0
    to_resume: int = 0
    to_fetch: int = 0
    done: int = 0
    held: int = 0
    #: Renders in flight that no job points at any more, collected into ``.history/``.
    earlier: int = 0
    #: Of those, creates whose answer never came: not sent again, maybe billed.
    possibly_billed: int = 0

    def line(self) -> str:
        line = (
            f"plan: {self.to_submit} task(s) to submit ({self.seconds_to_submit} s of video), "
            f"{self.to_resume} to resume, {self.to_fetch} to fetch, {self.done} done, "
            f"{self.held} failed and held"
        )
        return line + earlier_wording(self.earlier, self.possibly_billed)


@dataclass(slots=True)
class RunResult:
    """How a run ended, for the summary and the exit code."""

    delivered: int = 0
    seconds_delivered: int = 0
    done: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    possible_duplicates: list[str] = field(default_factory=list)
    interrupted: bool = False
    wall_time: float = 0.0
    creates: int = 0
    rate_limited: int = 0
    #: Clips of renders no job points at any more, kept in ``.history/`` this run.
    earlier_collected: int = 0
    #: Earlier renders whose task failed or was lost (nothing more to collect).
    earlier_lost: list[tuple[str, str]] = field(default_factory=list)
    #: Earlier creates without an answer, not sent again: the service may have billed them.
    possibly_billed: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "delivered": self.delivered,
            "seconds_delivered": self.seconds_delivered,
            "failed": len(self.failed),
            "possible_duplicates": len(self.possible_duplicates),
            "earlier_collected": self.earlier_collected,
            "possibly_billed": len(self.possibly_billed),
            "interrupted": self.interrupted,
            "wall_time": round(self.wall_time, 3),
        }


class View:
    """What the engine tells the user; ``runner.view`` provides the real ones."""

    def start(self, plan: PlanSummary, total: int) -> None:
        """The run starts; ``total`` renders will be worked on (done ones are not counted)."""

    def state(self, label: str, state: str, detail: str = "") -> None:
        """A render or job changed state."""

    def progress(self, label: str, state: str, progress: float | None) -> None:
        """A task reported progress (not a change of state)."""

    def finish(self, result: RunResult) -> None:
        """The run ended."""


def summary_lines(result: RunResult) -> list[str]:
    """The end-of-run summary, shared by both views."""
    lines = [
        f"done: {result.done} job(s); delivered this run: {result.delivered} clip(s), "
        f"{result.seconds_delivered} s of video; wall time {result.wall_time:.1f} s",
    ]
    if result.failed:
        lines.append(f"failed: {len(result.failed)}")
        lines.extend(f"  {key}: {reason}" for key, reason in result.failed)
    if result.possible_duplicates:
        lines.append(
            "possible duplicates (a create got no task id back, from a lost answer, a server "
            "error or an interrupted run, and was sent again with the same key; the service "
            f"may have billed it more than once): {len(result.possible_duplicates)}"
        )
        lines.extend(f"  {label}" for label in result.possible_duplicates)
    if result.earlier_collected:
        lines.append(
            f"earlier renders collected into .history/: {result.earlier_collected} clip(s) "
            "of shots edited or removed while their task was in flight"
        )
    if result.earlier_lost:
        lines.append(f"earlier renders that did not finish: {len(result.earlier_lost)}")
        lines.extend(f"  {label}: {reason}" for label, reason in result.earlier_lost)
    if result.possibly_billed:
        lines.append(
            "possibly billed (a create for a shot since edited or removed got no answer; "
            f"it is not sent again): {len(result.possibly_billed)}"
        )
        lines.extend(f"  {label}" for label in result.possibly_billed)
    if result.interrupted:
        lines.append("interrupted: run the same command again to resume")
    return lines


class PlainView(View):
    """One line per state change: for pipes, nohup and CI."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.started = time.monotonic()

    def _line(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:7.1f}s] {text}", file=self.stream, flush=True)

    def start(self, plan: PlanSummary, total: int) -> None:
        print(plan.line(), file=self.stream, flush=True)

    def state(self, label: str, state: str, detail: str = "") -> None:
        self._line(f"{label} {state}" + (f": {detail}" if detail else ""))

    def finish(self, result: RunResult) -> None:
        for line in summary_lines(result):
            print(line, file=self.stream, flush=True)


class LiveView(View):
    """A rich live display: counts by state, jobs in flight with progress, elapsed and ETA."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        # no-color.org: set and not empty.
        self.console = Console(no_color=bool(os.environ.get("NO_COLOR")))
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        self.started = time.monotonic()
        self.total = 0
        self.states: dict[str, str] = {}
        self.progress_of: dict[str, float | None] = {}
        self.details: dict[str, str] = {}
        self.finished = 0

    def start(self, plan: PlanSummary, total: int) -> None:
        self.console.print(plan.line())
        self.total = total
        self.live.start()
        self.live.update(self._render())

    def state(self, label: str, state: str, detail: str = "") -> None:
        if state in ("done", "failed"):
            self.finished += 1
            self.states.pop(label, None)
            self.progress_of.pop(label, None)
            self.details.pop(label, None)
            if state == "failed":
                self.console.print(f"[red]{label} failed[/red]: {detail}", markup=True)
        else:
            self.states[label] = state
            self.details[label] = detail
        self.live.update(self._render())

    def progress(self, label: str, state: str, progress: float | None) -> None:
        self.progress_of[label] = progress
        self.states[label] = state
        self.live.update(self._render())

    def finish(self, result: RunResult) -> None:
        self.live.update(self._render())
        self.live.stop()
        for line in summary_lines(result):
            self.console.print(line, markup=False, highlight=False)

    def _render(self) -> Group:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        elapsed = time.monotonic() - self.started
        counts = Counter(self.states.values())
        head = "  ".join(f"{state}: {counts[state]}" for state in JOB_STATES if counts[state])
        eta = ""
        if 0 < self.finished < self.total:
            eta = f"  ETA {elapsed / self.finished * (self.total - self.finished):.0f}s"
        title = Text(f"{self.finished}/{self.total} finished  {head}  elapsed {elapsed:.0f}s{eta}")
        table = Table(box=None, show_header=True, pad_edge=False)
        table.add_column("job")
        table.add_column("state")
        table.add_column("progress", justify="right")
        table.add_column("")
        active = [label for label, state in self.states.items() if state in IN_FLIGHT_STATES]
        for label in active[:LIVE_ROWS]:
            progress = self.progress_of.get(label)
            table.add_row(
                label,
                self.states[label],
                "" if progress is None else f"{progress:.0f}%",
                self.details.get(label, "")[:40],
            )
        if len(active) > LIVE_ROWS:
            table.add_row(f"… {len(active) - LIVE_ROWS} more", "", "", "")
        return Group(title, table) if active else Group(title)


def make_view(stream: TextIO | None = None) -> View:
    """The live view on a terminal, plain lines otherwise."""
    target = stream or sys.stdout
    if target.isatty() and os.environ.get("TERM") != "dumb":
        return LiveView()
    return PlainView(target)


def status_text(manifest: Manifest, *, as_json: bool = False) -> str:
    """``status``: each job's state from the state database (read-only), as a table or JSON."""
    import json

    from runner.plan import jobs_document, plan_jobs

    planned = plan_jobs(manifest)
    for item in planned:
        # status reports states, not plans: a job without a render yet is pending.
        if item.render is None:
            item.state = "pending"
    if as_json:
        return json.dumps(jobs_document(manifest, planned, with_action=False), indent=2)
    return status_table(manifest, planned)


def status_table(manifest: Manifest, planned: Sequence[PlannedJob]) -> str:
    """``status`` as a plain table: state, progress, task id, then the file or the error."""
    from runner.plan import format_columns, summary_line

    rows = [("SHOT", "TAKE", "STATE", "PROGRESS", "TASK", "FILE / ERROR")]
    for p in planned:
        progress = "" if p.progress is None or p.state == "done" else f"{p.progress:.0f}%"
        note = p.file or p.error or ""
        if p.possible_duplicate:
            sent = f": {p.creates_sent} creates sent" if p.creates_sent else ""
            note = f"{note} (possible duplicate{sent})".strip()
        rows.append((p.job.shot.id, str(p.job.take), p.state, progress, p.task_id or "", note))
    lines = [*format_columns(rows), "", summary_line(manifest, planned, with_action=False)]
    return "\n".join(line.rstrip() for line in lines)
