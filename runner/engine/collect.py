"""Collecting a finished task's clip: delivered from disk when it is already there, else
downloaded once (a part file that resumes, a fresh link when one expires) within a few
download slots; a clip the service lost is rendered again, a task not finished after all is
followed again."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from runner.api.errors import (
    ApiError,
    AuthError,
    LinkExpired,
    NotFound,
    RateLimited,
    TransientError,
)
from runner.delivery import matches, part_of
from runner.engine.base import MAX_TASK_ERRORS, NOT_FOUND_CONFIRMATIONS, EngineBase
from runner.engine.work import Work
from runner.store import now_iso

if TYPE_CHECKING:
    from runner.api.task import Task


class CollectMixin(EngineBase):
    """Getting a done render's clip, from disk or from the service."""

    async def _collect(self, work: Work, task: Task | None) -> None:
        """Download a finished task's clip once and deliver it into every job's folder."""
        if self._deliver_locally(work):
            return
        async with self._downloads:
            outcome, task = await self._download(work, task)
        # Re-rendering or polling again happens outside the download slots (and apart
        # from a fetch worker, which goes on with the next clip).
        if outcome == "lost":
            self._spawn(self._render_again(work, "the service no longer has the clip"))
        elif outcome == "pending" and task is not None:
            self.limit.take()
            self._spawn(self._follow(work, holds_slot=True, task=task))

    async def _download(
        self, work: Work, task: Task | None
    ) -> tuple[Literal["done", "owed", "lost", "pending"], Task | None]:
        render = work.render
        part = part_of(self._final(work.jobs[0].job) if work.jobs else self._earlier_path(work))
        if render.state == "done" and matches(part, render.sha256, render.bytes):
            self._deliver_all(work, part)
            return "done", task
        if render.state != "done":
            render.state = "downloading"
            render.error = render.error_code = None
            render.progress = 100.0 if render.progress is not None else None
            render.completed_at = render.completed_at or now_iso()
            claim = None
            if task is not None and task.status == "completed":
                # The part file is claimed for the task in the same transaction.
                relative = self._part_to_claim(part, task.id)
                claim = None if relative is None else (relative, task.id)
            self._save(work, "completed", part_owner=claim)
        errors = unknown = 0
        while True:
            if task is None or task.status != "completed":
                assert render.task_id is not None
                try:
                    task = await self.client.retrieve(render.task_id)
                except NotFound:
                    unknown += 1
                    if unknown < NOT_FOUND_CONFIRMATIONS:
                        await self._sleep(self.options.poll_interval)
                        continue
                    return "lost", None
                except AuthError:
                    raise
                except ApiError as error:
                    errors += 1
                    if not await self._back_off(work, errors, error, "fetching", "download"):
                        return "owed", None
                    continue
                if task.status == "failed":
                    return "lost", task
                if task.status != "completed":
                    # Recorded as downloading, but the task says otherwise: follow it again.
                    render.state = "running"
                    self._save(work, task.raw_status)
                    return "pending", task
            url = task.video_url or self.client.content_url(task.id)
            self._claim_part(part, task.id)
            try:
                downloaded = await self.client.download(url, part)
            except AuthError:
                raise
            except LinkExpired:
                errors += 1
                task = None
                if errors >= MAX_TASK_ERRORS:
                    self._keep_owed(work, "the clip's link keeps expiring", "download")
                    return "owed", None
                if errors > 1:
                    # The first fresh link is asked at once; links that keep expiring back off.
                    await self._sleep(self._task_backoff.delay(errors - 1))
                continue
            except (TransientError, RateLimited) as error:
                # DownloadError is transient: the part file resumes or restarts.
                errors += 1
                if not await self._back_off(work, errors, error, "download", "download"):
                    return "owed", None
                continue
            except ApiError as error:
                self._keep_owed(work, f"download failed: {error.message}", "download")
                return "owed", None
            break
        render.sha256, render.bytes = downloaded.sha256, downloaded.bytes
        render.error = render.error_code = None
        render.downloaded_at = now_iso()
        if work.earlier is not None:
            # Put in place before the render is recorded done: a crash in between fetches
            # it again rather than leave a part file no run looks for.
            kept = self._keep_earlier(work, part)
        render.state = "done"
        render.progress = 100.0
        self._save(work, f"{downloaded.bytes} bytes", show=False)
        if work.earlier is not None:
            # The part is in .history/ now: its owner record goes (delivery does the same for
            # a job's clip in its own transaction).
            self.store.set_part_owner(part.relative_to(self.output_dir).as_posix(), None)
            self.result.earlier_collected += 1
            self.view.state(work.label, "done", f"kept as {kept.relative_to(self.output_dir)}")
        else:
            self._deliver_all(work, part)
        return "done", task

    def _claim_part(self, part: Path, task_id: str) -> None:
        """Make ``part`` this task's before a byte is written: a part another task wrote (an
        edited shot's earlier render, swapped shot ids) or one of unknown origin is deleted,
        never resumed with ``Range``, so no clip is ever a hybrid of two tasks."""
        relative = self._part_to_claim(part, task_id)
        if relative is not None:
            self.store.set_part_owner(relative, task_id)

    def _part_to_claim(self, part: Path, task_id: str) -> str | None:
        """``part``'s path to record as ``task_id``'s, once a part of any other origin is
        deleted; None when it is the task's already."""
        relative = part.relative_to(self.output_dir).as_posix()
        owner = self.store.part_owner(relative)
        if owner == task_id:
            return None
        if owner is not None or part.exists():
            part.unlink(missing_ok=True)
        return relative

    async def _render_again(self, work: Work, reason: str) -> None:
        """The service lost a finished clip that was never delivered: render it again."""
        work.attempt_budget = max(work.attempt_budget, work.render.attempt + 1)
        if not await self._again(work, reason):
            return
        await self.limit.acquire()
        await self._submit_and_follow(work, new_attempt=True)
