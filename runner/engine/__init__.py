"""The run engine: joins the store and the API client to submit once, poll, and deliver.

A render's life is one table, ``states.MOVES`` (drawn in ``states`` and docs/ARCHITECTURE.md).

One loop (``life.live``) drives each render: it runs the step the render needs and takes the
step's answer, the next step, until the end. Each step is one module: ``submit``, ``poll``,
``download``, ``deliver``. ``Run`` (``run``) owns what they share: the store, the client, the
limit on tasks in flight, the download slots, the view, and the records each step makes.
``Work`` (``work``) is one render as the run carries it. ``RunOptions`` and ``RunContext``
(``options``) are what a run is told.

Money rules: the store records ``submitting`` (with the attempt) before a create is sent and
the task id the moment the answer arrives; every create carries
``Idempotency-Key: <fingerprint>-g<generation>-a<attempt>``; a lost answer, or a
``submitting`` row found at start, is retried with the same key and flagged as a possible
duplicate (a 429 keeps such a render ``submitting``, so a crash never turns it into a new
key), at most ``MAX_AMBIGUOUS_SENDS`` times in all; a create that created nothing (never
sent, 429) waits as ``pending``; a create answered without a usable task id fails, possibly
billed, never sent again. An unreachable API fails no job: after ``unreachable_after``
seconds without an answer the run stops. A render in flight that no job points at any more
(an edited or removed shot) is still followed, never resubmitted, and its clip kept in
``.history/``. A paid clip is never deleted: a replaced clip moves to ``.history/``, and
comes back from there by its hash when an edit is undone. A task this run cannot poll, or
whose clip it cannot download, is not failed: it keeps its state and task id, the run counts
it as failed, and the next run asks the same task again (``Run.keep_owed``).

Bounds: renders that need a slot wait in one list (the dispatcher), clips to fetch wait for a
few workers, request bodies exist only while their create is on the wire; every retry loop
is counted or backs off.

Stopping: ``Run.stop`` (the CLI calls it on the first SIGINT/SIGTERM, through a
``StopSwitch``) stops new submissions, lets a create already on the wire record its answer
(``CREATE_GRACE``), cancels polls and downloads (their state is already saved), and the
result says ``interrupted``.
"""

from runner.engine.options import RunContext, RunOptions
from runner.engine.run import Run, StopSwitch, check_max_new

__all__ = ["Run", "RunContext", "RunOptions", "StopSwitch", "check_max_new"]
