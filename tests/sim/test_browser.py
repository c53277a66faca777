"""The served clip plays in a real browser: headless Chromium decodes it, padded or not.

Drives the system's Chromium through Playwright; skipped where either is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins.chromium import CHROMIUM_FLAGS, SKIP_REASON, find_chromium
from tests.plugins.sim_fixtures import StartSim
from tests.sim.conftest import Connect, create

pytestmark = pytest.mark.browser

PLAYS = """async (urls) => {
  const results = [];
  for (const url of urls) {
    const video = document.createElement("video");
    video.muted = true;
    video.src = url;
    document.body.appendChild(video);
    const advanced = new Promise((resolve, reject) => {
      video.addEventListener("timeupdate", () => video.currentTime > 0 && resolve());
      video.addEventListener("error", () => reject(new Error(video.error.message)));
      setTimeout(() => reject(new Error("the clip did not play")), 10000);
    });
    await video.play();
    await advanced;
    results.push({time: video.currentTime, error: video.error && video.error.message,
                  width: video.videoWidth});
  }
  return results;
}"""


def test_clips_play_in_chromium_padded_or_not(
    start_sim: StartSim, connect: Connect, tmp_path: Path
) -> None:
    """Chromium plays a task's clip from the file host, with and without clip_bytes padding."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(SKIP_REASON)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    urls = []
    for clip_bytes in (None, 3_000_000):
        sim = start_sim(job_seconds=0.0, clip_bytes=clip_bytes)
        client = connect(sim)
        urls.append(client.get(f"/videos/{create(client).json()['id']}").json()["video_url"])
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page()
            results = page.evaluate(PLAYS, urls)
        finally:
            browser.close()
    for result in results:
        assert result["error"] is None and result["width"] == 256
        assert result["time"] > 0
