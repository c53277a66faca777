"""The state store: ``<output_dir>/state.db``, the single source of truth of a batch.

Tables (SQLite through sqlite-utils, migrations applied when the store opens, WAL):

- ``renders``: one row per render identity (fingerprint, generation): its state, the
  attempt in progress, the task id, progress, error, the possible-duplicate flag, the
  creates sent, the API base its task was submitted to, and the clip's hash and size once
  downloaded. Jobs that share a fingerprint share a render.
- ``jobs``: one row per (shot, take): which render it points at, and the clip delivered
  into its folder (path, size, modification time, hash, which render it came from).
- ``events``: every state change, with time, run id, job, render and detail.
- ``runs``: one row per ``run``: when, what, against which API base, and its outcome.
- ``verdicts``: the review's picks and rejections of takes.
- ``parts``: which task writes each ``<file>.part`` (by path), so only that task resumes it.
- ``requests``: the request body each fingerprint was submitted with (images by source and
  sha256), so that a later plan can say why an edited shot renders again.

Every state change is one transaction together with its event row, so a crash (even
``kill -9``) leaves the store at a state boundary. No secret is ever stored. The store
knows SQLite and nothing of HTTP or manifests.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import sqlite_utils
from sqlite_utils.db import Table

from runner.errors import InputError, NotWritten
from runner.model import IN_FLIGHT_STATES, KEPT_TASK_CODES, JobState

STATE_DB = "state.db"
#: The API base recorded for renders of the in-process simulator (its port changes each run).
SIMULATOR_BASE = "simulator"

RenderKey = tuple[str, int]
JobKey = tuple[str, int]
Verdict = Literal["picked", "rejected"]

migrations = sqlite_utils.Migrations("shotrunner")


class StoreNotWritten(NotWritten):
    """SQLite could not write ``state.db`` (a full disk, an I/O error, a lock held too long):
    one line naming the file and the cause (exit 1). The transaction was rolled back, so
    the store stays at the state boundary before it, and the next run continues from there."""

    def __init__(self, path: Path, error: sqlite3.Error) -> None:
        cause = str(error)
        if cause == "database or disk is full":
            cause = "no space left on the device (SQLite: database or disk is full)"
        super().__init__(f"cannot write {path}: {cause}")
        self.path = path


@migrations()
def m001_create_tables(db: sqlite_utils.Database) -> None:
    """The first schema: renders, jobs, events, runs, verdicts."""
    _table(db, "renders").create(
        {
            "fingerprint": str,
            "generation": int,
            "state": str,
            "attempt": int,
            "task_id": str,
            "progress": float,
            "error": str,
            "error_code": str,
            "possible_duplicate": int,
            "submitted_at": str,
            "completed_at": str,
            "downloaded_at": str,
            "sha256": str,
            "bytes": int,
            "updated_at": str,
        },
        pk=("fingerprint", "generation"),
        not_null={"state", "attempt", "possible_duplicate"},
        defaults={"attempt": 0, "possible_duplicate": 0, "state": "pending"},
    )
    _table(db, "jobs").create(
        {
            "shot": str,
            "take": int,
            "fingerprint": str,
            "generation": int,
            "file": str,
            "file_fingerprint": str,
            "file_generation": int,
            "file_size": int,
            "file_mtime_ns": int,
            "file_sha256": str,
            "delivered_at": str,
            "updated_at": str,
        },
        pk=("shot", "take"),
        not_null={"fingerprint", "generation"},
    )
    _table(db, "jobs").create_index(["fingerprint", "generation"])
    _table(db, "runs").create(
        {
            "id": str,
            "started_at": str,
            "ended_at": str,
            "manifest": str,
            "manifest_sha256": str,
            "api_base": str,
            "simulated": int,
            "argv": str,
            "exit_code": int,
            "summary": str,
        },
        pk="id",
    )
    _table(db, "events").create(
        {
            "id": int,
            "at": str,
            "run_id": str,
            "shot": str,
            "take": int,
            "fingerprint": str,
            "generation": int,
            "state": str,
            "detail": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    _table(db, "events").create_index(["fingerprint", "generation"])
    _table(db, "events").create_index(["shot", "take"])
    _table(db, "verdicts").create(
        {"shot": str, "take": int, "verdict": str, "generation": int, "at": str},
        pk=("shot", "take"),
    )


@migrations()
def m002_render_api_base(db: sqlite_utils.Database) -> None:
    """The API base each render was submitted to, so a run against another base cannot take
    its tasks for lost. Renders submitted before: the base of the run that last sent them."""
    _table(db, "renders").add_column("api_base", str)
    db.execute(
        """
        update renders set api_base = (
            select case when r.simulated then 'simulator' else r.api_base end
            from events e join runs r on r.id = e.run_id
            where e.fingerprint = renders.fingerprint and e.generation = renders.generation
              and e.state = 'submitting'
            order by e.id desc limit 1)
        where state != 'pending'
        """
    )


@migrations()
def m003_render_creates_sent(db: sqlite_utils.Database) -> None:
    """Creates sent per render, and under its current key: resends after lost answers are
    capped, and a possible duplicate says how many creates may have been billed."""
    _table(db, "renders").add_column("creates_sent", int, not_null_default=0)
    _table(db, "renders").add_column("key_sends", int, not_null_default=0)


@migrations()
def m004_part_owners(db: sqlite_utils.Database) -> None:
    """Which task wrote each part file, so a part is resumed only by the task that wrote it
    (a stale part of an edited shot's earlier task would otherwise prefix the new clip)."""
    _table(db, "parts").create({"path": str, "task_id": str, "at": str}, pk="path")


@migrations()
def m005_verdict_render(db: sqlite_utils.Database) -> None:
    """A verdict belongs to the render it was given to (fingerprint and generation): an edited
    shot's new take is not picked or rejected by the old one's verdict. Verdicts given before:
    the render of the clip in the job's folder then (else the job's render)."""
    _table(db, "verdicts").add_column("fingerprint", str)
    db.execute(
        """
        update verdicts set
            fingerprint = (select coalesce(j.file_fingerprint, j.fingerprint) from jobs j
                           where j.shot = verdicts.shot and j.take = verdicts.take),
            generation = coalesce(
                (select case when j.file_fingerprint is not null then j.file_generation
                             else j.generation end
                 from jobs j where j.shot = verdicts.shot and j.take = verdicts.take),
                generation)
        """
    )


@migrations()
def m006_requests(db: sqlite_utils.Database) -> None:
    """The request each fingerprint renders, as ``plan`` shows it (images by source and
    sha256, never base64): a later plan says what an edit changed."""
    _table(db, "requests").create({"fingerprint": str, "request": str, "at": str}, pk="fingerprint")


@migrations()
def m007_render_provider(db: sqlite_utils.Database) -> None:
    """The provider each render goes to (null: the gateway, as every render before), and the
    price the provider reports: ``provider_estimated_cost`` at create, ``provider_cost`` when
    the task ends, both in ``provider_cost_unit`` (Runway: credits)."""
    renders = _table(db, "renders")
    renders.add_column("provider", str)
    renders.add_column("provider_estimated_cost", float)
    renders.add_column("provider_cost", float)
    renders.add_column("provider_cost_unit", str)


def _schema_number(name: str) -> int:
    """The number of a migration named ``mNNN_...`` (0 for another name)."""
    digits = name[1:4]
    return int(digits) if name.startswith("m") and digits.isdigit() else 0


def _connect_read_only(path: Path, *, immutable: bool) -> sqlite_utils.Database:
    """A read-only connection (``mode=ro``; ``immutable=1`` reads the file as it is, with no
    locking and no shared-memory file)."""
    flags = "mode=ro&immutable=1" if immutable else "mode=ro"
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?{flags}", uri=True)
    conn.execute("PRAGMA busy_timeout=5000")
    return sqlite_utils.Database(conn, execute_plugins=False)


def _wal_of(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _has_wal(path: Path) -> bool:
    """Whether transactions may wait in the WAL file (a writer is open, or was killed)."""
    try:
        return _wal_of(path).stat().st_size > 0
    except OSError:
        return False


def _open_for_reading(path: Path, *, writable: bool) -> sqlite_utils.Database:
    """The reading connection: ``mode=ro``, which sees a writer's transactions as they land.

    In a folder this process cannot write, SQLite cannot create the shared-memory file
    ``mode=ro`` needs: with no WAL to read (the last writer closed cleanly) the database file
    is all there is, read with ``immutable=1``; with one, ``mode=ro`` works where ``-shm`` is
    there already, else the database file alone is read, as the last resort.
    """
    if writable or _has_wal(path):
        db = _connect_read_only(path, immutable=False)
        if writable:
            return db
        try:
            db.execute("select 1 from sqlite_master limit 1").fetchall()
            return db
        except sqlite3.OperationalError:
            db.close()
    return _connect_read_only(path, immutable=True)


def _check_known(path: Path) -> None:
    """Refuse a database with migrations this version does not know: a newer shotrunner
    wrote it, and its states could mean what this version cannot tell.

    Nothing is written to find out: with no WAL file (the last writer closed cleanly) the
    database file is the whole of it and is read as it is (``immutable=1``), so SQLite
    creates no ``-wal`` or ``-shm`` beside it.
    """
    probe = _open_for_reading(path, writable=False)
    try:
        applied = [migration.name for migration in migrations.applied(probe)]
    finally:
        probe.close()
    # Every migration this version registers: what a database without any has pending.
    known = {migration.name for migration in migrations.pending(sqlite_utils.Database(memory=True))}
    unknown = [name for name in applied if name not in known]
    if not unknown:
        return
    schema = max((_schema_number(name) for name in applied), default=0) or len(applied)
    raise InputError(
        f"{path} was written by a newer shotrunner (schema {schema}); upgrade, or use another --out"
    )


def _table(db: sqlite_utils.Database, name: str) -> Table:
    return cast(Table, db[name])


def now_iso() -> str:
    """The current time as ISO 8601 UTC with microseconds, the store's one time format."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def parse_iso(value: str | None) -> float | None:
    """Seconds since the epoch for a time written by ``now_iso`` (None stays None)."""
    return datetime.fromisoformat(value).timestamp() if value else None


@dataclass(slots=True)
class RenderRow:
    """One render: the work and money behind a (fingerprint, generation)."""

    fingerprint: str
    generation: int
    state: JobState = "pending"
    attempt: int = 0
    task_id: str | None = None
    progress: float | None = None
    error: str | None = None
    error_code: str | None = None
    possible_duplicate: bool = False
    submitted_at: str | None = None
    completed_at: str | None = None
    downloaded_at: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    updated_at: str | None = None
    #: The API base (no credentials) its task was submitted to; ``SIMULATOR_BASE`` for
    #: ``--simulate``.
    api_base: str | None = None
    #: Creates sent that may have created a task (refusals and unsent ones not counted).
    creates_sent: int = 0
    #: Of those, the ones sent under the current key (attempt).
    key_sends: int = 0
    #: The provider its task was created at (None: the gateway).
    provider: str | None = None
    #: The price the provider reported for its task: estimated at create, and as charged
    #: when it ended, in ``provider_cost_unit`` (Runway: credits). None: not reported.
    provider_estimated_cost: float | None = None
    provider_cost: float | None = None
    provider_cost_unit: str | None = None

    @property
    def asks_task_first(self) -> bool:
        """A failed render whose task is kept (timed out, or its clip not downloaded):
        retried, its task is asked first, and only a lost or failed task is submitted again."""
        return (
            self.state == "failed"
            and self.task_id is not None
            and (self.error_code in KEPT_TASK_CODES)
        )

    @property
    def key(self) -> RenderKey:
        return (self.fingerprint, self.generation)

    @property
    def idempotency_key(self) -> str:
        """``<fingerprint>-g<generation>-a<attempt>`` of the attempt in progress."""
        return f"{self.fingerprint}-g{self.generation}-a{self.attempt}"


@dataclass(slots=True)
class JobRow:
    """One (shot, take): the render it points at and the clip delivered into its folder."""

    shot: str
    take: int
    fingerprint: str
    generation: int
    file: str | None = None
    file_fingerprint: str | None = None
    file_generation: int | None = None
    file_size: int | None = None
    file_mtime_ns: int | None = None
    file_sha256: str | None = None
    delivered_at: str | None = None
    updated_at: str | None = None

    @property
    def key(self) -> JobKey:
        return (self.shot, self.take)

    @property
    def render_key(self) -> RenderKey:
        return (self.fingerprint, self.generation)

    @property
    def delivered(self) -> bool:
        """Whether the clip of the render it points at has been written into its folder."""
        return (
            self.file is not None
            and self.file_fingerprint == self.fingerprint
            and self.file_generation == self.generation
        )


_RENDER_FIELDS = tuple(f.name for f in fields(RenderRow))
_JOB_FIELDS = tuple(f.name for f in fields(JobRow))


def _upsert_sql(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """One prepared statement per write: sqlite-utils' ``upsert`` reads the schema each time,
    about a dozen statements for each of the several writes a job makes."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (
        f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' for _ in columns)}) "
        f"on conflict ({', '.join(key)}) do update set {updates}"
    )


_UPSERT_RENDER = _upsert_sql("renders", _RENDER_FIELDS, ("fingerprint", "generation"))
_UPSERT_JOB = _upsert_sql("jobs", _JOB_FIELDS, ("shot", "take"))


def _render_from_row(row: Mapping[str, Any]) -> RenderRow:
    values: dict[str, Any] = {name: row.get(name) for name in _RENDER_FIELDS}
    values["possible_duplicate"] = bool(values["possible_duplicate"])
    return RenderRow(**values)


def _fix_render(render: RenderRow) -> RenderRow:
    render.possible_duplicate = bool(render.possible_duplicate)
    return render


def _job_from_row(row: Mapping[str, Any]) -> JobRow:
    values: dict[str, Any] = {name: row.get(name) for name in _JOB_FIELDS}
    return JobRow(**values)


def _render_record(render: RenderRow) -> dict[str, Any]:
    record = {name: getattr(render, name) for name in _RENDER_FIELDS}
    record["possible_duplicate"] = int(render.possible_duplicate)
    return record


class Store:
    """The state database of one batch folder. Not thread-safe: one per thread."""

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db = db
        self.path = path

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, output_dir: Path) -> Store:
        """Open (creating the folder and the database if needed) for reading and writing.

        Refused (``InputError``, exit 2, nothing written): a batch folder that is a link
        (``runner.files``), a read-only one, a ``state.db`` that is a link, and a database
        a newer shotrunner wrote.
        """
        from runner.files import make_batch_folder, writable_folder

        path = output_dir / STATE_DB
        make_batch_folder(output_dir)
        if path.is_symlink():
            raise InputError(
                f"{path} is a symbolic link; shotrunner keeps its state only in a real file"
            )
        if not writable_folder(output_dir):
            raise InputError(
                f"the batch folder {output_dir} is read-only: status, plan and export "
                "can read it, but this command writes into it; make it writable, or use "
                "another --out"
            )
        try:
            if path.exists():
                _check_known(path)
            db = sqlite_utils.Database(path, execute_plugins=False)
            db.execute("PRAGMA busy_timeout=5000")
            db.enable_wal()
            # NORMAL in WAL mode survives a killed process (the WAL is in the OS's hands);
            # only a power cut could cost the last transactions.
            db.execute("PRAGMA synchronous=NORMAL")
            migrations.apply(db)
        except (OSError, sqlite3.DatabaseError) as error:
            raise InputError(f"cannot use the state database {path}: {error}") from None
        return cls(db, path)

    @classmethod
    def open_existing(cls, output_dir: Path) -> Store | None:
        """Open an existing database for reading, or None when the batch has none yet.

        Never creates ``state.db`` (``plan``, ``status`` and the review commands use this).
        The connection is read-only (``mode=ro``; see ``_open_for_reading`` for a folder this
        process cannot write, where ``immutable=1`` may be needed). A database of an older
        shotrunner is migrated first when the folder is writable.
        """
        from runner.files import writable_folder

        path = output_dir / STATE_DB
        if not path.is_file():
            return None
        writable = writable_folder(output_dir)
        try:
            _check_known(path)
            db = _open_for_reading(path, writable=writable)
        except sqlite3.DatabaseError as error:
            raise InputError(f"cannot read the state database {path}: {error}") from None
        try:
            pending = migrations.pending(db)
        except sqlite3.DatabaseError as error:
            db.close()
            raise InputError(f"cannot read the state database {path}: {error}") from None
        if pending:
            db.close()
            if not writable:
                raise InputError(
                    f"{path} was written by an older shotrunner and its folder is read-only: "
                    "run any command on it once where it is writable, to bring it up to date"
                )
            # An older database: read it through a writable connection that migrates it.
            return cls.open(output_dir)
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------------

    def renders(self) -> dict[RenderKey, RenderRow]:
        """Every render, loaded at once."""
        # Plain tuples in column order: at 10,000 rows, dicts per row cost more than the query.
        cursor = self.db.conn.execute(f"select {', '.join(_RENDER_FIELDS)} from renders")
        renders = (RenderRow(*row) for row in cursor)
        return {render.key: _fix_render(render) for render in renders}

    def jobs(self) -> dict[JobKey, JobRow]:
        """Every job row, loaded at once."""
        cursor = self.db.conn.execute(f"select {', '.join(_JOB_FIELDS)} from jobs")
        return {(row[0], row[1]): JobRow(*row) for row in cursor}

    def job_states(self) -> list[dict[str, Any]]:
        """Every job with the render it points at, for reports: one query, plain dicts.

        Keys: shot, take, fingerprint, generation, state (see ``job_state``), attempt,
        task_id, progress, error, error_code, possible_duplicate, submitted_at,
        completed_at, downloaded_at, sha256, bytes, file, file_size, delivered_at.
        """
        rows = self.db.query(
            """
            select j.*, r.state as render_state, r.attempt, r.task_id, r.progress, r.error,
                   r.error_code, r.possible_duplicate, r.submitted_at, r.completed_at,
                   r.downloaded_at, r.sha256, r.bytes
            from jobs j left join renders r
              on r.fingerprint = j.fingerprint and r.generation = j.generation
            order by j.shot, j.take
            """
        )
        result = []
        for row in rows:
            job = _job_from_row(row)
            render = (
                _render_from_row({**row, "state": row["render_state"]})
                if row["render_state"] is not None
                else None
            )
            record = dict(row)
            record.pop("render_state")
            record["state"] = job_state(job, render)
            if not job.delivered:
                # The file on record belongs to an older render of this job (to be replaced).
                record["file"] = None
            record["possible_duplicate"] = bool(row["possible_duplicate"])
            result.append(record)
        return result

    def bases_in_flight(self, exclude: Collection[RenderKey] = ()) -> dict[str, int]:
        """How many renders each API base owes: in flight, or failed with a task still to ask
        (timed out, or a clip not downloaded). Renders with no recorded base, and those in
        ``exclude``, are left out."""
        states = ", ".join("?" for _ in IN_FLIGHT_STATES)
        codes = ", ".join("?" for _ in KEPT_TASK_CODES)
        rows = self.db.execute(
            f"""
            select api_base, fingerprint, generation from renders
            where api_base is not null
              and (state in ({states})
                   or (state = 'failed' and task_id is not null and error_code in ({codes})))
            """,
            [*IN_FLIGHT_STATES, *KEPT_TASK_CODES],
        ).fetchall()
        counts: Counter[str] = Counter()
        for base, fingerprint, generation in rows:
            if (fingerprint, generation) not in exclude:
                counts[base] += 1
        return dict(counts)

    def renders_in_flight(self) -> list[RenderRow]:
        """The renders in flight (submitting, queued, running, downloading)."""
        states = ", ".join("?" for _ in IN_FLIGHT_STATES)
        cursor = self.db.conn.execute(
            f"select {', '.join(_RENDER_FIELDS)} from renders where state in ({states})",
            IN_FLIGHT_STATES,
        )
        return [_fix_render(RenderRow(*row)) for row in cursor]

    def last_bound_job(self, key: RenderKey) -> JobKey | None:
        """The (shot, take) a render was last bound to, from the events."""
        row = self.db.execute(
            "select shot, take from events where fingerprint = ? and generation = ? "
            "and state = 'bound' and shot is not null order by id desc limit 1",
            list(key),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def render_kinds(self) -> tuple[bool, bool]:
        """Whether the batch holds renders of the simulator, and of a real API (by the base
        each was submitted to). A pending render's create created nothing: it does not count."""
        row = self.db.execute(
            "select coalesce(max(api_base = ?), 0), coalesce(max(api_base != ?), 0) "
            "from renders where api_base is not null and state != 'pending'",
            [SIMULATOR_BASE, SIMULATOR_BASE],
        ).fetchone()
        return bool(row[0]), bool(row[1])

    def events_for_job(self, shot: str, take: int) -> list[dict[str, Any]]:
        """The events of a job: its own and those of every render it has pointed at."""
        return list(
            self.db.query(
                """
                select * from events
                where (shot = ? and take = ?)
                   or (fingerprint, generation) in (
                        select fingerprint, generation from events
                        where shot = ? and take = ? and fingerprint is not null)
                order by id
                """,
                [shot, take, shot, take],
            )
        )

    def events(self) -> Iterator[dict[str, Any]]:
        yield from self.db.query("select * from events order by id")

    def last_change_at(self) -> float | None:
        """When the newest event was written (seconds since the epoch), None without events."""
        rows = list(self.db.query("select at from events order by id desc limit 1"))
        return parse_iso(rows[0]["at"]) if rows else None

    def requests(self, fingerprints: Collection[str]) -> dict[str, dict[str, Any]]:
        """The recorded requests of ``fingerprints`` (those the store holds), by fingerprint.

        A store written before requests were recorded (or opened read-only before its
        migration) answers with none.
        """
        if not fingerprints or "requests" not in self.db.table_names():
            return {}
        found: dict[str, dict[str, Any]] = {}
        query = "select fingerprint, request from requests where fingerprint in ({})"
        for fingerprint, text in self._of_fingerprints(query, fingerprints):
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict):
                found[fingerprint] = value
        return found

    def providers(self, fingerprints: Collection[str]) -> dict[str, str]:
        """The provider (``gateway``, ``veo``, ...) each of ``fingerprints`` was submitted
        to, for those the store holds a submitted render of."""
        query = (
            "select fingerprint, coalesce(provider, 'gateway') from renders "
            "where submitted_at is not null and fingerprint in ({})"
        )
        return dict(self._of_fingerprints(query, fingerprints))

    def _of_fingerprints(self, query: str, fingerprints: Collection[str]) -> Iterator[Any]:
        """The rows of ``query`` (its ``{}`` the list of fingerprints asked for) over
        ``fingerprints``, in chunks: SQLite bounds the parameters of one statement."""
        wanted = sorted(set(fingerprints))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            yield from self.db.conn.execute(query.format(", ".join("?" * len(chunk))), chunk)

    def runs(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from runs order by started_at"))

    def part_owner(self, path: str) -> str | None:
        """The task id recorded as writing the part file at ``path`` (relative to the batch
        folder), None when unknown."""
        row = self.db.execute("select task_id from parts where path = ?", [path]).fetchone()
        return str(row[0]) if row else None

    def verdicts(self) -> dict[JobKey, Verdict]:
        """Verdicts on takes, keyed by (shot, take).

        A verdict applies to the render (fingerprint and generation) the take had when it
        was given: once the shot is edited, or a rejected take rendered again (``run
        --rerender-rejected``), the take's new render has no verdict.
        """
        rows = self.db.query(
            """
            select v.shot, v.take, v.verdict from verdicts v
            join jobs j on j.shot = v.shot and j.take = v.take
            where v.fingerprint = j.fingerprint and v.generation = j.generation
            """
        )
        return {(row["shot"], row["take"]): row["verdict"] for row in rows}

    # -- writes --------------------------------------------------------------------------

    def set_verdict(self, shot: str, take: int, verdict: Verdict | None) -> None:
        """Pick or reject a take (None clears it). Picking one take un-picks the others."""
        if verdict not in ("picked", "rejected", None):
            raise ValueError(f"unknown verdict {verdict!r}")
        job = self._job(shot, take)
        with self._writing():
            if verdict == "picked":
                self.db.execute(
                    "delete from verdicts where shot = ? and verdict = 'picked'", [shot]
                )
            self.db.execute("delete from verdicts where shot = ? and take = ?", [shot, take])
            if verdict is not None:
                _table(self.db, "verdicts").insert(
                    {
                        "shot": shot,
                        "take": take,
                        "verdict": verdict,
                        "fingerprint": job.fingerprint if job else None,
                        "generation": job.generation if job else None,
                        "at": now_iso(),
                    }
                )
            self._event(None, shot, take, None, f"verdict:{verdict or 'cleared'}", "")

    def start_run(
        self,
        *,
        manifest: str,
        manifest_sha256: str,
        api_base: str,
        simulated: bool,
        argv: list[str],
    ) -> str:
        """Record the start of a run and return its id."""
        run_id = uuid.uuid4().hex[:12]
        with self._writing():
            _table(self.db, "runs").insert(
                {
                    "id": run_id,
                    "started_at": now_iso(),
                    "manifest": manifest,
                    "manifest_sha256": manifest_sha256,
                    "api_base": api_base,
                    "simulated": int(simulated),
                    "argv": json.dumps(argv),
                }
            )
        return run_id

    def record_requests(self, requests: Mapping[str, Mapping[str, Any]]) -> None:
        """Keep the request of each fingerprint about to be submitted (the first one stays:
        a fingerprint always renders the same request)."""
        if not requests:
            return
        at = now_iso()
        with self.db.atomic():
            self.db.conn.executemany(
                "insert or ignore into requests (fingerprint, request, at) values (?, ?, ?)",
                [(fp, json.dumps(body, sort_keys=True), at) for fp, body in requests.items()],
            )

    def finish_run(self, run_id: str, *, exit_code: int, summary: Mapping[str, Any]) -> None:
        with self._writing():
            _table(self.db, "runs").update(
                run_id,
                {"ended_at": now_iso(), "exit_code": exit_code, "summary": json.dumps(summary)},
            )

    def bind_jobs(
        self, run_id: str | None, bindings: Sequence[tuple[str, int, str, int]]
    ) -> dict[JobKey, JobRow]:
        """Point many jobs (shot, take, fingerprint, generation) at their renders, at once.

        One transaction for all, each binding with its event; returns the jobs' rows.
        """
        jobs = self.jobs()
        # A render row already there is kept as it is: the insert is ignored on its key, so
        # no render is read (at 10,000 renders, loading them cost more than the inserts).
        added: set[RenderKey] = set()
        at = now_iso()
        result: dict[JobKey, JobRow] = {}
        with self._writing():
            for shot, take, fingerprint, generation in bindings:
                if (fingerprint, generation) not in added:
                    added.add((fingerprint, generation))
                    self.db.execute(
                        "insert or ignore into renders (fingerprint, generation, state, "
                        "attempt, possible_duplicate, updated_at) "
                        "values (?, ?, 'pending', 0, 0, ?)",
                        [fingerprint, generation, at],
                    )
                job = jobs.get((shot, take)) or JobRow(shot, take, fingerprint, generation)
                job.fingerprint, job.generation, job.updated_at = fingerprint, generation, at
                self._upsert_job(job)
                self._event(run_id, shot, take, (fingerprint, generation), "bound", "")
                result[(shot, take)] = job
        return result

    def update_render(
        self,
        run_id: str | None,
        render: RenderRow,
        *,
        detail: str = "",
        job: JobKey | None = None,
        event: bool = True,
        part_owner: tuple[str, str] | None = None,
    ) -> None:
        """Write a render's row as it is now, with an event row, in one transaction.

        ``event=False`` is for progress updates that are not a change of state. ``part_owner``
        (path, task id) records the owner of a part file in the same transaction, as
        ``set_part_owner`` would.
        """
        render.updated_at = now_iso()
        record = _render_record(render)
        with self._writing():
            self.db.execute(_UPSERT_RENDER, [record[name] for name in _RENDER_FIELDS])
            if event:
                shot, take = job if job else (None, None)
                self._event(run_id, shot, take, render.key, render.state, detail)
            if part_owner is not None:
                self._set_part_owner(*part_owner)

    def record_delivery(
        self,
        run_id: str | None,
        job: JobRow,
        *,
        file: str,
        size: int,
        mtime_ns: int,
        sha256: str,
        part: str | None = None,
    ) -> None:
        """Record the clip written into a job's folder (after its atomic rename).

        ``part``, the part file (relative path) renamed into place, loses its owner record
        in the same transaction: it no longer exists, and no separate write is needed.
        """
        job.file, job.file_size, job.file_mtime_ns, job.file_sha256 = file, size, mtime_ns, sha256
        job.file_fingerprint, job.file_generation = job.fingerprint, job.generation
        job.delivered_at = job.updated_at = now_iso()
        with self._writing():
            self._upsert_job(job)
            self._event(run_id, job.shot, job.take, job.render_key, "delivered", file)
            if part is not None:
                self.db.execute("delete from parts where path = ?", [part])

    def record_file_moved(self, run_id: str | None, job: JobRow, detail: str) -> None:
        """Forget the clip of a job's folder (moved to ``.history/`` or found missing)."""
        job.file = job.file_fingerprint = job.file_generation = None
        job.file_size = job.file_mtime_ns = None
        job.file_sha256 = job.delivered_at = None
        job.updated_at = now_iso()
        with self._writing():
            self._upsert_job(job)
            self._event(run_id, job.shot, job.take, job.render_key, "file-moved", detail)

    def set_part_owner(self, path: str, task_id: str | None) -> None:
        """Record which task writes the part file at ``path`` (None forgets it); written before
        the part's first byte, so a part on disk never has an owner it does not belong to."""
        with self._writing():
            if task_id is None:
                self.db.execute("delete from parts where path = ?", [path])
            else:
                self._set_part_owner(path, task_id)

    def _set_part_owner(self, path: str, task_id: str) -> None:
        self.db.execute(
            "insert into parts (path, task_id, at) values (?, ?, ?) "
            "on conflict (path) do update set task_id = excluded.task_id, at = excluded.at",
            [path, task_id, now_iso()],
        )

    # -- internals -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One transaction (``db.atomic``); SQLite's failure to write it becomes
        ``StoreNotWritten``, so a full disk is one line, never a traceback."""
        try:
            with self.db.atomic():
                yield
        except sqlite3.OperationalError as error:
            raise StoreNotWritten(self.path, error) from None

    def _upsert_job(self, job: JobRow) -> None:
        self.db.execute(_UPSERT_JOB, [getattr(job, name) for name in _JOB_FIELDS])

    def _job(self, shot: str, take: int) -> JobRow | None:
        rows = list(self.db.query("select * from jobs where shot = ? and take = ?", [shot, take]))
        return _job_from_row(rows[0]) if rows else None

    def _event(
        self,
        run_id: str | None,
        shot: str | None,
        take: int | None,
        render: RenderKey | None,
        state: str,
        detail: str,
    ) -> None:
        self.db.execute(
            "insert into events (at, run_id, shot, take, fingerprint, generation, state, detail) "
            "values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                now_iso(),
                run_id,
                shot,
                take,
                render[0] if render else None,
                render[1] if render else None,
                state,
                detail,
            ],
        )


def job_state(job: JobRow | None, render: RenderRow | None) -> JobState:
    """A job's state word (docs/running.md) from its row and its render's row.

    A render that is done but whose clip is not yet in this job's folder counts as
    ``downloading``: the job is not delivered until its own file is written.
    """
    if job is None or render is None:
        return "pending"
    if render.state == "done" and not job.delivered:
        return "downloading"
    return render.state
