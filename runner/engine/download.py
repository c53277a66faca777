"""The download step: a finished task's clip fetched once into a part file that resumes (a fresh
link when one expires, or when what arrived cannot be the clip), the part claimed for its task
before a byte is written. Next: ``DELIVER`` the clip (an earlier render's goes into
``.history/`` here, then ``END``), ``SUBMIT_NEW`` when the service lost it, ``POLL`` when the
task is not finished after all, or ``END`` when the task stays owed to the next run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runner.api.errors import (
    ApiError,
    AuthError,
    BadClip,
    LinkExpired,
    NotFound,
    RateLimited,
    TransientError,
)
from runner.delivery import part_of
from runner.engine.deliver import earlier_path, final_path, keep_earlier
from runner.engine.states import MAX_TASK_ERRORS, NOT_FOUND_CONFIRMATIONS, Step, move
from runner.files import writing
from runner.store import now_iso

if TYPE_CHECKING:
    from runner.engine.run import Run
    from runner.engine.work import Work


async def download(run: Run, work: Work) -> Step:
    """Download the clip of ``work``'s finished task (``work.task``, when just polled)."""
    render, task = work.render, work.task
    part = part_of(final_path(run, work.job) if work.jobs else earlier_path(run, work))
    if render.state != "done":
        move(render, "downloading")
        render.error = render.error_code = None
        render.progress = 100.0 if render.progress is not None else None
        render.completed_at = render.completed_at or now_iso()
        claim = None
        if task is not None and task.status == "completed":
            # The part file is claimed for the task in the same transaction.
            relative = _part_to_claim(run, part, task.id)
            claim = None if relative is None else (relative, task.id)
        run.record(work, "completed", part_owner=claim)
    errors = unknown = 0
    while True:
        if task is None or task.status != "completed":
            assert render.task_id is not None
            try:
                task = await run.client_for(work).retrieve(render.task_id)
            except NotFound:
                run.heard()  # an answer: the API is there
                unknown += 1
                if unknown < NOT_FOUND_CONFIRMATIONS:
                    await run.sleep(run.options.poll_interval)
                    continue
                return _lost(run, work)
            except AuthError:
                raise
            except ApiError as error:
                errors += 1
                if not await run.back_off(work, errors, error, "fetching", "download"):
                    return Step.END
                continue
            run.heard()
            if task.status == "failed":
                return _lost(run, work)
            if task.status != "completed":
                # Recorded as downloading, but the task says otherwise: follow it again.
                move(render, "running")
                run.record(work, task.raw_status)
                work.task = task
                return Step.POLL
        client = run.client_for(work)
        if task.video_url is None and task.video_bytes is None and not client.profile.content_route:
            # Paid for, yet nothing to fetch (a Runway task without output): never submitted
            # again; the next run asks the task again.
            return run.keep_owed(work, "the task completed without a video URL", "download")
        url = task.video_url or client.content_url(task.id)
        _claim_part(run, part, task.id)
        try:
            with writing(part, run=True):
                if task.video_bytes is not None:
                    downloaded = client.save_inline(task.video_bytes, part)
                else:
                    downloaded = await client.download(url, part)
        except AuthError:
            raise
        except (LinkExpired, BadClip) as error:
            # An expired link, or a body that cannot be the clip (not a media container,
            # over --max-clip-size): the server's fault, never delivered. The task is asked
            # for a fresh URL, and the clip downloaded again from it.
            errors += 1
            task = None
            if errors >= MAX_TASK_ERRORS:
                reason = (
                    "the clip's link keeps expiring"
                    if isinstance(error, LinkExpired)
                    else f"download failed: {error.message}"
                )
                return run.keep_owed(work, reason, "download")
            run.view.retry(work.label, f"download: {error.message}; asking for a fresh URL")
            if errors > 1:
                # The first fresh link is asked at once; links that keep failing back off.
                await run.sleep(run.task_backoff.delay(errors - 1))
            continue
        except (TransientError, RateLimited) as error:
            # DownloadError is transient: the part file resumes or restarts.
            errors += 1
            if not await run.back_off(work, errors, error, "download", "download"):
                return Step.END
            continue
        except ApiError as error:
            return run.keep_owed(work, f"download failed: {error.message}", "download")
        break
    render.sha256, render.bytes = downloaded.sha256, downloaded.bytes
    render.error = render.error_code = None
    render.downloaded_at = now_iso()
    if work.earlier is not None:
        # Put in place before the render is recorded done: a crash in between fetches it
        # again rather than leave a part file no run looks for.
        kept = keep_earlier(run, work, part)
    move(render, "done")
    render.progress = 100.0
    run.record(work, f"{downloaded.bytes} bytes", show=False)
    if work.earlier is not None:
        # The part is in .history/ now: its owner record goes (delivery does the same for a
        # job's clip in its own transaction).
        run.store.set_part_owner(part.relative_to(run.output_dir).as_posix(), None)
        run.result.earlier_collected += 1
        run.view.state(work.label, "done", f"kept as {kept.relative_to(run.output_dir)}")
        return Step.END
    work.source = part
    return Step.DELIVER


def _lost(run: Run, work: Work) -> Step:
    """The service lost a finished clip that was never delivered: render it again (one more
    attempt is allowed for it, whatever the budget)."""
    work.attempt_budget = max(work.attempt_budget, work.render.attempt + 1)
    return run.again(work, "the service no longer has the clip")


def _claim_part(run: Run, part: Path, task_id: str) -> None:
    """Make ``part`` this task's before a byte is written: a part another task wrote (an
    edited shot's earlier render, swapped shot ids) or one of unknown origin is deleted,
    never resumed with ``Range``, so no clip is ever a hybrid of two tasks."""
    relative = _part_to_claim(run, part, task_id)
    if relative is not None:
        run.store.set_part_owner(relative, task_id)


def _part_to_claim(run: Run, part: Path, task_id: str) -> str | None:
    """``part``'s path to record as ``task_id``'s, once a part of any other origin is
    deleted; None when it is the task's already."""
    relative = part.relative_to(run.output_dir).as_posix()
    owner = run.store.part_owner(relative)
    if owner == task_id:
        return None
    if owner is not None or part.exists():
        part.unlink(missing_ok=True)
    return relative
