"""Benchmark 2, scale: a 10,000-job manifest through validate, plan, status and a done run,
then 100,000 shots from YAML through validate and plan; and (2b, ``run_shot_files``)
100,000 shots from YAML, CSV and JSONL through validate and plan.

The manifest comes from ``validate_plan.write_manifest`` (the four modes, shared images,
every seventh shot with two takes). One ``run`` of zero-length jobs against the simulator
makes every job done (setup, reported but not a target); then each command is timed as a
fresh process, a user's view: interpreter start included. The final ``run`` must find
everything done by size and time (no re-hash) and send nothing. The 100,000 shots are
planned as a new batch (no clip on disk yet).

2b writes the same shots three ways (a YAML list, a CSV table, JSONL lines: ``shots_from``)
and times ``validate`` and ``plan`` of each, interleaved in the same run so that the
machine's load falls on all three alike; then ``validate`` of a million JSONL rows, its
stderr on a terminal, for its peak memory and its progress display.
"""

from __future__ import annotations

import csv
import json
import os
import pty
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import harness
import validate_plan
from report import Section, fmt, ratio


@dataclass(frozen=True)
class Size:
    shots: int
    repeat: int
    #: Shots for ``validate_plan.py`` itself (issue 2's own benchmark, 10,000 shots).
    issue2_shots: int
    #: Shots of the large manifest that ``validate`` and ``plan`` read from YAML.
    large_shots: int


# 8,750 shots, every seventh with two takes: 10,000 jobs.
SIZES = {
    "full": Size(shots=8750, repeat=3, issue2_shots=10_000, large_shots=100_000),
    "quick": Size(shots=1750, repeat=1, issue2_shots=10_000, large_shots=20_000),
    "tiny": Size(shots=35, repeat=1, issue2_shots=20, large_shots=40),
}
WALL_LIMIT = 1.5
RSS_LIMIT_MIB = 200


@dataclass(frozen=True)
class FilesSize:
    shots: int
    repeat: int
    #: JSONL rows for the bounded-memory ``validate``.
    rows: int


FILES_SIZES = {
    "full": FilesSize(shots=100_000, repeat=3, rows=1_000_000),
    "quick": FilesSize(shots=20_000, repeat=1, rows=200_000),
    "tiny": FilesSize(shots=40, repeat=1, rows=200),
}
#: 100,000 shots from YAML (benchmark 2 and 2b): each command at most this long, in at most
#: this much memory.
YAML_WALL_LIMIT = 5.0
YAML_RSS_LIMIT_MIB = 400
#: From CSV or JSONL: at most these shares of the YAML time, measured in the same run.
VALIDATE_SHARE = 0.5
PLAN_SHARE = 0.6
FILES_RSS_LIMIT_MIB = 300
#: ``validate`` of a million JSONL rows.
MILLION_RSS_LIMIT_MIB = 400


def jobs_of(shots: int) -> int:
    return shots + (shots + 6) // 7


def run(mode: str) -> Section:
    size = SIZES[mode]
    jobs = jobs_of(size.shots)
    section = Section(
        "2. Scale",
        f"A manifest of {size.shots:,} shots, {jobs:,} jobs (`validate_plan.write_manifest`). "
        f"Each command runs {size.repeat}x as a fresh process; best and median wall time, "
        "the highest peak RSS. `status` and the last `run` see every job done. Then "
        f"`validate` and `plan` (a new batch) of {size.large_shots:,} shots "
        f"({jobs_of(size.large_shots):,} jobs) from the same generator's YAML.",
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
        _large(section, tmp / "large", size)
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


def _large(section: Section, folder: Path, size: Size) -> None:
    """``validate`` and ``plan`` (a new batch) of ``size.large_shots`` shots from YAML,
    interleaved in each round; the targets hold for 100,000 shots."""
    folder.mkdir()
    manifest = validate_plan.write_manifest(folder, size.large_shots)
    commands = {
        "validate": harness.shotrunner("validate", manifest),
        "plan": harness.shotrunner("plan", manifest, "--out", folder / "out"),
    }
    walls: dict[str, list[float]] = {label: [] for label in commands}
    rss = dict.fromkeys(commands, 0.0)
    for _ in range(size.repeat):
        for label, argv in commands.items():
            measured = harness.run_measured(
                argv, env=harness.runner_env(), output=folder / "cmd.log"
            )
            walls[label].append(measured.wall)
            rss[label] = max(rss[label], measured.maxrss_mib)
    shots = f"{size.large_shots:,} shots"
    for label, times in walls.items():
        median = statistics.median(times)
        section.rows.append(
            [f"{label} ({shots})", fmt(min(times), 3), fmt(median, 3), fmt(rss[label], 0), "-"]
        )
        section.target(
            f"`{label}` of {shots} wall",
            f"{fmt(min(times), 3)} s (median {fmt(median, 3)} s)",
            f"<= {YAML_WALL_LIMIT} s",
            median <= YAML_WALL_LIMIT,
        )
        section.target(
            f"`{label}` of {shots} peak RSS",
            f"{fmt(rss[label], 0)} MiB",
            f"<= {YAML_RSS_LIMIT_MIB} MiB",
            rss[label] <= YAML_RSS_LIMIT_MIB,
        )


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


def run_shot_files(mode: str) -> Section:
    """2b: the same shots from YAML, CSV and JSONL, then a million JSONL rows."""
    size = FILES_SIZES[mode]
    section = Section(
        "2b. Scale: shots from YAML, CSV and JSONL",
        f"The same {size.shots:,} shots ({jobs_of(size.shots):,} jobs, "
        "`validate_plan.write_manifest`'s) listed in the manifest, in a CSV table and in a JSONL "
        f"file (`shots_from`). Each command runs {size.repeat}x per source as a fresh process, "
        "the three sources interleaved in each round; best and median wall time, the highest "
        f"peak RSS. Then `validate` of {size.rows:,} JSONL rows with stderr on a terminal.",
        header=["source", "command", "best s", "median s", "share of YAML", "peak RSS MiB"],
    )
    with harness.scratch("shot-files") as tmp:
        manifests = write_sources(tmp, size.shots)
        for command in ("validate", "plan"):
            walls: dict[str, list[float]] = {source: [] for source in manifests}
            rss: dict[str, float] = dict.fromkeys(manifests, 0.0)
            said: dict[str, str] = {}
            for _ in range(size.repeat):
                for source, manifest in manifests.items():
                    output = tmp / f"{source}-{command}.txt"
                    measured = harness.run_measured(
                        harness.shotrunner(command, manifest, "--out", tmp / "out")
                        if command == "plan"
                        else harness.shotrunner(command, manifest),
                        env=harness.runner_env(),
                        output=output,
                    )
                    walls[source].append(measured.wall)
                    rss[source] = max(rss[source], measured.maxrss_mib)
                    said[source] = output.read_text(encoding="utf-8").splitlines()[-1]
            if (
                command == "validate"
                and len({line.split(": ", 1)[1] for line in said.values()}) != 1
            ):
                raise harness.BenchError(f"the three sources differ: {said}")
            _shot_files_rows(section, command, walls, rss)
        _million(section, tmp, size.rows)
    section.notes.append(
        "A target counts medians: the share is the median CSV (or JSONL) time over the median "
        "YAML time of the same run."
    )
    return section


def _shot_files_rows(
    section: Section, command: str, walls: dict[str, list[float]], rss: dict[str, float]
) -> None:
    yaml_median = statistics.median(walls["YAML"])
    share_limit = VALIDATE_SHARE if command == "validate" else PLAN_SHARE
    for source, times in walls.items():
        median = statistics.median(times)
        share = ratio(median, yaml_median)
        section.rows.append(
            [
                source,
                command,
                fmt(min(times), 3),
                fmt(median, 3),
                fmt(share, 2),
                fmt(rss[source], 0),
            ]
        )
        if source == "YAML":
            section.target(
                f"`{command}` from YAML wall",
                f"{fmt(median, 3)} s",
                f"<= {YAML_WALL_LIMIT} s",
                median <= YAML_WALL_LIMIT,
            )
            section.target(
                f"`{command}` from YAML peak RSS",
                f"{fmt(rss[source], 0)} MiB",
                f"<= {YAML_RSS_LIMIT_MIB} MiB",
                rss[source] <= YAML_RSS_LIMIT_MIB,
            )
            continue
        section.target(
            f"`{command}` from {source} / from YAML",
            f"{fmt(share, 2)}x ({fmt(median, 3)} s / {fmt(yaml_median, 3)} s)",
            f"<= {share_limit}x",
            share <= share_limit,
        )
        section.target(
            f"`{command}` from {source} peak RSS",
            f"{fmt(rss[source], 0)} MiB",
            f"<= {FILES_RSS_LIMIT_MIB} MiB",
            rss[source] <= FILES_RSS_LIMIT_MIB,
        )


def _million(section: Section, tmp: Path, rows: int) -> None:
    """``validate`` of ``rows`` JSONL rows, stderr on a terminal: its memory and progress."""
    folder = tmp / "million"
    folder.mkdir()
    with (folder / "shots.jsonl").open("w", encoding="utf-8") as handle:
        for index, shot in enumerate(_shots(rows)):
            shot["id"] = f"row-{index:07d}"
            handle.write(json.dumps(shot) + "\n")
    for sub in ("frames", "refs"):
        os.symlink(validate_plan.IMAGES / sub, folder / sub)
    manifest = folder / "million.yaml"
    manifest.write_text(_HEAD + "shots_from: shots.jsonl\n", encoding="utf-8")
    wall, rss_mib, returncode, shown = _on_terminal(harness.shotrunner("validate", manifest))
    if returncode != 0:
        raise harness.BenchError(f"validate of {rows:,} rows exited {returncode}")
    size_mib = (folder / "shots.jsonl").stat().st_size / 1024 / 1024
    section.rows.append(
        [
            f"JSONL, {rows:,} rows ({fmt(size_mib, 0)} MiB)",
            "validate",
            fmt(wall, 3),
            "-",
            "-",
            fmt(rss_mib, 0),
        ]
    )
    section.target(
        f"`validate` of {rows:,} JSONL rows peak RSS",
        f"{fmt(rss_mib, 0)} MiB",
        f"<= {MILLION_RSS_LIMIT_MIB} MiB",
        rss_mib <= MILLION_RSS_LIMIT_MIB,
    )
    progress = f"checking {manifest.name}" in shown
    section.target(
        f"`validate` of {rows:,} JSONL rows shows progress on a terminal",
        "shown" if progress else "not shown",
        "shown",
        progress,
    )


def _on_terminal(argv: list[str]) -> tuple[float, float, int, str]:
    """Run ``argv`` with stderr on a pseudo-terminal (stdout discarded), from the folder of
    its last argument: wall time, peak RSS in MiB, exit code, and what the terminal showed."""
    target = Path(argv[-1])
    argv = [*argv[:-1], target.name]
    leader, follower = pty.openpty()
    shown: list[bytes] = []

    def drain() -> None:  # a terminal that is not read fills up and stops the child
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {**os.environ, **harness.runner_env(), "TERM": "xterm", "COLUMNS": "100"}
    with tempfile.NamedTemporaryFile("r", prefix="shotrunner-bench-rss-") as rss:
        launch = argv
        if harness.GNU_TIME.exists():
            launch = [str(harness.GNU_TIME), "-f", "%M", "-o", rss.name, *argv]
        begin = time.perf_counter()
        process = subprocess.Popen(
            launch, cwd=target.parent, stdout=subprocess.DEVNULL, stderr=follower, env=env
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - begin
        process.returncode = os.waitstatus_to_exitcode(status)
        os.close(follower)
        reader.join(timeout=10)
        os.close(leader)
        report = rss.read().strip().splitlines()
    peak_kib = int(report[-1]) if report and report[-1].strip().isdigit() else usage.ru_maxrss
    return wall, peak_kib / 1024, process.returncode, b"".join(shown).decode("utf-8", "replace")


_HEAD = """\
version: 1
name: bench
vars:
  hero: a red-haired surfer in a yellow wetsuit
defaults:
  seconds: 8
  aspect_ratio: "16:9"
  resolution: 720p
"""


def _shots(count: int) -> Iterator[dict[str, object]]:
    """``validate_plan.write_manifest``'s shots as values, for the CSV and JSONL sources."""
    for index in range(count):
        mode, images = validate_plan.MODES[index % len(validate_plan.MODES)]
        shot: dict[str, object] = {
            "id": f"shot-{index:05d}",
            "prompt": f"${{hero}} in shot {index}, cinematic, take the wave",
        }
        if mode != "text":
            shot["mode"] = mode
            shot["images"] = images
        if index % 7 == 0:
            shot["takes"] = 2
        yield shot


def write_sources(folder: Path, count: int) -> dict[str, Path]:
    """The same ``count`` shots as a YAML manifest, a CSV table and a JSONL file, each with
    its manifest, in ``folder`` (with the example images)."""
    yaml_manifest = validate_plan.write_manifest(folder, count)
    if not yaml_manifest.read_text(encoding="utf-8").startswith(_HEAD):
        raise harness.BenchError("validate_plan.write_manifest changed its head; update _HEAD")
    shots = list(_shots(count))
    with (folder / "shots.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "images", "takes"])
        for shot in shots:
            images = shot.get("images", [])
            assert isinstance(images, list)
            writer.writerow(
                [
                    shot["id"],
                    shot["prompt"],
                    shot.get("mode", ""),
                    ";".join(images),
                    shot.get("takes", ""),
                ]
            )
    with (folder / "shots.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(shot) + "\n" for shot in shots)
    manifests = {"YAML": yaml_manifest}
    for source, name in (("CSV", "shots.csv"), ("JSONL", "shots.jsonl")):
        manifest = folder / f"{source.lower()}.yaml"
        manifest.write_text(_HEAD + f"shots_from: {name}\n", encoding="utf-8")
        manifests[source] = manifest
    return manifests
