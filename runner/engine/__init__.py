"""The run engine: joins the store and the API client to submit once, poll, and deliver.

One coroutine drives each render (fingerprint, generation) from where the store says it is:

    pending ──submit──► submitting ──answer──► queued/running ──completed──► downloading ──► done
                           │ lost answer: same key again, possible duplicate      │
                           ▼                                                      ▼
                        failed ◄── rejected, refused, out of attempts, timed out  (clip copied
                                                                                 into each job)

Money rules (SPEC.md): the store records ``submitting`` (with the attempt) before a create is
sent and the task id the moment the answer arrives; every create carries
``Idempotency-Key: <fingerprint>-g<generation>-a<attempt>``; a lost answer, or a
``submitting`` row found at start, is retried with the same key and flagged as a possible
duplicate (a 429 keeps such a render ``submitting``, so a crash never turns it into a new
key), at most ``MAX_AMBIGUOUS_SENDS`` times in all; a create that created nothing (never
sent, 429) waits as ``pending``. An unreachable API fails no job: after
``unreachable_after`` seconds without an answer the run stops. A render in flight that no
job points at any more (an edited or removed shot) is still followed, never resubmitted,
and its clip kept in ``.history/``. A paid clip is never deleted: a replaced clip moves to
``.history/``, and comes back from there by its hash when an edit is undone. A task this
run cannot poll, or whose clip it cannot download, is not failed: it keeps its state and
task id, the run counts it as failed (exit 1), and the next run asks the same task again
(``_keep_owed``).

Bounds: renders that need a slot wait in one list (the dispatcher), clips to fetch wait for a
few workers, request bodies exist only while their create is on the wire; every retry loop
is counted or backs off.

Signals: the first SIGINT/SIGTERM stops new submissions, lets a create already on the wire
record its answer (briefly), cancels polls and downloads (their state is already saved) and
ends with ``Interrupted``; a second one exits at once.

Modules, one part of a render's life each (``Engine`` joins their mixins):

- ``options``: ``RunOptions`` and ``RunContext``, what a run is told;
- ``work``: ``Work`` (one render and its jobs), grouping the plan, kinds, the plan summary;
- ``base``: the state every step shares, store writes, backoff, sleeps, spawned coroutines;
- ``core``: ``Engine``, the run itself: binding jobs, dispatch, resume, shut-down, signals, tally;
- ``submit``: creating tasks (the money path) and whether another attempt is allowed;
- ``follow``: polling a task until it finishes;
- ``collect``: downloading a finished task's clip;
- ``deliver``: putting a clip into every job's folder, with sidecars and store records;
- ``earlier``: renders no job points at any more (edited or removed shots).
"""

from runner.engine.base import MAX_TASK_ERRORS, NOT_FOUND_CONFIRMATIONS, OWED_CODES
from runner.engine.core import CREATE_GRACE, Engine
from runner.engine.options import RunContext, RunOptions
from runner.engine.submit import MAX_AMBIGUOUS_SENDS
from runner.engine.work import Kind, Work, group_work, kind_of, summarise

__all__ = [
    "CREATE_GRACE",
    "MAX_AMBIGUOUS_SENDS",
    "MAX_TASK_ERRORS",
    "NOT_FOUND_CONFIRMATIONS",
    "OWED_CODES",
    "Engine",
    "Kind",
    "RunContext",
    "RunOptions",
    "Work",
    "group_work",
    "kind_of",
    "summarise",
]
