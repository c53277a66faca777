"""Benchmark 1, throughput: many short jobs, shotrunner against the openai SDK and a curl loop.

Each side gets a simulator of its own (2 s per job, no faults) so that its requests and
tasks are counted apart. Ideal makespan: N*D/C; the curl loop runs one job at a time (N*D).
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
    poll: float
    curl_jobs: int


SIZES = {
    "full": Size(jobs=1000, seconds=2.0, concurrency=100, poll=0.5, curl_jobs=20),
    "quick": Size(jobs=300, seconds=2.0, concurrency=100, poll=0.5, curl_jobs=5),
    "tiny": Size(jobs=6, seconds=0.3, concurrency=3, poll=0.1, curl_jobs=2),
}

HEADER = [
    "side",
    "jobs",
    "makespan s",
    "ideal s",
    "x ideal",
    "CPU s",
    "CPU s / 1,000 jobs",
    "requests / job (create+poll+download)",
    "peak RSS MiB",
    "delay median / worst s",
]


def run(mode: str) -> Section:
    size = SIZES[mode]
    section = Section(
        "1. Throughput",
        f"{size.jobs} jobs of {size.seconds:g} s against the simulator (no faults); shotrunner "
        f"`run --concurrency {size.concurrency} --poll-interval {size.poll:g}`; the openai SDK "
        f"script (`bench/sdk_batch.py`) with {size.concurrency} threads and its default polling; "
        f"`bench/curl_loop.sh` over {size.curl_jobs} jobs, one at a time, polling every "
        f"{size.poll:g} s. Delay: server completion to the clip whole on disk.",
        header=HEADER,
    )
    options = ["--concurrency", str(size.concurrency), "--poll-interval", str(size.poll)]
    with harness.scratch("throughput") as tmp:
        (tmp / "runner").mkdir()
        with harness.simulator(tmp / "runner", job_seconds=size.seconds) as sim:
            ours = harness.shotrunner_batch(tmp / "runner", sim, size.jobs, options)
        (tmp / "sdk").mkdir()
        with harness.simulator(tmp / "sdk", job_seconds=size.seconds) as sim:
            sdk = harness.sdk_batch(tmp / "sdk", sim, size.jobs, size.concurrency)
        (tmp / "curl").mkdir()
        with harness.simulator(tmp / "curl", job_seconds=size.seconds) as sim:
            curl = harness.curl_batch(tmp / "curl", sim, size.curl_jobs, size.poll)
    ideal = size.jobs * size.seconds / size.concurrency
    for side, side_ideal in ((ours, ideal), (sdk, ideal), (curl, size.curl_jobs * size.seconds)):
        section.rows.append(_row(side, side_ideal))
    wanted = 1.10 * ideal + size.poll
    section.target(
        "makespan",
        f"{fmt(ours.process.wall)} s ({fmt(ours.process.wall / ideal)}x ideal {fmt(ideal, 1)} s)",
        f"<= 1.10x ideal + one poll interval = {fmt(wanted)} s",
        ours.process.wall <= wanted,
    )
    cpu_ratio = ratio(ours.process.cpu / ours.jobs, sdk.process.cpu / sdk.jobs)
    section.target(
        "runner CPU per job vs the SDK script",
        f"{fmt(cpu_ratio)}x ({fmt(ours.cpu_per_1000)} vs {fmt(sdk.cpu_per_1000)} CPU s "
        "per 1,000 jobs)",
        "<= 0.50x",
        cpu_ratio <= 0.5,
    )
    section.target(
        "runner CPU per 1,000 jobs",
        f"{fmt(ours.cpu_per_1000)} s",
        "< 8 s",
        ours.cpu_per_1000 < 8,
    )
    section.target(
        "requests per job vs the SDK (default polling)",
        f"{fmt(ours.requests_per_job)} vs {fmt(sdk.requests_per_job)}",
        "fewer than the SDK",
        ours.requests_per_job < sdk.requests_per_job,
    )
    section.notes.append(
        "Makespan is the wall time of the whole process, interpreter start, planning and the "
        "contact sheet included; CPU seconds are user + system of that process."
    )
    section.notes.append(
        f"Ratios against the SDK: makespan {fmt(ratio(ours.process.wall, sdk.process.wall))}x, "
        f"CPU {fmt(cpu_ratio)}x, requests {fmt(ratio(ours.requests_per_job, sdk.requests_per_job))}"
        f"x, peak RSS {fmt(ratio(ours.process.maxrss_kib, sdk.process.maxrss_kib))}x."
    )
    return section


def _row(side: harness.Side, ideal: float) -> list[str]:
    t = side.traffic
    jobs = side.jobs
    split = f"{fmt(t.creates / jobs)}+{fmt(t.polls / jobs)}+{fmt(t.downloads / jobs)}"
    return [
        side.name,
        str(jobs),
        fmt(side.process.wall),
        fmt(ideal, 1),
        fmt(side.process.wall / ideal),
        fmt(side.process.cpu),
        fmt(side.cpu_per_1000),
        f"{fmt(side.requests_per_job)} ({split})",
        fmt(side.process.maxrss_mib, 0),
        f"{fmt(side.delays.median)} / {fmt(side.delays.worst)}",
    ]
