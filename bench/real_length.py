"""Benchmark 5, real-length jobs: 100 jobs of a minute, default poll settings on both sides.

shotrunner runs with its defaults (``--poll-interval`` unset: 15 s with jitter) and the SDK
script with its own (``videos.poll``: every second), one after the other, each against a
simulator of its own; requests per job and the delay from a task's completion on the server
to its clip whole on disk are compared, and shotrunner's CPU over the run is given as a share
of one core (CPU seconds / wall seconds): a run that mostly waits should cost next to nothing.

The sides take turns, as in the other benchmarks, because that share is a figure of
shotrunner alone: run beside it on a two-core machine, the SDK script's hundred threads
(polling every second, and the simulator answering them in this process) take the other core
and make shotrunner's own CPU seconds dearer, so the figure would measure the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import harness
from report import Section, fmt, ratio


@dataclass(frozen=True)
class Size:
    jobs: int
    seconds: float
    concurrency: int
    #: None: shotrunner's default poll interval (15 s); the SDK always keeps its own default.
    poll: float | None


SIZES = {
    "full": Size(jobs=100, seconds=60.0, concurrency=100, poll=None),
    "quick": Size(jobs=30, seconds=30.0, concurrency=30, poll=None),
    "tiny": Size(jobs=4, seconds=1.0, concurrency=4, poll=0.2),
}
DEFAULT_POLL = 15.0
#: shotrunner's CPU over a run of real-length jobs, in percent of one core, at most.
CPU_SHARE_TARGET = 2.0


def run(mode: str) -> Section:
    size = SIZES[mode]
    poll = DEFAULT_POLL if size.poll is None else size.poll
    ideal = size.jobs * size.seconds / size.concurrency
    options = ["--concurrency", str(size.concurrency)]
    if size.poll is not None:
        options += ["--poll-interval", str(size.poll)]
    section = Section(
        "5. Real-length jobs",
        f"{size.jobs} jobs of {size.seconds:g} s, concurrency {size.concurrency}; shotrunner "
        f"`run {' '.join(options)}` (poll interval {poll:g} s), the SDK script with its "
        "default polling; one after the other, each against its own simulator.",
        header=[
            "side",
            "makespan s",
            "x ideal",
            "requests / job (create+poll+download)",
            "CPU s",
            "CPU % of one core",
            "delay median s",
            "delay worst s",
        ],
    )
    with harness.scratch("real-length") as tmp:
        (tmp / "runner").mkdir()
        (tmp / "sdk").mkdir()
        with harness.simulator(tmp / "runner", job_seconds=size.seconds) as ours_sim:
            ours = harness.shotrunner_batch(tmp / "runner", ours_sim, size.jobs, options)
        with harness.simulator(tmp / "sdk", job_seconds=size.seconds) as sdk_sim:
            sdk = harness.sdk_batch(tmp / "sdk", sdk_sim, size.jobs, size.concurrency)
    for side in (ours, sdk):
        t = side.traffic
        split = (
            f"{fmt(t.creates / side.jobs)}+{fmt(t.polls / side.jobs)}+"
            f"{fmt(t.downloads / side.jobs)}"
        )
        section.rows.append(
            [
                side.name,
                fmt(side.process.wall),
                fmt(side.process.wall / ideal),
                f"{fmt(side.requests_per_job)} ({split})",
                fmt(side.process.cpu),
                fmt(cpu_share(side)),
                fmt(side.delays.median),
                fmt(side.delays.worst),
            ]
        )
    share = ratio(ours.requests_per_job, sdk.requests_per_job)
    section.target(
        "requests per job vs the SDK",
        f"{fmt(share)}x ({fmt(ours.requests_per_job)} vs {fmt(sdk.requests_per_job)})",
        "<= 0.25x",
        share <= 0.25,
    )
    section.target(
        "median completion-to-disk delay",
        f"{fmt(ours.delays.median)} s (worst {fmt(ours.delays.worst)} s)",
        f"<= one poll interval ({poll:g} s)",
        ours.delays.median <= poll,
    )
    share_of_core = cpu_share(ours)
    section.target(
        "runner CPU over the run, % of one core",
        f"{fmt(share_of_core)} % ({fmt(ours.process.cpu)} CPU s in {fmt(ours.process.wall)} s)",
        f"<= {CPU_SHARE_TARGET:g} %",
        share_of_core <= CPU_SHARE_TARGET,
    )
    section.notes.append(
        f"The SDK's delay: median {fmt(sdk.delays.median)} s, worst {fmt(sdk.delays.worst)} s, "
        f"bought with {fmt(sdk.requests_per_job)} requests per job."
    )
    return section


def cpu_share(side: harness.Side) -> float:
    """A side's CPU seconds over its wall time, in percent of one core."""
    return 100 * side.process.cpu / side.process.wall if side.process.wall > 0 else 0.0
