"""Benchmark: ``validate`` and ``plan`` over a generated 10,000-shot manifest.

Run: ``python bench/validate_plan.py [--shots N] [--repeat R]``. Each command runs as a
fresh process (interpreter start included), as a user would run it; the best and the
median wall time of R runs are printed. Target (issue 2): under 1.5 s each for 10,000 shots.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "examples" / "manifests"
MODES = [
    ("text", []),
    ("first_frame", ["frames/s02.png"]),
    ("first_last", ["frames/s03-start.png", "frames/s03-end.jpg"]),
    ("reference", ["refs/surfer.webp", "refs/style.gif"]),
]


def write_manifest(folder: Path, shots: int) -> Path:
    """A manifest of ``shots`` shots cycling through the four modes, sharing a few images."""
    for sub in ("frames", "refs"):
        shutil.copytree(IMAGES / sub, folder / sub)
    lines = [
        "version: 1",
        "name: bench",
        "vars:",
        "  hero: a red-haired surfer in a yellow wetsuit",
        "defaults:",
        "  seconds: 8",
        '  aspect_ratio: "16:9"',
        "  resolution: 720p",
        "shots:",
    ]
    for index in range(shots):
        mode, images = MODES[index % len(MODES)]
        lines.append(f"  - id: shot-{index:05d}")
        lines.append(f"    prompt: ${{hero}} in shot {index}, cinematic, take the wave")
        if mode != "text":
            lines.append(f"    mode: {mode}")
            lines.append(f"    images: [{', '.join(images)}]")
        if index % 7 == 0:
            lines.append("    takes: 2")
    path = folder / "bench.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def time_command(args: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_manifest(Path(tmp), options.shots)
        size = manifest.stat().st_size
        print(f"manifest: {options.shots} shots, {size / 1024:.0f} KiB")
        base = [sys.executable, "-m", "runner"]
        commands = {
            "validate": [*base, "validate", str(manifest)],
            "plan": [*base, "plan", str(manifest)],
            "plan --json": [*base, "plan", "--json", str(manifest)],
            "interpreter + --version": [*base, "--version"],
        }
        for label, args in commands.items():
            times = time_command(args, options.repeat)
            print(f"{label:<24} best {min(times):.3f} s  median {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
