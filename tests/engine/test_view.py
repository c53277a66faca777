"""The plain view and the end-of-run summary."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from runner.model import Manifest, RunResult
from runner.plan import PlanSummary, make_plan
from runner.store import Store
from runner.view import (
    PlainView,
    make_view,
    plan_line,
    status_document,
    status_table,
    summary_lines,
)
from tests.engine.conftest import MakeJob


def test_plain_view_prints_one_line_per_state_change() -> None:
    """Each state change is one line naming the job, its state and the detail."""
    stream = io.StringIO()
    view = PlainView(stream)
    view.start(PlanSummary(renders={**PlanSummary().renders, "submit": 2}, seconds_to_pay=16), 2)
    view.state("s01/1", "queued", "task video_1")
    view.progress("s01/1", "running", 50.0)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("plan: 2 task(s) to submit (16 s of video)")
    assert lines[1].endswith("s01/1 queued: task video_1")
    assert len(lines) == 2


def test_summary_lists_failures_with_reasons_and_possible_duplicates() -> None:
    """The summary names failed jobs with their reasons and the possible duplicates."""
    result = RunResult(
        delivered=3,
        seconds_delivered=24,
        done=3,
        failed=[("s02/1", "refused: flagged")],
        possible_duplicates=["s03/1"],
        wall_time=4.2,
    )
    text = "\n".join(summary_lines(result))
    assert "delivered this run: 3 clip(s), 24 s of video" in text
    assert "s02/1: refused: flagged" in text
    assert "possible duplicates" in text and "s03/1" in text


def test_possible_duplicates_are_explained_honestly() -> None:
    """The summary says why a job may be billed twice: no task id came back, same key resent."""
    text = "\n".join(summary_lines(RunResult(possible_duplicates=["s03/1"])))
    assert "server error" in text and "same key" in text and "may have billed" in text


def test_a_pipe_gets_the_plain_view() -> None:
    """Output that is not a terminal gets plain lines, not the live display."""
    assert isinstance(make_view(io.StringIO()), PlainView)


def test_the_plan_line_announces_earlier_renders_to_collect() -> None:
    """Renders of edited or removed shots still in flight are named before the run starts."""
    line = plan_line(PlanSummary(earlier=2, possibly_billed=1))
    assert "; 2 earlier render(s) in flight will be collected into .history/" in line
    assert "1 earlier create(s) got no answer: not sent again, possibly billed" in line


def test_the_summary_counts_earlier_clips_collected() -> None:
    """The end-of-run summary says how many earlier clips went into .history/."""
    lines = summary_lines(
        RunResult(earlier_collected=2, possibly_billed=["s01/1 (earlier render)"])
    )
    assert any(
        line.startswith("earlier renders collected into .history/: 2 clip(s)") for line in lines
    )
    assert "  s01/1 (earlier render)" in lines


def test_status_shows_how_many_creates_a_possible_duplicate_sent(
    store: Store, make_job: MakeJob, tmp_path: Path
) -> None:
    """status names a possible duplicate with the number of creates that may be billed."""
    job = make_job()
    store.bind_jobs(None, [(job.shot.id, job.take, job.fingerprint, 1)])
    render = store.renders()[(job.fingerprint, 1)]
    render.state, render.possible_duplicate, render.creates_sent = "failed", True, 3
    store.update_render(None, render)
    manifest = Manifest(
        path=tmp_path / "m.yaml",
        display_path="m.yaml",
        name="m",
        output_dir=store.path.parent,
        sha256="0" * 64,
        shots=(job.shot,),
    )
    table = status_table(manifest, status_document(manifest, make_plan([job], store), {}))
    assert "(possible duplicate: 3 creates sent)" in table


def test_a_run_stopped_early_says_so_first_and_leaves_the_why_to_one_message() -> None:
    """An interrupted run's summary does not read like success, and does not repeat the
    interruption the CLI reports once."""
    from runner.errors import Interrupted

    stopped = RunResult(interrupted=True, stopped_by=Interrupted("interrupted: ..."))
    lines = summary_lines(stopped)
    assert lines[0].startswith("stopped early, so far done: 0 job(s)")
    assert not any("interrupted" in line for line in lines)
    assert summary_lines(RunResult())[0].startswith("done: 0 job(s)")


def test_quiet_keeps_failures_and_the_summary_and_verbose_adds_retries() -> None:
    """``-q``: no plan line, no progress, only failed jobs, and the summary (on its own
    stream); ``-v``: a line per retry, which the default view leaves out."""
    progress, summary = io.StringIO(), io.StringIO()
    quiet = PlainView(progress, summary=summary, quiet=True)
    quiet.start(PlanSummary(), 2)
    quiet.state("s01/1", "queued", "task video_1")
    quiet.retry("s01/1", "polling: HTTP 503; again in 1.0 s")
    quiet.state("s02/1", "failed", "rejected by the service: flagged")
    quiet.finish(RunResult(done=1, failed=[("s02/1", "rejected by the service: flagged")]))
    (line,) = progress.getvalue().splitlines()
    assert line.endswith("s02/1 failed: rejected by the service: flagged")
    assert summary.getvalue().startswith("done: 1 job(s)")
    plain, verbose = io.StringIO(), io.StringIO()
    PlainView(plain).retry("s01/1", "polling: HTTP 503; again in 1.0 s")
    PlainView(verbose, verbose=True).retry("s01/1", "polling: HTTP 503; again in 1.0 s")
    assert plain.getvalue() == ""
    assert verbose.getvalue().endswith("s01/1 retry: polling: HTTP 503; again in 1.0 s\n")


def test_progress_goes_to_stderr_and_the_summary_to_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The view made for a run writes its progress to stderr, its summary to stdout."""
    view = make_view()
    view.start(PlanSummary(), 0)
    view.state("s01/1", "queued", "task video_1")
    view.finish(RunResult(done=1))
    captured = capsys.readouterr()
    assert captured.err.startswith("plan: 0 task(s)") and "s01/1 queued" in captured.err
    assert captured.out.startswith("done: 1 job(s)") and "plan:" not in captured.out
