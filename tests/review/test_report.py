"""The contact sheet's content: what ``write_report`` puts on the page for each shot and take."""

from __future__ import annotations

import base64
import dataclasses
import errno
import hashlib
import html
import re
import shlex
from pathlib import Path
from urllib.parse import unquote

import pytest

from runner.files import CannotWrite
from runner.model import ImageRef
from runner.report import TakeRecord, build_report_data, collect, render_html, write_report
from runner.store import Store
from tests.plugins.images import tiny_png
from tests.review.conftest import SIM_CLIP, Batch, MakeBatch
from tests.review.pagehelpers import elements, shot_section, take_article

#: A clip that exists, by absolute path, for pages built from records alone.
CLIP = str(SIM_CLIP)


def page_of(batch: Batch) -> str:
    store = batch.store() if (batch.out / "state.db").exists() else None
    try:
        return write_report(batch.manifest, store).read_text(encoding="utf-8")
    finally:
        if store is not None:
            store.close()


def test_report_is_written_as_index_html_in_the_batch_folder(batch: Batch) -> None:
    """write_report writes <output_dir>/index.html and returns its path."""
    batch.done("s01-wide", 1)
    with batch.store() as store:
        path = write_report(batch.manifest, store)
    assert path == batch.out / "index.html"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_failed_write_keeps_the_old_page_and_leaves_no_part_file(
    batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page that cannot be put in place leaves the previous one whole and no part file."""
    old = write_report(batch.manifest, None).read_bytes()

    def refuse(source: str, target: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("runner.files.os.replace", refuse)
    batch.done("s01-wide", 1)
    with batch.store() as store, pytest.raises(CannotWrite, match=r"index\.html: no space left"):
        write_report(batch.manifest, store)
    assert (batch.out / "index.html").read_bytes() == old
    assert list(batch.out.glob("*.part")) == []


def test_shots_appear_in_storyboard_order(batch: Batch) -> None:
    """Shots are listed in the manifest's order, each numbered from 01."""
    page = page_of(batch)
    ids = [attrs["data-shot"] for attrs in elements(page, "section")]
    assert ids == ["s01-wide", "s02-hero", "s03-turn"]
    assert '<span class="idx">02</span> s02-hero' in page


def test_each_shot_shows_prompt_mode_and_parameters(batch: Batch) -> None:
    """A shot's section holds its prompt, mode and the parameters that shape the video."""
    section = shot_section(page_of(batch), "s02-hero")
    assert "A surfer walks into frame" in section
    assert '<span class="mode">first_frame</span>' in section
    for name, value in (("model", "omni-fast"), ("seconds", "4"), ("aspect ratio", "16:9")):
        assert f"<dt>{name}</dt><dd>{value}</dd>" in section


def test_finished_take_is_an_inline_video_with_a_relative_source(batch: Batch) -> None:
    """A done take is a muted, looping <video> with controls whose src is relative to the page."""
    batch.done("s02-hero", 2)
    page = page_of(batch)
    videos = elements(take_article(page, "s02-hero", 2), "video")
    assert len(videos) == 1
    video = videos[0]
    assert set(video) >= {"controls", "muted", "loop"}
    assert video["preload"] == "metadata"
    assert video["src"] == "s02-hero/take-2.mp4"
    assert (batch.out / unquote(str(video["src"]))).is_file()


def test_failed_take_shows_failed_badge_and_its_error(batch: Batch) -> None:
    """A failed take carries the failed badge and the server's error message."""
    batch.failed("s03-turn", 1, "upstream_error: the model crashed")
    card = take_article(page_of(batch), "s03-turn", 1)
    assert '<span class="badge failed">failed</span>' in card
    assert '<p class="error">upstream_error: the model crashed</p>' in card
    assert "<video" not in card


def test_take_in_flight_shows_its_badge_state_and_progress(batch: Batch) -> None:
    """A running take carries the in-flight badge, its state word and its progress."""
    batch.in_flight("s01-wide", 1, state="running", progress=40.0)
    card = take_article(page_of(batch), "s01-wide", 1)
    assert '<span class="badge in_flight">in flight</span>' in card
    assert "running · 40%" in card


def test_take_the_store_does_not_know_is_not_started(batch: Batch) -> None:
    """A take without a row in the store is shown as not started."""
    batch.done("s01-wide", 1)
    card = take_article(page_of(batch), "s03-turn", 2)
    assert '<span class="badge not_started">not started</span>' in card


def test_page_without_a_store_shows_every_take_not_started(batch: Batch) -> None:
    """Before any run (no state.db) the page lists every take as not started."""
    page = render_html(collect(batch.manifest, None))
    assert page.count('class="badge not_started"') == 6
    assert not (batch.out / "state.db").exists()


def test_task_ids_and_times_are_shown(batch: Batch) -> None:
    """A take's card shows its task id and its submitted, completed and downloaded times."""
    batch.done("s01-wide", 1)
    card = take_article(page_of(batch), "s01-wide", 1)
    assert "<dt>task</dt><dd>task-s01-wide-1</dd>" in card
    assert "<dt>submitted</dt><dd>2026-11-26 05:00:00</dd>" in card
    assert "<dt>completed</dt><dd>2026-11-26 05:00:30</dd>" in card
    assert "<dt>downloaded</dt><dd>2026-11-26 05:00:31</dd>" in card


def test_done_take_whose_clip_was_deleted_says_it_is_missing(batch: Batch) -> None:
    """A done take whose file is gone shows a note instead of a broken <video>."""
    batch.done("s01-wide", 1).unlink()
    card = take_article(page_of(batch), "s01-wide", 1)
    assert "<video" not in card
    assert "clip missing" in card


def test_totals_count_takes_by_status(batch: Batch) -> None:
    """The totals at the top count shots, takes and each status."""
    batch.done("s01-wide", 1)
    batch.done("s02-hero", 1)
    batch.failed("s02-hero", 2, "boom")
    batch.in_flight("s03-turn", 1)
    page = page_of(batch)
    totals = dict(re.findall(r'<li data-total="(\w+)"><b>(\d+)</b>', page))
    assert totals == {
        "shots": "3",
        "takes": "6",
        "done": "2",
        "failed": "1",
        "in_flight": "1",
        "not_started": "2",
        "picked": "0",
        "rejected": "0",
        "seconds_done": "8",
    }


def test_filters_for_failed_in_flight_and_picked_are_on_the_page(batch: Batch) -> None:
    """The page has filter buttons and each shot carries the flags the filters test."""
    batch.failed("s02-hero", 1, "boom")
    batch.in_flight("s03-turn", 2)
    page = page_of(batch)
    assert [b["data-filter"] for b in elements(page, "button")] == [
        "all",
        "failed",
        "inflight",
        "picked",
    ]
    flags = {
        s["data-shot"]: (s["data-failed"], s["data-inflight"]) for s in elements(page, "section")
    }
    assert flags == {"s01-wide": ("0", "0"), "s02-hero": ("1", "0"), "s03-turn": ("0", "1")}


def test_picked_and_rejected_takes_are_marked(batch: Batch) -> None:
    """A picked take and a rejected take carry their marks, and the shot counts as picked."""
    batch.done("s02-hero", 1)
    batch.done("s02-hero", 2)
    with Store.open(batch.out) as store:
        store.set_verdict("s02-hero", 2, "picked")
        store.set_verdict("s02-hero", 1, "rejected")
    page = page_of(batch)
    assert '<span class="mark picked">picked</span>' in take_article(page, "s02-hero", 2)
    assert '<span class="mark rejected">rejected</span>' in take_article(page, "s02-hero", 1)
    section = elements(page, "section")[1]
    assert section["data-picked"] == "1"


def test_page_needs_nothing_from_the_network(batch: Batch) -> None:
    """CSS and JS are inline: no external stylesheet, script or remote media on the page."""
    batch.done("s01-wide", 1)
    page = page_of(batch)
    assert elements(page, "link") == []
    assert all("src" not in s for s in elements(page, "script"))
    sources = [e.get("src") or "" for tag in ("img", "video") for e in elements(page, tag)]
    assert sources
    assert not any(re.match(r"(https?:)?//", s) for s in sources)


def test_text_from_the_manifest_is_escaped(make_batch: MakeBatch) -> None:
    """A prompt with markup is shown as text, never run as HTML."""
    batch = make_batch(
        "version: 1\nshots:\n  - id: s1\n    prompt: '<script>alert(1)</script> & co'\n"
    )
    page = page_of(batch)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page


def test_local_image_is_a_thumbnail_with_a_path_relative_to_the_page(batch: Batch) -> None:
    """A local input image is an <img> whose relative src leads from the page to the file."""
    page = page_of(batch)
    images = elements(shot_section(page, "s02-hero"), "img")
    assert len(images) == 1
    src = str(images[0]["src"])
    assert not Path(src).is_absolute()
    assert (batch.out / unquote(src)).resolve() == (batch.manifest_path.parent / "frames/s02.png")


def test_data_uri_image_is_inlined(make_batch: MakeBatch) -> None:
    """An image given as a data URI is shown inline from that URI."""
    uri = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
    batch = make_batch(
        f"version: 1\nshots:\n  - id: s1\n    mode: first_frame\n    images: ['{uri}']\n"
        "    prompt: p\n"
    )
    images = elements(page_of(batch), "img")
    assert [i["src"] for i in images] == [uri]


def test_url_image_is_a_link_so_the_page_fetches_nothing(make_batch: MakeBatch) -> None:
    """An image given as a URL is linked, not loaded, so rendering the page needs no network."""
    batch = make_batch(
        "version: 1\nshots:\n  - id: s1\n    mode: reference\n"
        "    images: ['https://example.com/style.jpg']\n    prompt: p\n"
    )
    page = page_of(batch)
    assert elements(page, "img") == []
    assert {"class": "remote", "href": "https://example.com/style.jpg"}.items() <= (
        elements(page, "a")[0].items()
    )


def test_take_rendered_before_the_shot_was_edited_is_marked_outdated(
    make_batch: MakeBatch,
) -> None:
    """A take whose recorded fingerprint is not the shot's current one is marked outdated."""
    before = make_batch("version: 1\nshots:\n  - id: s1\n    prompt: waves\n    takes: 2\n")
    before.done("s1", 1)
    before.done("s1", 2)
    after = make_batch("version: 1\nshots:\n  - id: s1\n    prompt: storm\n    takes: 2\n")
    card = take_article(page_of(after), "s1", 1)
    assert ">outdated</span>" in card
    assert ">outdated</span>" not in take_article(page_of(before), "s1", 1)


def test_each_filter_says_how_many_shots_it_shows(batch: Batch) -> None:
    """Filter buttons carry the number of shots each would show."""
    batch.failed("s02-hero", 1, "boom")
    batch.failed("s03-turn", 1, "boom")
    page = page_of(batch)
    counts = dict(re.findall(r'data-filter="(\w+)"[^>]*>[^<]*<span class="count">(\d+)<', page))
    assert counts == {"all": "3", "failed": "2", "inflight": "0", "picked": "0"}


def test_markup_in_errors_task_ids_and_paths_is_escaped(make_batch: MakeBatch) -> None:
    """Text from the store (an error, a task id) and the manifest's path are shown as text."""
    batch = make_batch(
        "version: 1\nshots:\n  - id: s1\n    prompt: p\n    takes: 2\n", name="a<b>x.yaml"
    )
    records = {
        ("s1", 1): TakeRecord(state="failed", error='<img src=x onerror="alert(1)">'),
        ("s1", 2): TakeRecord(state="done", task_id='"><script>alert(2)</script>', file=CLIP),
    }
    page = render_html(build_report_data(batch.manifest, records, {}))
    assert "<img src=x" not in page and "<script>alert" not in page and "a<b>" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "a&lt;b&gt;x.yaml" in page
    assert elements(page, "img") == []
    assert len(elements(page, "script")) == 1


def test_pick_hint_is_a_command_a_shell_can_run(make_batch: MakeBatch) -> None:
    """The pick hint quotes a manifest path with spaces and quotes for the shell."""
    batch = make_batch(
        "version: 1\nshots:\n  - id: s1\n    prompt: p\n", name="my story's board.yaml"
    )
    batch.done("s1", 1)
    hint = re.search(r'<p class="hint">pick: <code>(.*?)</code>', page_of(batch))
    assert hint is not None
    command = html.unescape(hint.group(1))
    assert shlex.split(command) == ["shotrunner", "pick", batch.manifest.display_path, "s1", "1"]


def test_odd_file_names_still_lead_from_the_page_to_the_file(make_batch: MakeBatch) -> None:
    """Clip and image hrefs survive spaces, #, ?, % and non-ASCII in folder and file names."""
    odd = "frames/a #1 ?50% é.png"
    batch = make_batch(
        "version: 1\noutput_dir: 'out put #2/ré %20'\nshots:\n  - id: S.01_x-y\n"
        f"    mode: first_frame\n    images: ['{odd}']\n    prompt: p\n",
        images={odd: tiny_png()},
    )
    batch.done("S.01_x-y", 1)
    page = page_of(batch)
    [image] = elements(page, "img")
    [video] = elements(page, "video")
    for href, target in ((image["src"], batch.manifest_path.parent / odd), (video["src"], None)):
        assert href is not None and "#" not in href and "?" not in href
        resolved = (batch.out / unquote(href)).resolve()
        assert resolved.is_file()
        if target is not None:
            assert resolved == target.resolve()


def test_unsafe_url_is_never_a_link(batch: Batch) -> None:
    """Whatever reaches the page, an image URL that is not http(s) is shown, not linked."""
    shot = batch.shot("s02-hero")
    bad = dataclasses.replace(shot, images=(ImageRef("javascript:alert(1)", "url"),))
    shots = tuple(bad if s is shot else s for s in batch.manifest.shots)
    page = render_html(build_report_data(dataclasses.replace(batch.manifest, shots=shots), {}, {}))
    assert all(not str(a.get("href")).startswith("javascript") for a in elements(page, "a"))
    assert "javascript:alert(1)" in page


def test_videos_preload_metadata_up_to_the_eager_limit(batch: Batch) -> None:
    """With no more clips than EAGER_VIDEOS, every video preloads its metadata."""
    batch.done("s01-wide", 1)
    batch.done("s02-hero", 1)
    videos = elements(page_of(batch), "video")
    assert [v["preload"] for v in videos] == ["metadata", "metadata"]
    assert all("data-lazy" not in v for v in videos)


def test_videos_past_the_eager_limit_preload_nothing_until_seen(
    batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past EAGER_VIDEOS clips, every video is preload="none" and marked for lazy loading."""
    monkeypatch.setattr("runner.report.EAGER_VIDEOS", 1)
    batch.done("s01-wide", 1)
    batch.done("s02-hero", 1)
    videos = elements(page_of(batch), "video")
    assert [(v["preload"], "data-lazy" in v) for v in videos] == [("none", True)] * 2
    assert all(v["src"] for v in videos)


def test_a_sheet_of_ten_thousand_takes_renders_quickly_and_lazily(make_batch: MakeBatch) -> None:
    """500 shots of 20 takes, all done: every video on the page loads lazily."""
    shots = "".join(f"  - id: s{n:03d}\n    prompt: shot {n}\n    takes: 20\n" for n in range(500))
    batch = make_batch(f"version: 1\nshots:\n{shots}")
    records = {
        (shot.id, take): TakeRecord(state="done", file=CLIP)
        for shot in batch.manifest.shots
        for take in range(1, 21)
    }
    page = render_html(build_report_data(batch.manifest, records, {}))
    assert page.count("<video ") == page.count('preload="none" data-lazy') == 10_000


def test_page_policy_allows_only_its_own_script_and_style(batch: Batch) -> None:
    """The Content-Security-Policy forbids the network and names the page's script and style
    by their sha256, so nothing else inline can run."""
    page = page_of(batch)
    [meta] = [m for m in elements(page, "meta") if m.get("http-equiv")]
    policy = dict(part.strip().split(" ", 1) for part in str(meta["content"]).split(";"))
    assert policy["default-src"] == "'none'"
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        body = page.split(f"<{tag}>", 1)[1].split(f"</{tag}>", 1)[0]
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert policy[directive] == f"'sha256-{digest}'"


def test_earlier_versions_of_a_shot_are_listed_with_links_that_load_nothing_at_once(
    batch: Batch,
) -> None:
    """The clips of ``<shot>/.history/`` (not their sidecars) are listed on the shot's card,
    each a <video> that preloads nothing, its src relative to the page."""
    batch.done("s01-wide", 1)
    history = batch.out / "s01-wide" / ".history"
    history.mkdir()
    (history / "take-1.abcdef012345-g1.mp4").write_bytes(SIM_CLIP.read_bytes())
    (history / "take-1.abcdef012345-g1.json").write_text("{}", encoding="utf-8")
    page = page_of(batch)
    section = shot_section(page, "s01-wide")
    assert "earlier versions (1)" in section
    versions = section.split('<details class="versions">', 1)[1].split("</details>", 1)[0]
    (video,) = elements(versions, "video")
    assert video["preload"] == "none"
    assert video["src"] == "s01-wide/.history/take-1.abcdef012345-g1.mp4"
    assert "earlier versions" not in shot_section(page, "s02-hero")
