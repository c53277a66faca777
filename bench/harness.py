"""Measurement plumbing shared by the benchmarks: processes, the simulator, manifests, machine.

Every side of a comparison runs as its own child process, so that its CPU time and peak RSS
are its own (``os.wait4`` gives the rusage of exactly that child); the simulator runs in this
process, in a thread, so that its recorder counts every HTTP request both sides send and its
state file says when each task finished on the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
#: GNU time measures a child's peak RSS from a fork of itself. A child forked straight from
#: this process would report at least this process's RSS (Linux counts the memory it had
#: before ``exec``), and this process holds the simulator.
GNU_TIME = Path("/usr/bin/time")
#: The key both sides present; the simulator checks it, as the real service would.
API_KEY = "bench-key"


@dataclass(frozen=True)
class Measured:
    """One child process: wall time, CPU seconds, peak RSS, exit status, where its output went."""

    argv: tuple[str, ...]
    wall: float
    user: float
    system: float
    maxrss_kib: int
    returncode: int
    output: Path | None
    started: float

    @property
    def cpu(self) -> float:
        return self.user + self.system

    @property
    def maxrss_mib(self) -> float:
        return self.maxrss_kib / 1024

    def tail(self, lines: int = 15) -> str:
        """The end of the child's output, for an error message."""
        if self.output is None or not self.output.exists():
            return ""
        text = self.output.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class BenchError(RuntimeError):
    """A benchmark could not be measured (a side failed, a file is missing)."""


def run_measured(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    output: Path | None = None,
    check: bool = True,
) -> Measured:
    """Run ``argv`` to its end; its rusage (CPU, peak RSS) is that child's alone.

    ``os.wait4`` reports the child and the descendants it waited for (curl under bash), and
    nothing else this process has run, so sides measured one after the other never mix.
    """
    args = tuple(str(a) for a in argv)
    full_env = dict(os.environ)
    full_env.update(env or {})
    sink = output.open("wb") if output is not None else subprocess.DEVNULL
    with tempfile.NamedTemporaryFile("r", prefix="shotrunner-bench-rss-") as rss:
        launch = args
        if GNU_TIME.exists():
            launch = (str(GNU_TIME), "-f", "%M", "-o", rss.name, *args)
        try:
            started = time.time()
            begin = time.perf_counter()
            process = subprocess.Popen(
                launch, env=full_env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
            )
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - begin
            # Popen must not wait for a pid that is already reaped.
            process.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if output is not None and not isinstance(sink, int):
                sink.close()
        maxrss = _peak_rss(rss.read(), usage.ru_maxrss)
    measured = Measured(
        argv=args,
        wall=wall,
        user=usage.ru_utime,
        system=usage.ru_stime,
        maxrss_kib=maxrss,
        returncode=process.returncode,
        output=output,
        started=started,
    )
    if check and measured.returncode != 0:
        raise BenchError(
            f"{' '.join(args[:4])}... exited {measured.returncode}:\n{measured.tail()}"
        )
    return measured


def _peak_rss(report: str, fallback: int) -> int:
    """The child's peak RSS in KiB from GNU time's report (its last line)."""
    lines = report.strip().splitlines()
    if lines and lines[-1].strip().isdigit():
        return int(lines[-1])
    return fallback


def compile_bytecode() -> None:
    """Compile the runner's modules to bytecode, as installing a wheel does.

    From a source tree with ``PYTHONDONTWRITEBYTECODE`` set, every run would otherwise compile
    its own modules again at start (about 0.08 CPU s), which no installed copy does.
    """
    import compileall

    compileall.compile_dir(ROOT / "runner", quiet=1)


def shotrunner(*args: str | os.PathLike[str]) -> list[str]:
    """The argv of a shotrunner command, as a user would start it (interpreter start included)."""
    return [PYTHON, "-m", "runner", *(str(a) for a in args)]


def runner_env() -> dict[str, str]:
    return {"SHOTRUNNER_API_KEY": API_KEY, "NO_COLOR": "1"}


# ----- the simulator -----------------------------------------------------------------------


@contextlib.contextmanager
def simulator(folder: Path, **knobs: Any) -> Iterator[Any]:
    """A simulator in a thread of this process, keeping its tasks in ``folder/sim.db``."""
    from runner.sim import SimConfig, start_in_thread

    config = SimConfig(token=API_KEY, state_path=folder / "sim.db", **knobs)
    running = start_in_thread(config)
    try:
        yield running
    finally:
        running.stop()


@dataclass(frozen=True)
class Traffic:
    """What one side sent to the simulator, counted by the simulator's recorder."""

    creates: int
    creates_429: int
    polls: int
    downloads: int
    other: int
    tasks_created: int

    @property
    def total(self) -> int:
        return self.creates + self.polls + self.downloads + self.other

    @property
    def share_429(self) -> float:
        return self.creates_429 / self.creates if self.creates else 0.0

    def per_job(self, jobs: int) -> float:
        return self.total / jobs


def traffic(requests: Sequence[Any]) -> Traffic:
    """Sort recorded requests into creates, polls and downloads (either listener)."""
    creates = creates_429 = polls = downloads = other = tasks = 0
    for request in requests:
        path = request.path
        if request.listener == "files" or path.endswith("/content"):
            downloads += 1
        elif request.method == "POST" and path.endswith("/videos"):
            creates += 1
            creates_429 += request.status == 429
            tasks += request.created
        elif request.method == "GET" and "/videos/" in path:
            polls += 1
        else:
            other += 1
    return Traffic(creates, creates_429, polls, downloads, other, tasks)


def task_finish_times(state_db: Path) -> dict[str, float]:
    """Each task's completion time on the server (epoch seconds), from the simulator's state.

    A simulated task's status follows from its creation time and duration alone, so
    ``created_at + duration`` is exactly when it turned ``completed``.
    """
    db = sqlite3.connect(state_db)
    try:
        rows = db.execute("SELECT id, created_at + duration FROM tasks").fetchall()
    finally:
        db.close()
    return {task_id: float(done) for task_id, done in rows}


# ----- manifests -----------------------------------------------------------------------------


def write_text_manifest(folder: Path, jobs: int, *, name: str = "bench") -> Path:
    """A manifest of ``jobs`` distinct text shots (one job each), output beside it."""
    lines = [
        "version: 1",
        f"name: {name}",
        "output_dir: out",
        "defaults:",
        "  seconds: 8",
        '  aspect_ratio: "16:9"',
        "  resolution: 720p",
        "shots:",
    ]
    for index in range(jobs):
        lines.append(f"  - id: shot-{index:05d}")
        lines.append(f"    prompt: Ocean waves at golden hour, shot {index}, cinematic")
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sidecars(out: Path) -> list[dict[str, Any]]:
    """Every clip sidecar under a shotrunner output folder, with its clip's path added."""
    found = []
    for sidecar in sorted(out.glob("*/take-*.json")):
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        data["_clip"] = sidecar.with_suffix(".mp4")
        found.append(data)
    return found


# ----- delays --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delays:
    """Seconds from a task's completion on the server to its clip whole on disk."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def worst(self) -> float:
        return max(self.values) if self.values else float("nan")


def delays(finished: Mapping[str, float], clips: Mapping[str, Path]) -> Delays:
    """Delay per task: the clip file's modification time (its last byte) minus completion.

    The runner writes a ``.part`` file and renames it when whole; a rename keeps the
    modification time, so the final file's mtime is when its last byte landed.
    """
    values = []
    for task_id, clip in clips.items():
        if task_id in finished and clip.exists():
            values.append(clip.stat().st_mtime - finished[task_id])
    return Delays(sorted(values))


# ----- the machine ---------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("shotrunner", "openai", "httpx", "aiohttp"):
        versions[package] = _version(package)
    curl = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=False)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{_mem_total_gib():.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        **versions,
        "curl": (curl.stdout.split() or ["?", "?"])[1],
        "commit": commit.stdout.strip() or "?",
        "load average at start": load,
    }


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _mem_total_gib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder that is removed afterwards, whatever happens."""
    with tempfile.TemporaryDirectory(prefix=f"shotrunner-bench-{prefix}-") as tmp:
        yield Path(tmp)


# ----- one side of a batch comparison --------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One side's batch: the process, its traffic, its delivered clips and their delays."""

    name: str
    jobs: int
    process: Measured
    traffic: Traffic
    delivered: int
    delays: Delays

    @property
    def cpu_per_1000(self) -> float:
        return self.process.cpu / self.jobs * 1000

    @property
    def requests_per_job(self) -> float:
        return self.traffic.per_job(self.jobs)


def shotrunner_batch(
    folder: Path, sim: Any, jobs: int, options: Sequence[str], *, name: str = "shotrunner"
) -> Side:
    """``shotrunner run`` over ``jobs`` text shots against ``sim``; every clip must arrive."""
    manifest = write_text_manifest(folder, jobs)
    sim.recorder.clear()
    process = run_measured(
        shotrunner("run", manifest, "--api-base", sim.base_url, *options),
        env=runner_env(),
        output=folder / "runner.log",
    )
    found = sidecars(folder / "out")
    clips = {data["task_id"]: data["_clip"] for data in found}
    return _side(name, jobs, process, sim, folder / "sim.db", clips)


def sdk_batch(
    folder: Path, sim: Any, jobs: int, workers: int, *, poll_ms: int | None = None
) -> Side:
    """``bench/sdk_batch.py`` (the openai SDK in a thread pool) against ``sim``."""
    sim.recorder.clear()
    result = folder / "sdk.json"
    argv = [PYTHON, BENCH / "sdk_batch.py", "--base-url", sim.base_url, "--jobs", str(jobs)]
    argv += ["--workers", str(workers), "--out", folder / "sdk", "--result", result]
    if poll_ms is not None:
        argv += ["--poll-ms", str(poll_ms)]
    process = run_measured(argv, env={"OPENAI_API_KEY": API_KEY}, output=folder / "sdk.log")
    done = json.loads(result.read_text(encoding="utf-8"))
    clips = {item["task_id"]: Path(item["file"]) for item in done if item["file"]}
    return _side("openai SDK", jobs, process, sim, folder / "sim.db", clips)


def curl_batch(folder: Path, sim: Any, jobs: int, poll: float) -> Side:
    """``bench/curl_loop.sh``: one job after another."""
    sim.recorder.clear()
    out = folder / "curl"
    process = run_measured(
        ["bash", BENCH / "curl_loop.sh", sim.base_url, str(jobs), out, str(poll)],
        env={"API_KEY": API_KEY},
        output=folder / "curl.log",
    )
    clips = {path.stem: path for path in out.glob("*.mp4")}
    return _side("curl loop (sequential)", jobs, process, sim, folder / "sim.db", clips)


def _side(
    name: str, jobs: int, process: Measured, sim: Any, state: Path, clips: dict[str, Path]
) -> Side:
    if len(clips) != jobs:
        raise BenchError(f"{name}: {len(clips)} of {jobs} clips arrived\n{process.tail()}")
    finished = task_finish_times(state)
    return Side(
        name, jobs, process, traffic(sim.recorder.requests), len(clips), delays(finished, clips)
    )
