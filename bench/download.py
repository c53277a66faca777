"""Benchmark 3, download: one big clip through shotrunner's download path, the SDK and curl.

The simulator pads its clip to the size asked (``--clip-bytes``). shotrunner's path is
``ApiClient.download`` (stream, sha256, write) from the signed file URL, in a process of
its own (``bench/download_one.py``); the SDK's is ``videos.download_content(...)
.write_to_file(...)`` through the gateway's content route; curl fetches the same file URL
and is the physical reference. Each side runs ``repeat`` times, best throughput kept; every
file is deleted as soon as it is measured and the folder removed at the end.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import harness
import httpx
from report import Section, fmt, ratio

MB = 1_000_000
MIB = 1024 * 1024


@dataclass(frozen=True)
class Size:
    clip_bytes: int
    repeat: int


SIZES = {
    "full": Size(clip_bytes=1024 * MIB, repeat=2),
    "quick": Size(clip_bytes=256 * MIB, repeat=1),
    "tiny": Size(clip_bytes=2 * MIB, repeat=1),
}


@dataclass(frozen=True)
class Fetch:
    seconds: float
    growth_mib: float | None
    peak_mib: float

    def throughput(self, size: int) -> float:
        return size / self.seconds / MB


def run(mode: str) -> Section:
    size = SIZES[mode]
    mib = size.clip_bytes / MIB
    section = Section(
        "3. Download",
        f"One clip of {mib:,.0f} MiB from the simulator; each side {size.repeat}x, the best "
        "kept. Throughput counts the transfer only (shotrunner and the SDK time it inside "
        "their process; curl's own `time_total`). RSS growth: peak minus the RSS just before "
        "the transfer.",
        header=["side", "route", "seconds", "MB/s", "x curl", "RSS growth MiB", "peak RSS MiB"],
    )
    with (
        harness.scratch("download") as tmp,
        harness.simulator(tmp, job_seconds=0.0, clip_bytes=size.clip_bytes) as sim,
    ):
        task_id, url = _finished_task(sim.base_url)
        sides = {
            "curl": lambda: _curl(tmp, url),
            "shotrunner": lambda: _shotrunner(tmp, sim.base_url, url, size.clip_bytes),
            "openai SDK": lambda: _sdk(tmp, sim.base_url, task_id, size.clip_bytes),
        }
        best: dict[str, Fetch] = {}
        for name, fetch in sides.items():
            results = [fetch() for _ in range(size.repeat)]
            best[name] = min(results, key=lambda f: f.seconds)
    routes = {"curl": "file URL", "shotrunner": "file URL", "openai SDK": "/videos/{id}/content"}
    curl_rate = best["curl"].throughput(size.clip_bytes)
    for name, fetch in best.items():
        rate = fetch.throughput(size.clip_bytes)
        growth = "-" if fetch.growth_mib is None else fmt(fetch.growth_mib, 0)
        section.rows.append(
            [
                name,
                routes[name],
                fmt(fetch.seconds),
                fmt(rate, 0),
                fmt(ratio(rate, curl_rate)),
                growth,
                fmt(fetch.peak_mib, 0),
            ]
        )
    ours, sdk = best["shotrunner"], best["openai SDK"]
    ours_rate, sdk_rate = ours.throughput(size.clip_bytes), sdk.throughput(size.clip_bytes)
    section.target(
        "throughput vs the SDK",
        f"{fmt(ratio(ours_rate, sdk_rate))}x ({fmt(ours_rate, 0)} vs {fmt(sdk_rate, 0)} MB/s)",
        ">= 1.0x",
        ours_rate >= sdk_rate,
    )
    section.target("throughput", f"{fmt(ours_rate, 0)} MB/s", ">= 250 MB/s", ours_rate >= 250)
    growth_mib = ours.growth_mib or 0.0
    section.target("RSS growth", f"{fmt(growth_mib, 0)} MiB", "< 64 MiB", growth_mib < 64)
    section.notes.append(
        f"curl, the physical reference (no hashing), reached {fmt(curl_rate, 0)} MB/s; "
        f"shotrunner {fmt(ratio(ours_rate, curl_rate))}x of it. The simulator serving the "
        "file runs in the harness process, so every side shares its ceiling."
    )
    return section


def _finished_task(api_base: str) -> tuple[str, str]:
    """Create one zero-length task and return its id and signed file URL once completed."""
    headers = {"Authorization": f"Bearer {harness.API_KEY}"}
    body = {"model": "omni-fast", "prompt": "a big clip", "seconds": "8"}
    with httpx.Client(headers=headers) as client:
        task = client.post(f"{api_base}/videos", json=body).raise_for_status().json()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            task = client.get(f"{api_base}/videos/{task['id']}").raise_for_status().json()
            if task["status"] == "completed" and task.get("video_url"):
                return str(task["id"]), str(task["video_url"])
            time.sleep(0.05)
    raise harness.BenchError(f"task {task['id']} did not complete: {task}")


def _curl(tmp: Path, url: str) -> Fetch:
    target = tmp / "curl.mp4"
    measured = harness.run_measured(
        ["curl", "-sS", "--fail", "-o", target, "-w", "%{time_total}", url],
        output=tmp / "curl.out",
    )
    seconds = float((tmp / "curl.out").read_text().strip())
    target.unlink()
    return Fetch(seconds, None, measured.maxrss_mib)


def _shotrunner(tmp: Path, api_base: str, url: str, expected: int) -> Fetch:
    part = tmp / "runner.mp4.part"
    result = tmp / "runner.json"
    measured = harness.run_measured(
        [harness.PYTHON, harness.BENCH / "download_one.py", api_base, url, part, result],
        env=harness.runner_env(),
        output=tmp / "runner.log",
    )
    return _child_fetch(result, part, expected, measured)


def _sdk(tmp: Path, api_base: str, task_id: str, expected: int) -> Fetch:
    result = tmp / "sdk.json"
    out = tmp / "sdk"
    argv = [harness.PYTHON, harness.BENCH / "sdk_batch.py", "--base-url", api_base]
    argv += ["--out", out, "--download", task_id, "--result", result]
    measured = harness.run_measured(
        argv, env={"OPENAI_API_KEY": harness.API_KEY}, output=tmp / "sdk.log"
    )
    return _child_fetch(result, out / f"{task_id}.mp4", expected, measured)


def _child_fetch(result: Path, file: Path, expected: int, measured: harness.Measured) -> Fetch:
    report = json.loads(result.read_text(encoding="utf-8"))
    got = file.stat().st_size
    file.unlink()
    if got != expected or report["bytes"] != expected:
        raise harness.BenchError(f"{file.name}: {got} bytes, expected {expected}")
    growth = (report["rss_peak_kib"] - report["rss_before_kib"]) / 1024
    return Fetch(report["seconds"], growth, measured.maxrss_mib)
