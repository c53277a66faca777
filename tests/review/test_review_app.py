"""``shotrunner review``: the review app, started as the real CLI, used from headless Chromium
(Playwright with the system's Chromium) and from raw HTTP requests.

The batch is rendered by ``run --simulate`` (the built-in simulator), picked and rejected on
the page, and read back with ``plan``, ``status`` and ``export``; a second ``run --simulate``
in its own process finishes takes while the page stays open.
"""

from __future__ import annotations

import csv
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.plugins.waiting import wait_until as wait_for
from tests.review.conftest import Batch, MakeBatch
from tests.review.pagehelpers import take_article, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

STORYBOARD = """\
version: 1
name: review-app
defaults:
  seconds: 4
shots:
  - id: s01-wide
    prompt: Ocean waves rolling onto a sandy beach at golden hour
    takes: 2
  - id: s02-hero
    mode: first_frame
    images: [frames/s02.png]
    prompt: A surfer walks into frame
    takes: 2
  - id: s03-turn
    prompt: the camera orbits from dusk to night
    takes: 2
  - id: s04-night
    prompt: the pier at night, lanterns swaying
"""


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOTRUNNER_")}
    env["NO_COLOR"] = "1"
    return env


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``shotrunner ARGS`` as a user runs it: its own process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def simulate(batch: Batch, *args: str) -> subprocess.Popen[str]:
    """``shotrunner run --simulate`` of the batch in its own process (not waited for)."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(batch.manifest_path), "--simulate", *args],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> None:
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr


@dataclass
class Server:
    """A running ``shotrunner review``: its URL (with the token) and its process."""

    url: str
    process: subprocess.Popen[str]

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port

    @property
    def token(self) -> str:
        return urlsplit(self.url).path.strip("/")

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, bytes]:
        """A raw HTTP request to the server, with exactly the headers given (``Host`` too)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = None if body is None else json.dumps(body).encode()
            sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
            if data is not None:
                sent.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


@pytest.fixture
def start_review() -> Iterator[Any]:
    """Start ``shotrunner review`` on a batch; stopped (SIGTERM) after the test."""
    started: list[subprocess.Popen[str]] = []

    def start(batch: Batch, *args: str, env: dict[str, str] | None = None) -> Server:
        process = subprocess.Popen(
            [sys.executable, "-m", "runner", "review", str(batch.manifest_path), *args],
            env={**cli_env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if ready:
                line = process.stdout.readline()
                found = re.search(r"review: (http://\S+)", line)
                if found:
                    return Server(found.group(1), process)
            assert process.poll() is None, process.communicate()
        raise AssertionError("shotrunner review printed no URL")

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        assert process.returncode == 0


@pytest.fixture
def rendered(make_batch: MakeBatch) -> Batch:
    """Shots 1 to 3 rendered by ``run --simulate``, both takes each; s04-night not yet."""
    batch = make_batch(STORYBOARD)
    finished(simulate(batch, "--only", "s01-wide", "--only", "s02-hero", "--only", "s03-turn"))
    return batch


def card(shot: str, take: int) -> str:
    return f'section[data-shot="{shot}"] article.take[data-take="{take}"]'


def has_class(tab: Page, selector: str, name: str) -> bool:
    return bool(tab.evaluate(f"document.querySelector('{selector}').classList.contains('{name}')"))


def verdicts_on(tab: Page) -> dict[str, str]:
    """Every take the page marks picked or rejected, as ``shot/take``."""
    marks: dict[str, str] = tab.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll(
               'article.take.picked, article.take.rejected')).map(a => [
               a.closest('section').dataset.shot + '/' + a.dataset.take,
               a.classList.contains('picked') ? 'picked' : 'rejected']))"""
    )
    return marks


def settle(tab: Page, expected: dict[str, str]) -> None:
    """Wait until the page shows exactly these verdicts (it updates from the answer)."""
    deadline = time.monotonic() + 15
    while verdicts_on(tab) != expected:
        assert time.monotonic() < deadline, f"{verdicts_on(tab)} != {expected}"
        tab.wait_for_timeout(50)


def save_screenshot(tab: Page, path: Path) -> None:
    """A PNG for people to look at; ``REVIEW_APP_SCREENSHOT`` names a copy to keep."""
    tab.screenshot(path=str(path), full_page=False)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("REVIEW_APP_SCREENSHOT")
    if keep:
        shutil.copyfile(path, keep)


@pytest.mark.browser
def test_takes_are_picked_rejected_and_undone_from_the_page(
    page: tuple[Page, list[str]], rendered: Batch, start_review: Any, tmp_path: Path
) -> None:
    """A click and the keyboard pick, a click rejects, u and the undo button take back; the
    page shows each change from the server's answer, and the store holds exactly the
    verdicts left: ``plan --rerender-rejected``, ``status`` and ``export`` (the real CLI)
    see them, and so does the static index.html."""
    batch = rendered
    server = start_review(batch)
    tab, errors = page
    tab.goto(server.url)
    assert tab.locator("article.take video").count() == 6
    wait_until(tab, "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")

    tab.click(f"{card('s01-wide', 2)} button[data-verdict='picked']")
    settle(tab, {"s01-wide/2": "picked"})

    for key in ("j", "2", "p"):  # from the clicked shot to the next, its take 2, pick
        tab.keyboard.press(key)
    settle(tab, {"s01-wide/2": "picked", "s02-hero/2": "picked"})

    tab.click(f"{card('s03-turn', 1)} button[data-verdict='rejected']")
    expected = {"s01-wide/2": "picked", "s02-hero/2": "picked", "s03-turn/1": "rejected"}
    settle(tab, expected)

    tab.click(f"{card('s03-turn', 2)} button[data-verdict='picked']")
    settle(tab, {**expected, "s03-turn/2": "picked"})
    tab.keyboard.press("u")
    settle(tab, expected)

    for key in ("k", "k", "1", "x"):  # from s03-turn back to s01-wide, reject its take 1
        tab.keyboard.press(key)
    settle(tab, {**expected, "s01-wide/1": "rejected"})
    tab.click("#undo")
    settle(tab, expected)
    assert tab.locator("[data-total='picked'] b").inner_text() == "2"
    assert tab.locator("[data-total='rejected'] b").inner_text() == "1"

    # The store, as the other commands read it.
    planned = cli("plan", str(batch.manifest_path), "--rerender-rejected", "--json")
    assert planned.returncode == 0, planned.stderr
    actions = {(j["shot"], j["take"]): j["action"] for j in json.loads(planned.stdout)["jobs"]}
    assert [job for job, action in actions.items() if action == "submit"] == [
        ("s03-turn", 1),  # the rejected take, rendered again
        ("s04-night", 1),  # never rendered
    ]
    status = cli("status", str(batch.manifest_path), "--json")
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    states = {(j["shot"], j["take"]): j["state"] for j in document["jobs"]}
    assert [job for job, state in states.items() if state != "done"] == [("s04-night", 1)]
    given = {f"{j['shot']}/{j['take']}": j["verdict"] for j in document["jobs"] if j["verdict"]}
    assert given == expected
    assert (document["summary"]["picked"], document["summary"]["rejected"]) == (2, 1)

    to = tmp_path / "cut"
    exported = cli("export", str(batch.manifest_path), "--to", str(to), "--no-animatic")
    assert exported.returncode == 1  # s04-night has no take yet
    assert "error: shot s04-night: no finished take" in exported.stderr
    with (to / "cut.csv").open(newline="", encoding="utf-8") as handle:
        takes = {row["shot"]: row["take"] for row in csv.DictReader(handle)}
    assert takes == {"s01-wide": "2", "s02-hero": "2", "s03-turn": "2", "s04-night": ""}

    static = (batch.out / "index.html").read_text(encoding="utf-8")
    assert 'class="mark picked"' in take_article(static, "s02-hero", 2)
    assert 'class="mark rejected"' in take_article(static, "s03-turn", 1)
    assert "mark" not in take_article(static, "s01-wide", 1)

    # The server keeps what can be undone: a reloaded page offers it again.
    tab.reload()
    wait_until(tab, "!document.getElementById('undo').disabled", 15)
    tab.click("section[data-shot='s01-wide'] article.take[data-take='1']")
    tab.keyboard.press("j")  # the current shot is outlined in the screenshot
    tab.evaluate("window.scrollTo(0, 0)")
    save_screenshot(tab, tmp_path / "review-app.png")
    assert errors == []


@pytest.mark.browser
def test_takes_of_a_shot_play_in_sync(
    page: tuple[Page, list[str]], rendered: Batch, start_review: Any
) -> None:
    """One play/pause and one scrubber drive both takes of a shot; a number key plays one."""
    server = start_review(rendered)
    tab, errors = page
    tab.goto(server.url)
    shot = 'section[data-shot="s01-wide"]'
    videos = f"document.querySelectorAll('{shot} article.take video')"
    wait_until(tab, f"Array.from({videos}).every(v => v.readyState >= 1)")
    tab.click(f"{shot} .sync-play")
    wait_until(tab, f"Array.from({videos}).every(v => !v.paused && v.currentTime > 0)")
    tab.click(f"{shot} .sync-play")
    wait_until(tab, f"Array.from({videos}).every(v => v.paused)")
    tab.evaluate(
        f"""() => {{ const s = document.querySelector('{shot} .sync-scrub');
                   s.value = '1.25'; s.dispatchEvent(new Event('input')); }}"""
    )
    wait_until(tab, f"Array.from({videos}).every(v => Math.abs(v.currentTime - 1.25) < 0.05)")

    # A number key plays that take of the current shot, and pauses it when pressed again.
    take = f"document.querySelector('{card('s01-wide', 2)} video')"
    other = f"document.querySelector('{card('s01-wide', 1)} video')"
    tab.keyboard.press("2")
    wait_until(tab, f"!{take}.paused && {other}.paused")
    tab.keyboard.press("2")
    wait_until(tab, f"{take}.paused")
    assert errors == []


@pytest.mark.browser
def test_finished_takes_appear_without_a_reload(
    page: tuple[Page, list[str]], rendered: Batch, start_review: Any
) -> None:
    """While the page is open, a ``run --simulate`` in another process finishes a new shot,
    and renders a rejected take again: both show up on the page without a reload, and the
    rejected clip, now in ``.history/``, plays from its shot's card."""
    batch = rendered
    server = start_review(batch)
    tab, errors = page
    tab.goto(server.url)
    tab.evaluate("window.sameDocument = true")
    assert tab.locator(f"{card('s04-night', 1)} video").count() == 0

    tab.click(f"{card('s03-turn', 1)} button[data-verdict='rejected']")
    settle(tab, {"s03-turn/1": "rejected"})

    run = simulate(batch, "--only", "s04-night", "--only", "s03-turn", "--rerender-rejected")
    wait_until(tab, f"document.querySelector('{card('s04-night', 1)} video') !== null", 60)
    wait_until(
        tab,
        f"document.querySelector('{card('s03-turn', 1)}').dataset.status === 'done'"
        f" && !document.querySelector('{card('s03-turn', 1)}').classList.contains('rejected')",
        60,
    )
    finished(run)
    assert tab.evaluate("window.sameDocument") is True  # the same page, never reloaded

    tab.evaluate(f"document.querySelector('{card('s04-night', 1)} video').play()")
    wait_until(tab, f"document.querySelector('{card('s04-night', 1)} video').readyState >= 2")

    versions = 'section[data-shot="s03-turn"] details.versions'
    wait_until(tab, f"document.querySelector('{versions}') !== null", 30)
    tab.click(f"{versions} summary")
    tab.evaluate(f"document.querySelector('{versions} video').play()")
    wait_until(tab, f"document.querySelector('{versions} video').readyState >= 2")
    assert errors == []


def test_requests_without_the_token_or_from_elsewhere_are_refused(
    rendered: Batch, start_review: Any, tmp_path: Path
) -> None:
    """No token, a wrong token, a foreign Host or Origin, a change not sent as JSON: 403.
    Files outside the batch folder, through ``..`` or a symlink, and files that are not
    clips or images: not served."""
    batch = rendered
    server = start_review(batch)
    token = server.token
    assert server.url.startswith("http://127.0.0.1:")

    assert server.request("GET", f"/{token}/")[0] == 200
    assert server.request("GET", "/")[0] == 403
    assert server.request("GET", "/s01-wide/take-1.mp4")[0] == 403
    wrong = token[:-1] + ("y" if token.endswith("x") else "x")
    assert server.request("GET", f"/{wrong}/")[0] == 403
    assert server.request("GET", f"/{token}/", headers={"Host": "evil.example"})[0] == 403
    rebound = {"Host": f"rebind.evil.example:{server.port}"}
    assert server.request("GET", f"/{token}/_api/state", headers=rebound)[0] == 403

    change = {"shot": "s01-wide", "take": 1, "verdict": "picked"}
    foreign = {"Origin": "http://evil.example"}
    assert server.request("POST", f"/{token}/_api/verdict", headers=foreign, body=change)[0] == 403
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert server.request("POST", f"/{token}/_api/verdict", headers=form, body=change)[0] == 403
    assert server.request("POST", "/_api/verdict", body=change)[0] == 403
    with batch.store() as store:
        assert store.verdicts() == {}  # nothing refused was recorded
    own = {"Origin": f"http://127.0.0.1:{server.port}"}
    assert server.request("POST", f"/{token}/_api/verdict", headers=own, body=change)[0] == 200
    with batch.store() as store:
        assert store.verdicts() == {("s01-wide", 1): "picked"}

    status, clip = server.request("GET", f"/{token}/s01-wide/take-1.mp4")
    assert status == 200
    assert clip == (batch.out / "s01-wide" / "take-1.mp4").read_bytes()
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(clip)
    (batch.out / "s01-wide" / "escape.mp4").symlink_to(outside)
    # Links inside the batch whose names are a clip's or an image's, to files that are not.
    (batch.out / "s01-wide" / "leak.mp4").symlink_to(batch.out / "state.db")
    (batch.out / "s01-wide" / "sidecar.png").symlink_to(batch.out / "s01-wide" / "take-1.json")
    for path in (
        "s01-wide/escape.mp4",
        "s01-wide/leak.mp4",
        "s01-wide/sidecar.png",
        "s01-wide/a%00.mp4",
        "../outside.mp4",
        "%2e%2e/outside.mp4",
        "s01-wide/..%2f..%2foutside.mp4",
        "state.db",
        "s01-wide/take-1.json",
        "storyboard.yaml",
    ):
        assert server.request("GET", f"/{token}/{path}")[0] == 404, path
    # The manifest's own input image is served by its number, not by its path.
    status, image = server.request("GET", f"/{token}/_input/2/1")
    assert status == 200
    assert image == (batch.manifest_path.parent / "frames" / "s02.png").read_bytes()
    assert server.request("GET", f"/{token}/_input/1/1")[0] == 404


def test_port_is_the_one_asked_for_and_open_hands_the_url_to_the_browser(
    make_batch: MakeBatch, start_review: Any, tmp_path: Path
) -> None:
    """``--port N`` serves on 127.0.0.1:N; ``--open`` gives the printed URL, token and all,
    to the user's browser (``BROWSER``, as Python's webbrowser reads it)."""
    batch = make_batch(STORYBOARD)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n', encoding="utf-8")
    browser.chmod(0o755)
    server = start_review(batch, "--port", str(port), "--open", env={"BROWSER": f"{browser} %s"})
    assert server.url.startswith(f"http://127.0.0.1:{port}/")
    assert server.request("GET", f"/{server.token}/")[0] == 200
    wait_for(opened.exists, 30, "the browser was never started")
    assert opened.read_text(encoding="utf-8") == server.url


def test_a_port_in_use_is_one_line_and_exit_2(make_batch: MakeBatch) -> None:
    """``--port`` of a port another program holds: one line naming it, exit 2."""
    batch = make_batch(STORYBOARD)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = cli("review", str(batch.manifest_path), "--port", str(port), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert done.stdout == ""


HOSTILE_PROMPT = "<script>window.pwned = 'prompt'</script> waves <b>crash</b>"
HOSTILE_ERROR = "<img src=x onerror=\"window.pwned = 'error'\"> policy says no"


@pytest.mark.browser
def test_markup_in_prompts_and_errors_never_runs_on_the_page_or_in_live_updates(
    page: tuple[Page, list[str]], make_batch: MakeBatch, start_review: Any
) -> None:
    """A prompt holding <script> and an error holding an onerror handler show as text, on
    the page as served and in a shot replaced by a live update, and neither runs."""
    prompt = json.dumps(HOSTILE_PROMPT)
    batch = make_batch(f"version: 1\nshots:\n  - id: s1\n    prompt: {prompt}\n    takes: 2\n")
    batch.failed("s1", 1, HOSTILE_ERROR)
    server = start_review(batch)
    tab, errors = page
    tab.goto(server.url)
    assert tab.locator(".prompt").inner_text() == HOSTILE_PROMPT
    assert tab.locator(".error").inner_text() == HOSTILE_ERROR

    batch.failed("s1", 2, HOSTILE_ERROR.replace("error'", "live'"))  # a run elsewhere
    wait_until(tab, "document.querySelectorAll('.error').length === 2", 30)
    assert tab.locator(".error").nth(1).inner_text() == HOSTILE_ERROR.replace("error'", "live'")
    assert tab.evaluate("window.pwned === undefined")
    assert tab.locator("main script, main img, main b").count() == 0
    assert errors == []
