"""The state store on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runner.store import STATE_DB, RenderRow, Store, StoreNotWritten, job_state, migrations


def test_open_applies_migrations_and_wal(store: Store, out_dir: Path) -> None:
    """Opening creates state.db in WAL mode with every table, readable by plain sqlite3."""
    conn = sqlite3.connect(out_dir / STATE_DB)
    tables = {row[0] for row in conn.execute("select name from sqlite_master where type='table'")}
    assert {"renders", "jobs", "events", "runs", "verdicts", "_sqlite_migrations"} <= tables
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_reopening_does_not_reapply_migrations(out_dir: Path) -> None:
    """A second open finds the migrations applied and keeps the data."""
    with Store.open(out_dir) as first:
        first.bind_jobs(None, [("s01", 1, "f" * 64, 1)])
    with Store.open(out_dir) as second:
        assert list(second.jobs()) == [("s01", 1)]
        applied = list(second.db.query("select name from _sqlite_migrations"))
        assert [row["name"] for row in applied] == [m.name for m in migrations._migrations]


def test_open_existing_without_database_creates_nothing(out_dir: Path) -> None:
    """Read-only opening of a batch without state.db returns None and writes no file."""
    assert Store.open_existing(out_dir) is None
    assert not out_dir.exists()


def test_open_existing_cannot_write(store: Store, out_dir: Path) -> None:
    """A store opened for reading refuses writes."""
    reader = Store.open_existing(out_dir)
    assert reader is not None
    try:
        reader.bind_jobs(None, [("s01", 1, "f" * 64, 1)])
    except StoreNotWritten as error:
        assert "readonly" in str(error)
    else:
        raise AssertionError("write through a read-only store succeeded")
    finally:
        reader.close()


def test_bind_jobs_creates_a_pending_render_and_an_event(store: Store) -> None:
    """Binding a job creates its render row (pending) and records the change as an event."""
    run_id = store.start_run(
        manifest="m.yaml", manifest_sha256="0", api_base="http://x/v1", simulated=True, argv=[]
    )
    store.bind_jobs(run_id, [("s01", 1, "a" * 64, 1)])
    render = store.renders()[("a" * 64, 1)]
    assert render.state == "pending"
    events = store.events_for_job("s01", 1)
    assert [(e["state"], e["run_id"]) for e in events] == [("bound", run_id)]


def test_bind_jobs_keeps_an_existing_render_as_it_is(store: Store) -> None:
    """A job bound to a render already on record shares it: the render row is not reset."""
    store.bind_jobs(None, [("s01", 1, "a" * 64, 1)])
    render = store.renders()[("a" * 64, 1)]
    render.state, render.task_id, render.attempt = "done", "video_1", 1
    store.update_render(None, render)
    store.bind_jobs(None, [("s02", 1, "a" * 64, 1), ("s03", 1, "a" * 64, 1)])
    again = store.renders()[("a" * 64, 1)]
    assert (again.state, again.task_id, again.attempt) == ("done", "video_1", 1)
    assert {key: job.render_key for key, job in store.jobs().items()} == {
        ("s01", 1): ("a" * 64, 1),
        ("s02", 1): ("a" * 64, 1),
        ("s03", 1): ("a" * 64, 1),
    }


def test_update_render_writes_row_and_event_together(store: Store) -> None:
    """A state change updates the row and adds an event with its detail."""
    store.bind_jobs(None, [("s01", 1, "a" * 64, 1)])
    render = store.renders()[("a" * 64, 1)]
    render.state, render.attempt = "submitting", 1
    store.update_render("r1", render, detail="attempt 1", job=("s01", 1))
    render.state, render.task_id = "queued", "video_1"
    store.update_render("r1", render, detail="video_1")
    again = store.renders().get(("a" * 64, 1))
    assert again is not None and (again.state, again.task_id) == ("queued", "video_1")
    states = [e["state"] for e in store.events_for_job("s01", 1)]
    assert states == ["bound", "submitting", "queued"]


def test_bases_in_flight_count_the_tasks_still_owed(store: Store) -> None:
    """A base owes its renders in flight and its failed ones whose task is kept (timed out, clip
    not downloaded); not a failed one without a task, nor a done one, nor an excluded one."""
    owed = {
        "a": ("running", "t-a", None, "https://x/v1"),
        "b": ("failed", "t-b", "timeout", "https://x/v1"),
        "c": ("failed", "t-c", "download", "https://y/v1"),
        "d": ("failed", "t-d", "failed", "https://x/v1"),
        "e": ("failed", None, "timeout", "https://x/v1"),
        "f": ("done", "t-f", None, "https://x/v1"),
        "g": ("queued", "t-g", None, "https://z/v1"),
    }
    store.bind_jobs(None, [(f"s-{name}", 1, name * 64, 1) for name in owed])
    renders = store.renders()
    for name, (state, task_id, error_code, base) in owed.items():
        render = renders[(name * 64, 1)]
        render.state, render.task_id, render.error_code, render.api_base = (
            state,
            task_id,
            error_code,
            base,
        )
        store.update_render(None, render)
    assert store.bases_in_flight(exclude={("g" * 64, 1)}) == {"https://x/v1": 2, "https://y/v1": 1}


def test_update_render_records_a_part_owner_in_the_same_transaction(store: Store) -> None:
    """A render's save can claim a part file for its task; a failed save claims nothing."""
    store.bind_jobs(None, [("s01", 1, "a" * 64, 1)])
    render = store.renders()[("a" * 64, 1)]
    render.state, render.task_id = "downloading", "video_1"
    store.update_render("r1", render, part_owner=("s01/take-1.mp4.part", "video_1"))
    assert store.part_owner("s01/take-1.mp4.part") == "video_1"
    store.db.execute(
        "create trigger boom before insert on events begin select raise(abort, 'x'); end"
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.update_render("r1", render, part_owner=("s02/take-1.mp4.part", "video_2"))
    assert store.part_owner("s02/take-1.mp4.part") is None


def test_failed_transaction_leaves_no_event(store: Store) -> None:
    """A state change that fails half-way writes neither the row nor the event."""
    store.bind_jobs(None, [("s01", 1, "a" * 64, 1)])
    before = list(store.events())
    render = RenderRow("a" * 64, 1, state="queued")
    store.db.execute(
        "create trigger boom before insert on events begin select raise(abort, 'x'); end"
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.update_render(None, render)
    assert store.renders()[("a" * 64, 1)].state == "pending"
    assert list(store.events()) == before


def test_idempotency_key_names_fingerprint_generation_attempt() -> None:
    """The key of an attempt is <fingerprint>-g<generation>-a<attempt>."""
    assert RenderRow("abc", 2, attempt=3).idempotency_key == "abc-g2-a3"


def test_record_delivery_marks_the_job_done(store: Store) -> None:
    """A delivered clip makes the job done; a render done but not delivered is downloading."""
    (job,) = store.bind_jobs(None, [("s01", 1, "a" * 64, 1)]).values()
    render = store.renders()[("a" * 64, 1)]
    render.state = "done"
    assert job_state(job, render) == "downloading"
    store.record_delivery(None, job, file="s01/take-1.mp4", size=10, mtime_ns=5, sha256="h")
    assert job_state(store.jobs()[("s01", 1)], render) == "done"


def test_rebinding_keeps_the_delivered_file_recorded(store: Store) -> None:
    """Pointing a job at a new render keeps the old clip on record (to move it later)."""
    (job,) = store.bind_jobs(None, [("s01", 1, "a" * 64, 1)]).values()
    store.record_delivery(None, job, file="s01/take-1.mp4", size=10, mtime_ns=5, sha256="h")
    (rebound,) = store.bind_jobs(None, [("s01", 1, "b" * 64, 1)]).values()
    assert rebound.file == "s01/take-1.mp4" and rebound.file_fingerprint == "a" * 64
    assert not rebound.delivered


def test_job_states_join_jobs_and_renders(store: Store) -> None:
    """The report's read: every job with its render's state, task and error."""
    store.bind_jobs(None, [("s01", 1, "a" * 64, 1)])
    render = store.renders()[("a" * 64, 1)]
    render.state, render.error, render.task_id = "failed", "boom", "video_9"
    store.update_render(None, render)
    (row,) = store.job_states()
    assert (row["shot"], row["state"], row["error"], row["task_id"]) == (
        "s01",
        "failed",
        "boom",
        "video_9",
    )
    assert row["possible_duplicate"] is False


def test_picking_a_take_unpicks_the_others(store: Store) -> None:
    """One picked take per shot; rejecting stores a rejection."""
    for take in (1, 2, 3):
        store.bind_jobs(None, [("s01", take, f"{take}" * 64, 1)])
    store.set_verdict("s01", 1, "picked")
    store.set_verdict("s01", 2, "picked")
    store.set_verdict("s01", 3, "rejected")
    assert store.verdicts() == {("s01", 2): "picked", ("s01", 3): "rejected"}


def test_verdict_does_not_follow_a_new_generation(store: Store) -> None:
    """A rejection applies to the render it was given on, not to the take's next render."""
    store.bind_jobs(None, [("s01", 1, "a" * 64, 1)])
    store.set_verdict("s01", 1, "rejected")
    store.bind_jobs(None, [("s01", 1, "a" * 64, 2)])
    assert store.verdicts() == {}


def test_runs_record_start_and_end(store: Store) -> None:
    """A run row holds what ran and how it ended."""
    run_id = store.start_run(
        manifest="m.yaml",
        manifest_sha256="0",
        api_base="http://x/v1",
        simulated=False,
        argv=["run", "m.yaml"],
    )
    store.finish_run(run_id, exit_code=0, summary={"done": 1})
    (run,) = store.runs()
    assert run["exit_code"] == 0 and run["ended_at"]


def test_a_verdict_given_before_m005_belongs_to_the_clip_delivered_then(out_dir: Path) -> None:
    """Migrating: an old verdict is tied to the delivered clip's render, not the job's new one."""
    import sqlite_utils

    out_dir.mkdir(parents=True)
    db = sqlite_utils.Database(out_dir / STATE_DB)
    migrations.apply(db, stop_before="m005_verdict_render")
    db["jobs"].insert(  # type: ignore[union-attr]
        {
            "shot": "s01",
            "take": 1,
            "fingerprint": "new",
            "generation": 1,
            "file": "s01/take-1.mp4",
            "file_fingerprint": "old",
            "file_generation": 1,
        }
    )
    db["verdicts"].insert(  # type: ignore[union-attr]
        {"shot": "s01", "take": 1, "verdict": "picked", "generation": 1, "at": "t"}
    )
    db.close()
    with Store.open(out_dir) as store:
        assert store.verdicts() == {}
        (row,) = store.db.query("select fingerprint, generation from verdicts")
        assert (row["fingerprint"], row["generation"]) == ("old", 1)
