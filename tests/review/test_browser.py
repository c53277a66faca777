"""The contact sheet in a real browser: headless Chromium opens it from file:// and plays it.

Playwright drives the system's Chromium (Debian's ``chromium`` package); Playwright's own
browser downloads are never used. Skipped, with the reason, only where no Chromium exists.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runner.jobs import fingerprint
from runner.report import write_report
from runner.store import RenderRow, Store
from tests.plugins.sim_fixtures import StartSim
from tests.review.conftest import Batch, MakeBatch
from tests.review.pagehelpers import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

FAILED_ERROR = "upstream_error: the model crashed on this prompt"


@pytest.fixture
def reviewed_batch(batch: Batch) -> Batch:
    """A batch in every state the page shows: done, picked, rejected, failed, in flight, idle."""
    batch.done("s01-wide", 1)
    batch.done("s02-hero", 1)
    batch.failed("s02-hero", 2, FAILED_ERROR)
    batch.in_flight("s02-hero", 3, state="running", progress=55.0)
    batch.done("s03-turn", 1)
    batch.done("s03-turn", 2)
    with Store.open(batch.out) as store:
        store.set_verdict("s03-turn", 2, "picked")
        store.set_verdict("s03-turn", 1, "rejected")
        write_report(batch.manifest, store)
    return batch


def visible_shots(tab: Page) -> list[str]:
    return [str(s.get_attribute("data-shot")) for s in tab.locator("section.shot:visible").all()]


def assert_every_finished_take_plays(tab: Page, done: int) -> None:
    """Each done take's card holds a <video> that Chromium decodes (readyState >= 2)."""
    cards = tab.locator('article[data-status="done"]')
    assert cards.count() == done
    assert tab.locator('article[data-status="done"] video').count() == done
    assert tab.locator("video").count() == done  # and no other card has one
    # Playing (muted, so allowed without a gesture) proves the clip decodes, not just parses.
    tab.evaluate("document.querySelectorAll('video').forEach(v => v.play())")
    wait_until(
        tab,
        "Array.from(document.querySelectorAll('video'))"
        ".every(v => v.readyState >= 2 && v.error === null)",
        timeout=20,
    )


def assert_thumbnails_load(tab: Page) -> None:
    """Every input image thumbnail was found and decoded from its relative path."""
    wait_until(tab, "Array.from(document.images).every(i => i.complete)")
    widths = tab.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
    assert widths and all(width > 0 for width in widths)


def save_screenshot(tab: Page, path: Path) -> None:
    """A full-page PNG for people to look at; ``CONTACT_SHEET_SCREENSHOT`` keeps a copy."""
    tab.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("CONTACT_SHEET_SCREENSHOT")
    if keep:
        shutil.copyfile(path, keep)


def test_contact_sheet_plays_and_filters_in_chromium(
    page: tuple[Page, list[str]], reviewed_batch: Batch, tmp_path: Path
) -> None:
    """From file:// the page logs no error, every clip plays, errors show, the filters work."""
    tab, errors = page
    tab.goto((reviewed_batch.out / "index.html").as_uri())

    assert_every_finished_take_plays(tab, done=4)  # s01-wide 1, s02-hero 1, s03-turn 1 and 2
    assert_thumbnails_load(tab)

    failed = tab.locator('section[data-shot="s02-hero"] .error')
    assert failed.is_visible()
    assert failed.inner_text() == FAILED_ERROR

    save_screenshot(tab, tmp_path / "contact-sheet.png")

    assert visible_shots(tab) == ["s01-wide", "s02-hero", "s03-turn"]
    tab.click('button[data-filter="failed"]')
    assert visible_shots(tab) == ["s02-hero"]
    tab.click('button[data-filter="inflight"]')
    assert visible_shots(tab) == ["s02-hero"]
    tab.click('button[data-filter="picked"]')
    assert visible_shots(tab) == ["s03-turn"]
    assert tab.get_attribute('button[data-filter="picked"]', "aria-pressed") == "true"
    tab.click('button[data-filter="picked"]')  # a second click shows everything again
    assert visible_shots(tab) == ["s01-wide", "s02-hero", "s03-turn"]

    assert errors == []


SIMULATED_STORYBOARD = """\
version: 1
name: simulated
defaults:
  seconds: 4
shots:
  - id: s01-wide
    prompt: Ocean waves rolling onto a sandy beach at golden hour
  - id: s02-hero
    mode: first_frame
    images: [frames/s02.png]
    prompt: A surfer walks into frame
    takes: 2
  - id: s03-turn
    prompt: the camera orbits from dusk to night
  - id: s04-night
    prompt: the pier at night, lanterns swaying
"""


def shotrunner(batch: Batch, base_url: str, *args: str) -> subprocess.Popen[str]:
    """``shotrunner run`` of the batch against a simulator, as its own process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "run",
            str(batch.manifest_path),
            "--api-base",
            base_url,
            "--poll-interval",
            "0.1",
            *args,
        ],
        env={**os.environ, "SHOTRUNNER_API_KEY": "sk-review-test", "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def job_state(batch: Batch, shot: str) -> str | None:
    store = Store.open_existing(batch.out)
    if store is None:
        return None
    with store:
        return next((str(r["state"]) for r in store.job_states() if r["shot"] == shot), None)


@pytest.fixture
def simulated_batch(make_batch: MakeBatch, start_sim: StartSim) -> Batch:
    """A batch rendered by ``shotrunner run`` against the simulator: three takes done, one
    failed (fail knob), one left in flight (a task that never ends, run interrupted)."""
    batch = make_batch(SIMULATED_STORYBOARD)
    good = start_sim()
    code, stderr = finish(
        shotrunner(batch, good.base_url, "--only", "s01-wide", "--only", "s02-hero")
    )
    assert code == 0, stderr
    failing = start_sim(fail_rate=1.0)
    code, stderr = finish(
        shotrunner(batch, failing.base_url, "--only", "s03-turn", "--max-attempts", "1")
    )
    assert code == 1, stderr
    hanging = start_sim(hang_rate=1.0)
    process = shotrunner(batch, hanging.base_url, "--only", "s04-night")
    deadline = time.monotonic() + 30
    while job_state(batch, "s04-night") not in ("queued", "running"):
        assert time.monotonic() < deadline, "s04-night never reached the service"
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    code, stderr = finish(process)
    assert code == 130, stderr
    return batch


def test_report_of_a_simulated_run_plays_and_filters_in_chromium(
    page: tuple[Page, list[str]], simulated_batch: Batch, tmp_path: Path
) -> None:
    """The page of a real simulated run (after ``pick``) plays, shows the error, filters."""
    from click.testing import CliRunner

    from runner.cli import cli

    batch = simulated_batch
    picked = CliRunner().invoke(cli, ["pick", str(batch.manifest_path), "s02-hero", "2"])
    assert picked.exit_code == 0, picked.stderr
    with batch.store() as store:
        error = next(r["error"] for r in store.job_states() if r["shot"] == "s03-turn")
    tab, errors = page
    tab.goto((batch.out / "index.html").as_uri())

    assert_every_finished_take_plays(tab, done=3)
    assert_thumbnails_load(tab)
    shown = tab.locator('section[data-shot="s03-turn"] .error')
    assert shown.is_visible()
    assert error and shown.inner_text() == error
    save_screenshot(tab, tmp_path / "contact-sheet.png")

    tab.click('button[data-filter="failed"]')
    assert visible_shots(tab) == ["s03-turn"]
    tab.click('button[data-filter="inflight"]')
    assert visible_shots(tab) == ["s04-night"]
    tab.click('button[data-filter="picked"]')
    assert visible_shots(tab) == ["s02-hero"]
    tab.click('button[data-filter="all"]')
    assert visible_shots(tab) == ["s01-wide", "s02-hero", "s03-turn", "s04-night"]

    assert errors == []


HOSTILE_PROMPT = "<script>window.pwned = 'prompt'</script> waves <b>crash</b>"
HOSTILE_ERROR = "<img src=x onerror=\"window.pwned = 'error'\"> policy says no"


def test_markup_in_prompts_and_errors_never_runs(
    page: tuple[Page, list[str]], make_batch: MakeBatch
) -> None:
    """A prompt holding <script> and an error holding an onerror handler show as plain text
    in Chromium, and neither runs."""
    batch = make_batch(
        f"version: 1\nshots:\n  - id: s1\n    prompt: {json.dumps(HOSTILE_PROMPT)}\n"
    )
    batch.failed("s1", 1, HOSTILE_ERROR)
    with batch.store() as store:
        write_report(batch.manifest, store)
    tab, errors = page
    tab.goto((batch.out / "index.html").as_uri())
    assert tab.locator(".prompt").inner_text() == HOSTILE_PROMPT
    assert tab.locator(".error").inner_text() == HOSTILE_ERROR
    assert tab.evaluate("window.pwned === undefined")
    assert tab.locator("main script, main img, main b").count() == 0
    assert errors == []


def test_a_big_sheet_loads_clips_only_as_they_come_into_view(
    page: tuple[Page, list[str]], make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the eager limit, a clip near the top preloads its metadata at once; one far
    below loads nothing until it is scrolled to, then becomes ready."""
    monkeypatch.setattr("runner.report.EAGER_VIDEOS", 0)
    shots = "".join(f"  - id: s{n:02d}\n    prompt: shot {n}\n" for n in range(30))
    batch = make_batch(f"version: 1\nshots:\n{shots}")
    for shot in batch.manifest.shots:
        batch.done(shot.id, 1)
    with batch.store() as store:
        write_report(batch.manifest, store)
    tab, errors = page
    tab.goto((batch.out / "index.html").as_uri())
    first, last = tab.locator("video").first, tab.locator("video").last
    first.wait_for()
    wait_until(tab, "document.querySelector('video').readyState >= 1")
    assert first.evaluate("v => v.preload") == "metadata"
    assert last.evaluate("v => [v.preload, v.readyState]") == ["none", 0]
    last.scroll_into_view_if_needed()
    wait_until(tab, "Array.from(document.querySelectorAll('video')).pop().readyState >= 1")
    assert errors == []


def test_a_takes_history_opens_on_a_click_and_its_markup_never_runs(
    page: tuple[Page, list[str]], make_batch: MakeBatch
) -> None:
    """The history starts closed, opens without any script when its summary is clicked, and
    shows an event detail holding markup as plain text."""
    batch = make_batch("version: 1\nshots:\n  - id: s1\n    prompt: waves\n")
    batch.failed("s1", 1, "boom")
    fp = fingerprint(batch.shot("s1"), 1)
    with Store.open(batch.out) as store:
        store.update_render(
            None,
            RenderRow(fp, 1, state="failed", error="boom"),
            detail=HOSTILE_ERROR,
            job=("s1", 1),
        )
        write_report(batch.manifest, store)
    tab, errors = page
    tab.goto((batch.out / "index.html").as_uri())
    history = tab.locator("details.history pre")
    assert not history.is_visible()
    tab.click("details.history summary")
    assert history.is_visible()
    assert HOSTILE_ERROR in history.inner_text()
    assert tab.evaluate("window.pwned === undefined")
    assert tab.locator("main img").count() == 0
    assert errors == []


def test_the_page_policy_blocks_a_script_that_slipped_in(
    page: tuple[Page, list[str]], batch: Batch
) -> None:
    """Even markup that got past escaping cannot run: the page's Content-Security-Policy allows
    only its own script (by hash), while that script still runs (the filters work)."""
    path = write_report(batch.manifest, None)
    injected = "<main><script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
    path.write_text(path.read_text(encoding="utf-8").replace("<main>", injected, 1))
    tab, errors = page
    tab.goto(path.as_uri())
    assert tab.evaluate("window.pwned === undefined")
    assert any("Content Security Policy" in error for error in errors)
    tab.click('button[data-filter="failed"]')
    assert visible_shots(tab) == []
