"""Run the benchmark suite of issue 6 and write ``bench/RESULTS.md``.

Usage: ``python bench/run.py [--quick] [--only NAME ...] [--output FILE]``

The full run takes several minutes (benchmark 5 alone renders 100 jobs of 60 s);
``--quick`` shrinks every workload so the whole suite takes about two minutes;
``--tiny`` is the smoke size the test suite uses (seconds, figures meaningless).
Each benchmark's targets are marked PASS or MISS in the output.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# The benchmark modules import each other as plain modules from this folder.
sys.path.insert(0, str(BENCH))

import adaptive  # noqa: E402
import download  # noqa: E402
import harness  # noqa: E402
import real_length  # noqa: E402
import scale  # noqa: E402
import throughput  # noqa: E402
from report import Section, render  # noqa: E402

BENCHMARKS: dict[str, Callable[[str], Section]] = {
    "throughput": throughput.run,
    "scale": scale.run,
    "shot-files": scale.run_shot_files,
    "download": download.run,
    "adaptive": adaptive.run,
    "real-length": real_length.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="smaller workloads (~2 minutes)")
    sizes.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds)")
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only this (repeatable)"
    )
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    options = parser.parse_args(argv)
    mode = "tiny" if options.tiny else "quick" if options.quick else "full"
    names = options.only or list(BENCHMARKS)
    machine = harness.machine()
    sections = []
    for name in names:
        print(f"{name}...", flush=True)
        start = time.perf_counter()
        load = os.getloadavg()[0]
        try:
            section = BENCHMARKS[name](mode)
        except Exception:
            section = Section(name, "This benchmark failed.", error=traceback.format_exc())
        # Other work on the machine slows both sides; say how busy it was.
        section.notes.append(
            f"Load average (1 min) at the start: {load:.2f}; at the end: {os.getloadavg()[0]:.2f} "
            f"({os.cpu_count()} CPUs); {time.perf_counter() - start:.0f} s in all."
        )
        sections.append(section)
        for target in section.targets:
            print(f"  {target.verdict} {target.name}: {target.measured}", flush=True)
        if section.error:
            print(section.error, file=sys.stderr)
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    command = "python bench/run.py" + {"full": "", "quick": " --quick", "tiny": " --tiny"}[mode]
    if options.only:
        command += "".join(f" --only {name}" for name in options.only)
    options.output.write_text(render(machine, sections, mode, command), encoding="utf-8")
    print(f"wrote {options.output}")
    return 1 if any(section.error for section in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
