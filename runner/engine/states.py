"""A render's life, in one place: its states, which state may follow which, and which step
works on a render in each state.

Everything that decides a render's next state is read from these tables; the steps
(``submit``, ``poll``, ``download``, ``deliver``) do their I/O and return the next ``Step``,
and ``life.live`` runs them. A step changes a render's state only through ``move``, which
refuses a move the table does not list (a bug, never a user's mistake).

    pending ─► submitting ─► queued ─► running ─► downloading ─► done
       ▲           │  ▲         │         │            │           │
       └───────────┘  └─────────┴─────────┴────────────┴───────────┘
     created nothing    a new attempt: the task was lost, failed
     (429, never sent)  remotely, or its finished clip was lost
                   any state but done ─► failed ─► (--retry-failed) submitting, or its
                                                   kept task asked again

A render in flight that this run gives up on (polls or downloads that keep failing) keeps
its state and task id: it is owed, and the next run asks the same task again.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from runner.model import JobState

if TYPE_CHECKING:
    from runner.store import RenderRow


class Step(enum.Enum):
    """What a render needs next in this run."""

    #: Create the task of a new attempt (a new idempotency key).
    SUBMIT_NEW = "submit a new attempt"
    #: Send the create of the current attempt again, under the same key (its answer was lost).
    SUBMIT_SAME = "send the same create again"
    #: Ask the task until it finishes.
    POLL = "poll"
    #: Download the finished task's clip.
    DOWNLOAD = "download"
    #: Put the clip into every job's folder (from disk when it is there).
    DELIVER = "deliver"
    #: Nothing more in this run: done, failed, owed to the next run, or the run is stopping.
    END = "end"


#: Which states may follow each state. Staying in a state (a resend under the same key,
#: progress, a reason noted) is always allowed.
MOVES: dict[JobState, frozenset[JobState]] = {
    # A create recorded before it is sent; failed: an image gone, --max-new or --max-cost
    # reached.
    "pending": frozenset({"submitting", "failed"}),
    # The answer's task id; pending: the create provably created nothing (429, not sent).
    "submitting": frozenset({"queued", "pending", "failed"}),
    # A new attempt (submitting) when the service lost or failed the task.
    "queued": frozenset({"running", "downloading", "submitting", "failed"}),
    "running": frozenset({"queued", "downloading", "submitting", "failed"}),
    # running: recorded as finished, but the task says otherwise; submitting: its clip lost.
    "downloading": frozenset({"done", "running", "submitting", "failed"}),
    # A delivered render's clip fetched again, or rendered again when the service lost it.
    "done": frozenset({"downloading", "running", "submitting", "failed"}),
    # --retry-failed: a new attempt, or the task it kept asked again (and collected).
    "failed": frozenset({"submitting", "queued", "running", "downloading"}),
}

#: The step that picks up a render found in each state at the start of a run (``None``:
#: nothing to do unless the plan says so, as ``--retry-failed`` does for a failed one).
STEP_FOR_STATE: dict[JobState, Step | None] = {
    "pending": Step.SUBMIT_NEW,
    # Found at the start: a create whose answer never came; the same key again.
    "submitting": Step.SUBMIT_SAME,
    "queued": Step.POLL,
    "running": Step.POLL,
    "downloading": Step.DOWNLOAD,
    "done": Step.DELIVER,
    "failed": None,
}

#: Consecutive failed polls or downloads of one task before this run gives up on it (the
#: render keeps its state and task: owed to the next run).
MAX_TASK_ERRORS = 12
#: 404s in a row for a task before it counts as forgotten by the service (a new attempt).
NOT_FOUND_CONFIRMATIONS = 2
#: Creates sent in all under one key whose answers were lost: a gateway that ignores the key
#: may bill each one, so after these the render fails (flagged) instead of sending again.
MAX_AMBIGUOUS_SENDS = 3

#: Steps that hold one of the run's slots for tasks in flight (``--concurrency``).
SLOT_STEPS = frozenset({Step.SUBMIT_NEW, Step.SUBMIT_SAME, Step.POLL})
#: Steps that hold one of the run's download slots.
DOWNLOAD_STEPS = frozenset({Step.DOWNLOAD, Step.DELIVER})


class IllegalMove(RuntimeError):
    """A step tried a move the table does not allow: a bug in the runner."""


def move(render: RenderRow, to: JobState) -> None:
    """Set ``render``'s state to ``to``, refusing a move ``MOVES`` does not list."""
    if to != render.state and to not in MOVES[render.state]:
        raise IllegalMove(f"render {render.fingerprint[:12]}: {render.state} -> {to}")
    render.state = to


def first_step(render: RenderRow) -> Step:
    """The step that starts a render the plan works on, from the state the store left it in.

    A failed render is worked on only when retried (``--retry-failed``): its kept task is
    asked first, a create that never got an answer is sent once more under its key, any
    other failure gets a new attempt.
    """
    if render.state == "failed":
        if render.asks_task_first:
            return Step.POLL
        if render.task_id is None and render.error_code == "unanswered":
            return Step.SUBMIT_SAME
        return Step.SUBMIT_NEW
    step = STEP_FOR_STATE[render.state]
    assert step is not None
    return step
