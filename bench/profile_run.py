"""Profile one ``shotrunner run`` against the simulator and say where its CPU time goes.

Usage: ``python bench/profile_run.py [--jobs N] [--seconds D] [--done] [-- RUN OPTIONS...]``

The run goes under cProfile in a child process (the simulator stays in this one, so its
work is not counted); the profile's own time is then summed by layer: the HTTP client stack,
the state store, the contact sheet, the rest of the runner, the event loop. ``--done`` runs
the batch once unprofiled first, then profiles the second run, which finds every job done.
cProfile slows the run down about twofold, so shares matter here, not absolute seconds.
"""

from __future__ import annotations

import argparse
import collections
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness

#: Which layer a profiled function belongs to, by the first matching part of its file name.
LAYERS = (
    ("http client (httpx, httpcore, anyio, h11)", ("httpx", "httpcore", "anyio", "h11", "sniffio")),
    ("http client (aiohttp)", ("aiohttp", "yarl", "multidict")),
    ("state store (sqlite-utils)", ("sqlite_utils", "sqlite3")),
    ("runner: contact sheet", ("runner/report",)),
    ("runner: store", ("runner/store",)),
    (
        "runner: manifest, jobs",
        (
            "runner/manifest",
            "runner/yamlsrc",
            "runner/jobs",
            "runner/images",
            "runner/schema",
            "yaml",
            "jsonschema",
        ),
    ),
    ("runner: other", ("runner/",)),
    ("event loop (asyncio)", ("asyncio", "selectors")),
)


def layer_of(file: str, function: str) -> str:
    if "epoll" in function or "select.poll" in function:
        return "waiting (epoll)"
    for name, parts in LAYERS:
        if any(part in file or part in function for part in parts):
            return name
    if "socket" in function or "_socket" in file:
        return "socket calls"
    return "other (stdlib, json, imports)"


def by_layer(profile: Path) -> list[tuple[str, float]]:
    """Own time per layer, largest first."""
    stats = pstats.Stats(str(profile))
    totals: collections.Counter[str] = collections.Counter()
    for (file, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        own, callers = row[2], row[4]
        layer = layer_of(file, function)
        if file != "~" or layer.startswith("waiting") or not callers:
            totals[layer] += own
            continue
        # A builtin (isinstance, str.join...) counts for the layer that called it.
        for (caller_file, _, caller_function), caller_row in callers.items():
            totals[layer_of(caller_file, caller_function)] += caller_row[2]
    return totals.most_common()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=2.0, help="simulated job length")
    parser.add_argument("--done", action="store_true", help="profile a run that finds all done")
    parser.add_argument("--top", type=int, default=25, help="functions listed by own time")
    parser.add_argument("--keep", type=Path, default=None, help="save the .prof file here")
    parser.add_argument("run_options", nargs="*", help="options for run (after --)")
    options = parser.parse_args()
    run_options = options.run_options or ["--concurrency", "100", "--poll-interval", "0.5"]
    with harness.scratch("profile") as tmp:
        manifest = harness.write_text_manifest(tmp, options.jobs)
        profile = options.keep or tmp / "run.prof"
        with harness.simulator(tmp, job_seconds=options.seconds) as sim:
            args = ["run", str(manifest), "--api-base", sim.base_url, *run_options]
            if options.done:
                harness.run_measured(harness.shotrunner(*args), env=harness.runner_env())
            measured = harness.run_measured(
                [harness.PYTHON, "-m", "cProfile", "-o", profile, "-m", "runner", *args],
                env=harness.runner_env(),
                output=tmp / "run.log",
            )
            requests = len(sim.recorder.requests)
        print(
            f"{options.jobs} jobs: {measured.wall:.2f} s wall, {measured.cpu:.2f} CPU s under "
            f"the profiler, {requests} requests"
        )
        layers = by_layer(profile)
        busy = sum(seconds for name, seconds in layers if not name.startswith("waiting"))
        for name, seconds in layers:
            share = "" if name.startswith("waiting") else f"{seconds / busy:6.1%}"
            print(f"  {seconds:7.2f} s {share:>7}  {name}")
        print()
        pstats.Stats(str(profile)).sort_stats("tottime").print_stats(options.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
