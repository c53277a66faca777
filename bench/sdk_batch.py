"""The alternative a Python user would write: the official ``openai`` SDK in a thread pool.

Run: ``python bench/sdk_batch.py --base-url URL --jobs N --workers W --out DIR``
(``OPENAI_API_KEY`` in the environment). Each job creates a task, waits for it with
``videos.poll`` (the SDK's own polling: every second unless the server says otherwise) and
writes the clip with ``videos.download_content(...).write_to_file(...)``. The create goes
through ``client.post`` so that the body is JSON, as this API expects, not the multipart form
that ``videos.create`` sends. ``--download TASK_ID`` only downloads one finished clip.

A JSON summary (each job's task id, status and file) goes to ``--result`` when given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from openai import OpenAI
from openai.types import Video

# The SDK marks its video methods deprecated for its own service; this API is another one.
warnings.simplefilter("ignore", DeprecationWarning)


def render(client: OpenAI, index: int, out: Path, poll_ms: int | None) -> dict[str, Any]:
    """One job, start to end: create (JSON), poll to the end, download."""
    body = {
        "model": "omni-fast",
        "prompt": f"Ocean waves at golden hour, shot {index}, cinematic",
        "seconds": "8",
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    video = client.post("/videos", body=body, cast_to=Video)
    if poll_ms is None:
        video = client.videos.poll(video.id)
    else:
        video = client.videos.poll(video.id, poll_interval_ms=poll_ms)
    if video.status != "completed":
        return {"index": index, "task_id": video.id, "status": video.status, "file": None}
    path = out / f"{video.id}.mp4"
    client.videos.download_content(video.id).write_to_file(path)
    return {"index": index, "task_id": video.id, "status": "completed", "file": str(path)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--poll-ms", type=int, default=None, help="default: the SDK's own")
    parser.add_argument("--result", type=Path, default=None)
    parser.add_argument("--download", metavar="TASK_ID", default=None)
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    client = OpenAI(base_url=options.base_url)
    if options.download:
        return download_one(client, options.download, options.out, options.result)
    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        jobs = [
            pool.submit(render, client, index, options.out, options.poll_ms)
            for index in range(options.jobs)
        ]
        results = [job.result() for job in jobs]
    if options.result is not None:
        options.result.write_text(json.dumps(results), encoding="utf-8")
    failed = sum(result["status"] != "completed" for result in results)
    print(f"{len(results) - failed} completed, {failed} failed")
    return 1 if failed else 0


def download_one(client: OpenAI, task_id: str, out: Path, result: Path | None) -> int:
    """Download one finished clip the way the SDK documents, and report time and memory."""
    before = _rss_kib("VmRSS")
    start = time.perf_counter()
    path = out / f"{task_id}.mp4"
    client.videos.download_content(task_id).write_to_file(path)
    seconds = time.perf_counter() - start
    report = {
        "bytes": path.stat().st_size,
        "seconds": seconds,
        "rss_before_kib": before,
        "rss_peak_kib": _rss_kib("VmHWM"),
    }
    if result is not None:
        result.write_text(json.dumps(report), encoding="utf-8")
    return 0


def _rss_kib(field: str) -> int:
    """A memory figure of this process from /proc (VmRSS now, VmHWM the peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
