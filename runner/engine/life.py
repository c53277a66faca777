"""The one loop that drives a render: it runs the step a render needs, takes the step's
answer (the next ``Step``), and so on until ``Step.END``.

The steps do the I/O and change the render's state (``states.move``); this loop only holds
and frees the run's slots around them: a slot for tasks in flight while a render is
submitted or polled, a download slot while its clip is fetched and delivered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from runner.engine.deliver import deliver
from runner.engine.download import download
from runner.engine.poll import poll
from runner.engine.states import DOWNLOAD_STEPS, SLOT_STEPS, Step
from runner.engine.submit import submit_new, submit_same

if TYPE_CHECKING:
    from runner.engine.run import Run
    from runner.engine.work import Work

StepFunction = Callable[["Run", "Work"], Awaitable[Step]]

#: The function of each step.
STEPS: dict[Step, StepFunction] = {
    Step.SUBMIT_NEW: submit_new,
    Step.SUBMIT_SAME: submit_same,
    Step.POLL: poll,
    Step.DOWNLOAD: download,
    Step.DELIVER: deliver,
}


async def live(run: Run, work: Work, step: Step, *, worker: bool = False) -> None:
    """Drive ``work`` from ``step`` to the end of its life in this run.

    ``worker``: called by a fetch worker, which goes on with the next clip as soon as this
    one needs a slot for tasks in flight (rendered again, or polled again): that part of its
    life continues in a coroutine of its own.
    """
    try:
        while step is not Step.END:
            if step in SLOT_STEPS and not work.holds_slot:
                if worker:
                    run.spawn(live(run, work, step))
                    return
                if step is Step.POLL:
                    # A task already on the service: it is in flight whatever the limit says.
                    run.limit.take()
                else:
                    await run.limit.acquire()
                work.holds_slot = True
            elif step not in SLOT_STEPS and work.holds_slot:
                work.holds_slot = False
                await run.limit.release()
            if step in DOWNLOAD_STEPS:
                async with run.downloads:
                    step = await STEPS[step](run, work)
            else:
                step = await STEPS[step](run, work)
    finally:
        if work.holds_slot:
            work.holds_slot = False
            await run.limit.release()
