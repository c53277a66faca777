"""The review surface: ``report``, ``review``, ``pick``, ``reject``, ``export``.

Each command loads the manifest, opens the batch's store and calls one function of
``runner.report``, ``runner.review_app`` or ``runner.export``; none of them reaches the
network (``review`` serves on 127.0.0.1 only).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runner.cli.common import echo_err, examples, handles_errors, out_option
from runner.errors import ExitCode, InputError
from runner.text import visible

if TYPE_CHECKING:
    from runner.model import Manifest
    from runner.report import Verdict

#: What ``export --format`` takes (``runner.export.FORMATS``, named here so that ``--help``
#: does not import the export's libraries).
EXPORT_FORMATS = ("csv", "otio", "edl", "fcpxml", "xml")

manifest_argument = click.argument("manifest_path", metavar="MANIFEST")


def _load(manifest_path: str, out: Path | None) -> Manifest:
    from runner.manifest import load_manifest

    return load_manifest(manifest_path, out=out)


def _no_batch(manifest: Manifest) -> InputError:
    return InputError(
        f"no batch at {manifest.output_dir} (no state.db): nothing has been rendered yet; "
        f"run `shotrunner run {manifest.display_path}` first, or pass the batch's --out"
    )


@click.command(
    name="report",
    epilog=examples(
        "shotrunner report my-board.yaml",
        "shotrunner report my-board.yaml --out renders/night-2",
    ),
)
@manifest_argument
@out_option
@handles_errors
def report_cmd(manifest_path: str, out: Path | None) -> None:
    """Write the contact sheet, <output_dir>/index.html."""
    from runner.report import write_report
    from runner.store import Store

    manifest = _load(manifest_path, out)
    store = Store.open_existing(manifest.output_dir)
    if store is None:  # before any run: every take not started, and no database created
        page = write_report(manifest, None)
    else:
        with store:
            page = write_report(manifest, store)
    click.echo(visible(str(page)))


@click.command(
    name="review",
    epilog=examples(
        "shotrunner review storyboard.yaml --open  # pick and reject takes in the browser",
        "shotrunner review storyboard.yaml --port 8765",
    ),
)
@manifest_argument
@out_option
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 to serve on (0: any free one).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the browser.")
@handles_errors
def review_cmd(manifest_path: str, out: Path | None, port: int, open_browser: bool) -> None:
    """Serve the contact sheet on 127.0.0.1 to pick, reject and compare takes, live.

    Prints the page's URL, which carries a random token: without it the server answers 403.
    Runs until Ctrl-C.
    """
    from runner.review_app import serve

    manifest = _load(manifest_path, out)
    serve(manifest, port=port, open_browser=open_browser, announce=_announce)


def _announce(line: str) -> None:
    # Flushed at once: a script or a test reads the URL while the server runs.
    click.echo(line)
    sys.stdout.flush()


def _give_verdict(
    manifest_path: str, out: Path | None, shot_id: str, take: int, verdict: Verdict
) -> None:
    from runner.report import set_verdict, write_report
    from runner.store import STATE_DB, Store

    manifest = _load(manifest_path, out)
    if not (manifest.output_dir / STATE_DB).is_file():
        raise _no_batch(manifest)
    with Store.open(manifest.output_dir) as store:
        shot = set_verdict(manifest, store, shot_id, take, verdict)
        page = write_report(manifest, store)
    click.echo(f"{verdict} {shot.id} take {take} ({visible(str(page))})")


def _verdict_command(name: str, verdict: Verdict, summary: str, epilog: str) -> click.Command:
    """``pick`` and ``reject``: the same arguments, a different verdict."""

    @click.command(name=name, help=summary, epilog=epilog)
    @manifest_argument
    @click.argument("shot_id", metavar="SHOT")
    @click.argument("take", metavar="TAKE", type=int)
    @out_option
    @handles_errors
    def verdict_cmd(manifest_path: str, shot_id: str, take: int, out: Path | None) -> None:
        _give_verdict(manifest_path, out, shot_id, take, verdict)

    return verdict_cmd


pick_cmd = _verdict_command(
    "pick",
    "picked",
    "Mark a take as the chosen one for its shot (un-picks the shot's other take).",
    examples("shotrunner pick my-board.yaml s02-hero 2"),
)
reject_cmd = _verdict_command(
    "reject",
    "rejected",
    "Mark a take as rejected (run --rerender-rejected renders it again).",
    examples(
        "shotrunner reject my-board.yaml s02-hero 1",
        "shotrunner run my-board.yaml --rerender-rejected",
    ),
)


@click.command(
    name="export",
    epilog=examples(
        "shotrunner export my-board.yaml --to cut/",
        "shotrunner export my-board.yaml --to cut/ --format otio --format edl  # for an editor",
    ),
)
@manifest_argument
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to copy the chosen clips, cut.csv and animatic.mp4 into.",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(EXPORT_FORMATS),
    help="Cut list to write; repeat for several: csv (cut.csv, the default), otio (cut.otio), "
    "edl (cut.edl), fcpxml (cut.fcpxml, Final Cut Pro X), xml (cut.xml, Final Cut Pro 7 XML).",
)
@click.option("--no-animatic", is_flag=True, help="Do not join the clips into animatic.mp4.")
@out_option
@handles_errors
def export_cmd(
    manifest_path: str, to: Path, formats: tuple[str, ...], no_animatic: bool, out: Path | None
) -> None:
    """Copy the chosen take of each shot, in storyboard order, with a cut list.

    Exits 1 when a shot has no finished take (it is listed in cut.csv with an empty file),
    when ffmpeg failed to make the animatic, or when a timeline could not be written.
    """
    from runner.export import export_cut, find_ffmpeg
    from runner.store import Store
    from runner.timeline import TIMELINE_FORMATS, find_ffprobe

    manifest = _load(manifest_path, out)
    store = Store.open_existing(manifest.output_dir)
    if store is None:
        raise _no_batch(manifest)
    formats = formats or ("csv",)
    with store:
        ffmpeg = find_ffmpeg()
        ffprobe = find_ffprobe(ffmpeg) if any(f in TIMELINE_FORMATS for f in formats) else None
        result = export_cut(
            manifest,
            store,
            to,
            ffmpeg=None if no_animatic else ffmpeg,
            animatic=not no_animatic,
            formats=formats,
            ffprobe=ffprobe,
        )
    for entry in result.entries:
        if entry.file is not None:
            copied = visible(str(to / entry.file))
            click.echo(f"{copied}  {entry.shot.id} take {entry.take} ({entry.reason})")
            if entry.outdated:
                echo_err(
                    f"note: shot {entry.shot.id} take {entry.take} was rendered before the shot "
                    "was last edited; `shotrunner run` renders it again"
                )
        else:
            echo_err(f"error: shot {entry.shot.id}: {entry.problem}; left out of the cut")
    for written in (result.cut_list, *result.timelines):
        if written is not None:
            click.echo(visible(str(written)))
    if result.timeline_problem:
        echo_err(f"error: {result.timeline_problem}")
    if result.animatic is not None:
        click.echo(visible(str(result.animatic)))
    elif result.animatic_failed:
        echo_err(f"error: {result.animatic_note}")
    elif not no_animatic and result.animatic_note:
        echo_err(f"note: {result.animatic_note}")
    if result.missing or result.animatic_failed or result.timeline_problem:
        sys.exit(int(ExitCode.JOBS_FAILED))
