"""Benchmark 2, scale: a 10,000-job manifest through validate, plan, status and a done run.

The manifest comes from ``validate_plan.write_manifest`` (the four modes, shared images,
every seventh shot with two takes). One ``run`` of zero-length jobs against the simulator
makes every job done (setup, reported but not a target); then each command is timed as a
fresh process, a user's view: interpreter start included. The final ``run`` must find
everything done by size and time (no re-hash) and send nothing.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import harness
import validate_plan
from report import Section, fmt


@dataclass(frozen=True)
class Size:
    shots: int
    repeat: int
    #: Shots for ``validate_plan.py`` itself (issue 2's own benchmark, 10,000 shots).
    issue2_shots: int


# 8,750 shots, every seventh with two takes: 10,000 jobs.
SIZES = {
    "full": Size(shots=8750, repeat=3, issue2_shots=10_000),
    "quick": Size(shots=1750, repeat=1, issue2_shots=10_000),
    "tiny": Size(shots=35, repeat=1, issue2_shots=20),
}
WALL_LIMIT = 1.5
RSS_LIMIT_MIB = 200


def jobs_of(shots: int) -> int:
    return shots + (shots + 6) // 7


def run(mode: str) -> Section:
    size = SIZES[mode]
    jobs = jobs_of(size.shots)
    section = Section(
        "2. Scale",
        f"A manifest of {size.shots:,} shots, {jobs:,} jobs (`validate_plan.write_manifest`). "
        f"Each command runs {size.repeat}x as a fresh process; best and median wall time, "
        "the highest peak RSS. `status` and the last `run` see every job done.",
        header=["command", "best s", "median s", "peak RSS MiB", "requests sent"],
    )
    with harness.scratch("scale") as tmp:
        manifest = validate_plan.write_manifest(tmp, size.shots)
        out = tmp / "out"
        with harness.simulator(tmp, job_seconds=0.0, record=True) as sim:
            setup = harness.run_measured(
                harness.shotrunner(
                    "run",
                    manifest,
                    "--out",
                    out,
                    "--api-base",
                    sim.base_url,
                    "--concurrency",
                    "100",
                    "--poll-interval",
                    "0.2",
                ),
                env=harness.runner_env(),
                output=tmp / "setup.log",
            )
            done = len(list(out.glob("*/take-*.mp4")))
            if done != jobs:
                raise harness.BenchError(f"setup run delivered {done} of {jobs}\n{setup.tail()}")
            commands = {
                "validate": harness.shotrunner("validate", manifest),
                "plan": harness.shotrunner("plan", manifest, "--out", out),
                "status": harness.shotrunner("status", manifest, "--out", out),
                "run (all done)": harness.shotrunner(
                    "run", manifest, "--out", out, "--api-base", sim.base_url
                ),
            }
            for label, argv in commands.items():
                sim.recorder.clear()
                runs = [
                    harness.run_measured(argv, env=harness.runner_env(), output=tmp / "cmd.log")
                    for _ in range(size.repeat)
                ]
                walls = [r.wall for r in runs]
                rss = max(r.maxrss_mib for r in runs)
                sent = len(sim.recorder.requests)
                section.rows.append(
                    [
                        label,
                        fmt(min(walls), 3),
                        fmt(statistics.median(walls), 3),
                        fmt(rss, 0),
                        str(sent),
                    ]
                )
                section.target(
                    f"`{label}` wall",
                    f"{fmt(min(walls), 3)} s (median {fmt(statistics.median(walls), 3)} s)",
                    f"< {WALL_LIMIT} s",
                    statistics.median(walls) < WALL_LIMIT,
                )
                section.target(
                    f"`{label}` peak RSS",
                    f"{fmt(rss, 0)} MiB",
                    f"< {RSS_LIMIT_MIB} MiB",
                    rss < RSS_LIMIT_MIB,
                )
                if label.startswith("run"):
                    section.target("`run (all done)` sends nothing", str(sent), "0", sent == 0)
    section.notes.append(
        f"Setup: the first `run` of {jobs:,} zero-length jobs (concurrency 100, poll 0.2 s) took "
        f"{fmt(setup.wall, 1)} s wall, {fmt(setup.cpu, 1)} CPU s "
        f"({fmt(setup.cpu / jobs * 1000, 2)} per 1,000 jobs), peak RSS {fmt(setup.maxrss_mib, 0)} "
        "MiB."
    )
    section.notes.append("A target counts the median of the repeats, not the best.")
    section.notes.append(
        f"Issue 2's own benchmark, `python bench/validate_plan.py --shots {size.issue2_shots}` "
        "(its manifest has more jobs than shots: every seventh shot has two takes):\n\n"
        + "\n".join(f"      {line}" for line in _issue2(size.issue2_shots, size.repeat))
    )
    return section


def _issue2(shots: int, repeat: int) -> list[str]:
    """Run ``validate_plan.py`` as its author wrote it and keep what it prints."""
    with harness.scratch("validate-plan") as tmp:
        harness.run_measured(
            [
                harness.PYTHON,
                harness.BENCH / "validate_plan.py",
                "--shots",
                str(shots),
                "--repeat",
                str(max(3, repeat)),
            ],
            output=tmp / "out.txt",
        )
        return (tmp / "out.txt").read_text(encoding="utf-8").splitlines()
