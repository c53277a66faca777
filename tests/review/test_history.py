"""Each take's event history on the contact sheet: what it holds, how it reads, what it costs."""

from __future__ import annotations

import html
import re

from runner.jobs import fingerprint
from runner.report import HistoryEntry, collect, history_text, take_histories
from runner.store import RenderRow, Store
from tests.review.conftest import Batch, MakeBatch
from tests.review.pagehelpers import take_article
from tests.review.test_report import page_of

HOSTILE_DETAIL = "</pre><img src=x onerror=\"window.pwned = 'history'\"> & more"

SHARED = """\
version: 1
defaults: {seconds: 4}
shots:
  - {id: first, prompt: the same waves}
  - {id: second, prompt: the same waves}
"""


def events_of(text: str) -> list[tuple[str, str]]:
    """(state, detail) of each event line of a history, the date lines and times dropped."""
    events = []
    for line in text.splitlines():
        if re.match(r"\d\d:\d\d:\d\d ", line):
            state, _, detail = line[9:].partition(" ")
            events.append((state, detail.strip()))
    return events


def record_render(batch: Batch, shot_id: str, take: int, *steps: tuple[str, str]) -> None:
    """Bind a take to its render and record each (state, detail) as the engine does."""
    fp = fingerprint(batch.shot(shot_id), take)
    with Store.open(batch.out) as store:
        store.bind_jobs(None, [(shot_id, take, fp, 1)])
        for attempt, (state, detail) in enumerate(steps, start=1):
            render = RenderRow(fp, 1, state=state, attempt=attempt)  # type: ignore[arg-type]
            store.update_render(None, render, detail=detail, job=(shot_id, take))


def test_a_take_shows_its_history_in_a_closed_details_element(batch: Batch) -> None:
    """A done take's card holds a collapsed <details> listing its events, oldest first."""
    batch.done("s01-wide", 1)
    card = take_article(page_of(batch), "s01-wide", 1)
    details = re.search(r"<details([^>]*)><summary>(.*?)</summary><pre>(.*?)</pre>", card, re.S)
    assert details is not None
    assert "open" not in details.group(1)
    assert details.group(2) == "history (3 events)"
    states = [state for state, _ in events_of(html.unescape(details.group(3)))]
    assert states == ["bound", "done", "delivered"]


def test_history_lists_attempts_task_ids_and_failures_in_order(batch: Batch) -> None:
    """Every submit, its task id, a failure and the retry that followed are in the history."""
    record_render(
        batch,
        "s01-wide",
        1,
        ("submitting", "attempt 1"),
        ("queued", "task t-1"),
        ("failed", "upstream_error: boom"),
        ("submitting", "attempt 2"),
        ("queued", "task t-2"),
        ("done", "5394 bytes"),
    )
    with batch.store() as store:
        history = take_histories(store)[("s01-wide", 1)]
    fp = fingerprint(batch.shot("s01-wide"), 1)
    assert events_of(history_text(history)) == [
        ("bound", f"render {fp[:12]}"),
        ("submitting", "attempt 1"),
        ("queued", "task t-1"),
        ("failed", "upstream_error: boom"),
        ("submitting", "attempt 2"),
        ("queued", "task t-2"),
        ("done", "5394 bytes"),
    ]


def test_history_text_dates_once_then_aligns_times_and_states() -> None:
    """A date line where the day changes, then one 'HH:MM:SS state detail' line per event."""
    history = (
        HistoryEntry("2026-11-26 23:59:58", "submitting", "attempt 1"),
        HistoryEntry("2026-11-26 23:59:59", "queued", "task t-1"),
        HistoryEntry("2026-11-27 00:00:30", "done", ""),
        HistoryEntry(None, "file-moved", "moved"),
    )
    assert history_text(history).splitlines() == [
        "2026-11-26",
        "23:59:58 submitting  attempt 1",
        "23:59:59 queued      task t-1",
        "2026-11-27",
        "00:00:30 done",
        "         file-moved  moved",
    ]


def test_history_text_is_escaped(make_batch: MakeBatch) -> None:
    """Markup in an event's detail reaches the page as text, and cannot close the block."""
    batch = make_batch()
    record_render(batch, "s01-wide", 1, ("failed", HOSTILE_DETAIL))
    card = take_article(page_of(batch), "s01-wide", 1)
    assert html.escape(HOSTILE_DETAIL, quote=True) in card
    assert "<img" not in card
    assert card.count("</pre>") == 1


def test_a_shared_render_shows_in_the_history_of_each_take_using_it(
    make_batch: MakeBatch,
) -> None:
    """Two shots of one content share a render recorded under the first: the second's history
    has the render's states, not the first take's own delivery."""
    batch = make_batch(SHARED)
    batch.done("first", 1)
    fp = fingerprint(batch.shot("second"), 1)
    with Store.open(batch.out) as store:
        store.bind_jobs(None, [("second", 1, fp, 1)])
        histories = take_histories(store)
    assert [state for _, state, _ in histories[("second", 1)]] == ["done", "bound"]
    assert [state for _, state, _ in histories[("first", 1)]] == ["bound", "done", "delivered"]


def test_the_sheet_reads_every_event_in_one_query(batch: Batch) -> None:
    """However many takes, the events are read once, not once per take."""
    for shot, take in (("s01-wide", 1), ("s02-hero", 1), ("s02-hero", 2), ("s03-turn", 1)):
        batch.done(shot, take)
    statements: list[str] = []
    with batch.store() as store:
        store.db.conn.set_trace_callback(statements.append)
        data = collect(batch.manifest, store)
    assert sum(" from events" in s.lower() for s in statements) == 1
    assert all(t.history for s in data.shots for t in s.takes if t.status == "done")


def test_a_take_without_events_has_no_history_block(batch: Batch) -> None:
    """Before any run the page shows no empty history."""
    assert "<details" not in page_of(batch)


def test_a_render_event_recorded_for_no_job_shows_in_the_history_of_its_take(
    batch: Batch,
) -> None:
    """A render's change of state recorded without a job is in the history of each take bound
    to that render."""
    fp = fingerprint(batch.shot("s01-wide"), 1)
    with Store.open(batch.out) as store:
        store.bind_jobs(None, [("s01-wide", 1, fp, 1)])
        store.update_render(None, RenderRow(fp, 1, state="queued"), detail="task t-9")
        history = take_histories(store)[("s01-wide", 1)]
    assert events_of(history_text(history))[-1] == ("queued", "task t-9")
