"""Finding the system's Chromium for the browser tests (Playwright never downloads its own)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: Headless flags that keep Chromium quiet, offline and able to run as root in a container.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SKIP_REASON = "no Chromium found (install Debian's chromium package or set CHROME_BIN)"


def find_chromium() -> str | None:
    """Chromium from CHROME_BIN, else the system's (Debian installs /usr/bin/chromium)."""
    for candidate in (
        os.environ.get("CHROME_BIN"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None
