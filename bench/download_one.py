"""shotrunner's download path on one clip, in a process of its own: stream, hash, write.

Run: ``python bench/download_one.py API_BASE URL PART_FILE RESULT_JSON`` (key in
``SHOTRUNNER_API_KEY``). It calls the runner's ``ApiClient.download`` exactly as the engine
does and writes the bytes, seconds, sha256 and the process's memory before and at peak.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from runner.api.client import ApiClient


async def download(api_base: str, url: str, part: Path) -> dict[str, object]:
    async with ApiClient(api_base, os.environ["SHOTRUNNER_API_KEY"]) as client:
        before = _rss_kib("VmRSS")
        start = time.perf_counter()
        done = await client.download(url, part)
        seconds = time.perf_counter() - start
    return {
        "bytes": done.bytes,
        "sha256": done.sha256,
        "seconds": seconds,
        "rss_before_kib": before,
        "rss_peak_kib": _rss_kib("VmHWM"),
    }


def _rss_kib(field: str) -> int:
    """A memory figure of this process from /proc (VmRSS now, VmHWM the peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> int:
    api_base, url, part, result = sys.argv[1:5]
    report = asyncio.run(download(api_base, url, Path(part)))
    Path(result).write_text(json.dumps(report), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
