"""The loop that drives a render: steps run in the order they answer, slots held around them."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from runner.concurrency import AdaptiveLimit
from runner.engine import life
from runner.engine.states import Step
from runner.engine.work import Work
from runner.store import RenderRow


class _Run:
    """What the loop uses of a run: the two kinds of slot, and spawning a coroutine."""

    def __init__(self) -> None:
        self.limit = AdaptiveLimit(4)
        self.downloads = asyncio.Semaphore(1)
        self.spawned: list[Coroutine[Any, Any, None]] = []

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self.spawned.append(coroutine)


def _steps(
    monkeypatch: pytest.MonkeyPatch, run: _Run, answers: dict[Step, list[Step]]
) -> list[tuple[Step, int, bool]]:
    """Replace each step by one that answers from ``answers`` and notes, when it runs, how
    many task slots are taken and whether the download slot is."""
    seen: list[tuple[Step, int, bool]] = []

    def fake(step: Step) -> Any:
        async def run_step(_: Any, work: Work) -> Step:
            seen.append((step, run.limit.active, run.downloads.locked()))
            return answers[step].pop(0)

        return run_step

    monkeypatch.setattr(life, "STEPS", {step: fake(step) for step in answers})
    return seen


def _work() -> Work:
    return Work(render=RenderRow("f" * 64, 1), jobs=[], action="submit")


async def test_the_steps_follow_their_answers_with_the_right_slots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task slot around submit and poll, the download slot around download and deliver,
    none left taken at the end."""
    run = _Run()
    seen = _steps(
        monkeypatch,
        run,
        {
            Step.SUBMIT_NEW: [Step.POLL],
            Step.POLL: [Step.DOWNLOAD],
            Step.DOWNLOAD: [Step.DELIVER],
            Step.DELIVER: [Step.END],
        },
    )
    await life.live(run, _work(), Step.SUBMIT_NEW)  # type: ignore[arg-type]
    assert seen == [
        (Step.SUBMIT_NEW, 1, False),
        (Step.POLL, 1, False),
        (Step.DOWNLOAD, 0, True),
        (Step.DELIVER, 0, True),
    ]
    assert run.limit.active == 0 and not run.downloads.locked()


async def test_a_clip_lost_after_its_download_started_takes_a_task_slot_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Download answers 'submit a new attempt': the slot is taken again for it, and freed."""
    run = _Run()
    seen = _steps(
        monkeypatch,
        run,
        {
            Step.DOWNLOAD: [Step.SUBMIT_NEW, Step.END],
            Step.SUBMIT_NEW: [Step.POLL],
            Step.POLL: [Step.DOWNLOAD],
        },
    )
    await life.live(run, _work(), Step.DOWNLOAD)  # type: ignore[arg-type]
    assert [(step, slots) for step, slots, _ in seen] == [
        (Step.DOWNLOAD, 0),
        (Step.SUBMIT_NEW, 1),
        (Step.POLL, 1),
        (Step.DOWNLOAD, 0),
    ]
    assert run.limit.active == 0


async def test_a_fetch_worker_hands_on_a_render_that_needs_a_task_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fetch worker does not wait on a render to be rendered again: that part of its life
    goes on in a coroutine of its own, and the worker is free."""
    run = _Run()
    _steps(monkeypatch, run, {Step.DELIVER: [Step.DOWNLOAD], Step.DOWNLOAD: [Step.SUBMIT_NEW]})
    await life.live(run, _work(), Step.DELIVER, worker=True)  # type: ignore[arg-type]
    (continuation,) = run.spawned
    assert continuation.cr_frame.f_locals["step"] is Step.SUBMIT_NEW
    continuation.close()
    assert run.limit.active == 0


async def test_a_failing_step_leaves_no_slot_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step that raises (a refused key, a full disk) frees the slot it ran in."""
    run = _Run()

    async def broken(_: Any, work: Work) -> Step:
        raise OSError("disk full")

    monkeypatch.setattr(life, "STEPS", {Step.POLL: broken})
    work = _work()
    with pytest.raises(OSError):
        await life.live(run, work, Step.POLL)  # type: ignore[arg-type]
    assert run.limit.active == 0 and not work.holds_slot
