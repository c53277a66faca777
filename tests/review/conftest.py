"""Fixtures for the review tests: a batch folder with a real store, real clips and a manifest.

``make_batch(yaml_text)`` writes the manifest, loads it, and returns a ``Batch`` whose
methods put takes into given states the way the engine records them.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import runner.sim
from runner.jobs import fingerprint
from runner.manifest import load_manifest
from runner.model import Manifest, Shot
from runner.store import RenderRow, Store, now_iso
from tests.plugins.chromium import CHROMIUM_FLAGS, SKIP_REASON, find_chromium
from tests.plugins.images import tiny_png

if TYPE_CHECKING:
    from playwright.sync_api import Page

SIM_CLIP = Path(runner.sim.__file__).parent / "assets" / "clip.mp4"

STORYBOARD = """\
version: 1
name: beach-spot
defaults:
  seconds: 4
  aspect_ratio: "16:9"
shots:
  - id: s01-wide
    prompt: Ocean waves rolling onto a sandy beach at golden hour
  - id: s02-hero
    mode: first_frame
    images: [frames/s02.png]
    prompt: A surfer walks into frame
    takes: 3
  - id: s03-turn
    prompt: the camera orbits from dusk to night
    takes: 2
"""


@dataclass
class Batch:
    """A batch folder being filled in as the engine would."""

    manifest_path: Path
    manifest: Manifest

    @property
    def out(self) -> Path:
        return self.manifest.output_dir

    def shot(self, shot_id: str) -> Shot:
        return next(s for s in self.manifest.shots if s.id == shot_id)

    def _render(self, store: Store, shot_id: str, take: int, **fields: object) -> None:
        fp = fingerprint(self.shot(shot_id), take)
        store.bind_jobs(None, [(shot_id, take, fp, 1)])
        store.update_render(None, RenderRow(fp, 1, **fields), job=(shot_id, take))  # type: ignore[arg-type]

    def done(self, shot_id: str, take: int, clip: Path = SIM_CLIP) -> Path:
        """A finished take: render done, clip delivered into its folder."""
        rel = f"{shot_id}/take-{take}.mp4"
        target = self.out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, target)
        with Store.open(self.out) as store:
            self._render(
                store,
                shot_id,
                take,
                state="done",
                attempt=1,
                task_id=f"task-{shot_id}-{take}",
                progress=100.0,
                submitted_at="2026-11-26T05:00:00.000000+00:00",
                completed_at="2026-11-26T05:00:30.000000+00:00",
                downloaded_at="2026-11-26T05:00:31.000000+00:00",
            )
            job = store.jobs()[(shot_id, take)]
            stat = target.stat()
            digest = hashlib.sha256(target.read_bytes()).hexdigest()
            store.record_delivery(
                None, job, file=rel, size=stat.st_size, mtime_ns=stat.st_mtime_ns, sha256=digest
            )
        return target

    def failed(self, shot_id: str, take: int, error: str) -> None:
        with Store.open(self.out) as store:
            self._render(
                store,
                shot_id,
                take,
                state="failed",
                attempt=3,
                task_id=f"task-{shot_id}-{take}",
                error=error,
                submitted_at=now_iso(),
            )

    def in_flight(
        self, shot_id: str, take: int, state: str = "running", progress: float = 40.0
    ) -> None:
        with Store.open(self.out) as store:
            self._render(
                store,
                shot_id,
                take,
                state=state,
                attempt=1,
                task_id=f"task-{shot_id}-{take}",
                progress=progress,
                submitted_at=now_iso(),
            )

    def store(self) -> Store:
        store = Store.open_existing(self.out)
        assert store is not None, "nothing recorded in this batch yet"
        return store


MakeBatch = Callable[..., Batch]


@pytest.fixture
def make_batch(tmp_path: Path) -> MakeBatch:
    """Write a manifest (with its frame images, and ``images`` by relative path) under
    tmp_path and load it."""

    def make(
        yaml_text: str = STORYBOARD,
        name: str = "storyboard.yaml",
        images: dict[str, bytes] | None = None,
    ) -> Batch:
        for rel, data in {"frames/s02.png": tiny_png(), **(images or {})}.items():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_bytes(data)
        path = tmp_path / name
        path.write_text(yaml_text, encoding="utf-8")
        return Batch(path, load_manifest(path))

    return make


@pytest.fixture
def batch(make_batch: MakeBatch) -> Batch:
    """The three-shot storyboard with nothing rendered yet."""
    return make_batch()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[Page, list[str]]]:
    """A fresh headless Chromium page, and the list its console errors are gathered into."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(SKIP_REASON)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            tab = context.new_page()
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.on(
                "requestfailed",
                # A media element may cancel its own range request once it has enough.
                lambda r: (
                    None
                    if r.failure == "net::ERR_ABORTED"
                    else errors.append(f"{r.url}: {r.failure}")
                ),
            )
            yield tab, errors
        finally:
            context.close()
