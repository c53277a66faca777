"""Benchmark 4, adaptive concurrency: the server allows 8 active tasks, the runner asks for 64.

The simulator answers a create with 429 while ``max_active`` tasks are unfinished. The
runner must find the server's limit by itself: few 429s, and the 8 slots kept busy.
Ideal makespan: N*D/8.
"""

from __future__ import annotations

from dataclasses import dataclass

import harness
from report import Section, fmt


@dataclass(frozen=True)
class Size:
    jobs: int
    seconds: float
    max_active: int
    concurrency: int
    poll: float


SIZES = {
    "full": Size(jobs=200, seconds=2.0, max_active=8, concurrency=64, poll=0.5),
    "quick": Size(jobs=64, seconds=2.0, max_active=8, concurrency=64, poll=0.5),
    "tiny": Size(jobs=8, seconds=0.3, max_active=2, concurrency=8, poll=0.1),
}


def run(mode: str) -> Section:
    size = SIZES[mode]
    ideal = size.jobs * size.seconds / size.max_active
    section = Section(
        "4. Adaptive concurrency",
        f"Simulator `--max-active {size.max_active}`, {size.jobs} jobs of {size.seconds:g} s; "
        f"shotrunner `run --concurrency {size.concurrency} --poll-interval {size.poll:g}`. "
        f"Ideal makespan for {size.max_active} slots: {fmt(ideal, 1)} s.",
        header=[
            "side",
            "makespan s",
            "x ideal",
            "creates",
            "429 answers",
            "429 share",
            "requests / job",
            "CPU s",
        ],
    )
    options = ["--concurrency", str(size.concurrency), "--poll-interval", str(size.poll)]
    with (
        harness.scratch("adaptive") as tmp,
        harness.simulator(tmp, job_seconds=size.seconds, max_active=size.max_active) as sim,
    ):
        ours = harness.shotrunner_batch(tmp, sim, size.jobs, options)
    t = ours.traffic
    section.rows.append(
        [
            ours.name,
            fmt(ours.process.wall),
            fmt(ours.process.wall / ideal),
            str(t.creates),
            str(t.creates_429),
            f"{t.share_429:.1%}",
            fmt(ours.requests_per_job),
            fmt(ours.process.cpu),
        ]
    )
    section.target(
        "makespan",
        f"{fmt(ours.process.wall)} s ({fmt(ours.process.wall / ideal)}x ideal)",
        f"<= 1.25x ideal = {fmt(1.25 * ideal)} s",
        ours.process.wall <= 1.25 * ideal,
    )
    section.target(
        "429 share of creates",
        f"{t.share_429:.1%} ({t.creates_429} of {t.creates})",
        "<= 15%",
        t.share_429 <= 0.15,
    )
    return section
