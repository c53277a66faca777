"""The export: the chosen take of each shot copied in storyboard order, a cut list, an animatic.

For each shot the picked take is used, else its first finished take that is not rejected.
Clips are copied as ``NN-<shot-id>.mp4`` (NN from 01, at least two digits), ``cut.csv`` lists
every shot (those without a clip with an empty ``file``), and where ffmpeg is available the
clips are joined into ``animatic.mp4``. ``--format`` chooses the cut list's forms: ``csv``
(the default), and the editors' timelines that ``runner.timeline`` builds with
OpenTimelineIO (``otio``, ``edl``, ``fcpxml``, ``xml``). A ``cut.csv`` cell of the user's
text that a spreadsheet would run as a formula is written as text (``spreadsheet_text``).
Reads the store and the files, never the API. Files are written through ``runner.files`` (a
new temp file renamed into place, no link followed); a write that fails is one
``CannotWrite`` line.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from runner.files import copy_atomic, replacing, write_atomic, writing
from runner.model import Manifest, Shot
from runner.report import ReviewStore, TakeRecord, take_records
from runner.timeline import (
    TIMELINE_FORMATS,
    ProbeError,
    TimelineError,
    build_timeline,
    clip_timings,
    timeline_text,
)

CUT_LIST = "cut.csv"
ANIMATIC = "animatic.mp4"
CUT_COLUMNS = (
    "index",
    "shot",
    "take",
    "file",
    "source",
    "seconds",
    "prompt",
    "provider",
    "model",
)
#: What ``export --format`` takes: the CSV cut list and the timeline formats.
FORMATS = ("csv", *TIMELINE_FORMATS)

Reason = Literal["picked", "first finished"]

#: What a spreadsheet app reads as the start of a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class CutEntry:
    """One shot in the cut: the take chosen for it, or why there is none."""

    index: int
    shot: Shot
    take: int | None
    file: str | None
    source: Path | None
    reason: Reason | None
    problem: str | None = None
    #: The clip is of an earlier version of the shot (edited since, not yet run again).
    outdated: bool = False


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What ``export_cut`` wrote; ``animatic_note`` says why there is no animatic, if none."""

    to: Path
    entries: tuple[CutEntry, ...]
    cut_list: Path | None
    animatic: Path | None
    animatic_note: str | None = None
    animatic_failed: bool = False
    #: The timeline files written (``cut.otio``...), in the order asked for.
    timelines: tuple[Path, ...] = ()
    #: Why the timelines asked for were not written (no ffprobe, an unreadable clip).
    timeline_problem: str | None = None

    @property
    def missing(self) -> tuple[CutEntry, ...]:
        return tuple(e for e in self.entries if e.file is None)


def clip_name(position: int, count: int, shot_id: str) -> str:
    """``NN-<shot-id>.mp4``: NN from 01, as many digits as the last index needs (at least 2)."""
    width = max(2, len(str(count)))
    return f"{position:0{width}d}-{shot_id}.mp4"


def choose_take(
    shot: Shot,
    out: Path,
    records: Mapping[tuple[str, int], TakeRecord],
    verdicts: Mapping[tuple[str, int], str],
) -> tuple[int, Path, Reason] | str:
    """The take to export for a shot with its clip and reason, or why there is none."""
    finished: list[tuple[int, Path]] = []
    missing_files: list[int] = []
    for take in range(1, shot.takes + 1):
        record = records.get((shot.id, take))
        if record is None or record.state != "done":
            continue
        path = record.clip_file(out, shot.id, take)
        if path.is_file():
            finished.append((take, path))
        else:
            missing_files.append(take)
    for take, path in finished:
        if verdicts.get((shot.id, take)) == "picked":
            return take, path, "picked"
    for take, path in finished:
        if verdicts.get((shot.id, take)) != "rejected":
            return take, path, "first finished"
    if finished:
        return "every finished take is rejected"
    if missing_files:
        takes = ", ".join(str(t) for t in missing_files)
        return f"clip file missing for take {takes}: run again to fetch it"
    return _why_unfinished(shot, records)


def _why_unfinished(shot: Shot, records: Mapping[tuple[str, int], TakeRecord]) -> str:
    states = []
    for take in range(1, shot.takes + 1):
        record = records.get((shot.id, take), TakeRecord())
        detail = f": {record.error}" if record.state == "failed" and record.error else ""
        states.append(f"take {take} {record.state}{detail}")
    return "no finished take (" + "; ".join(states) + ")"


def plan_cut(
    manifest: Manifest,
    records: Mapping[tuple[str, int], TakeRecord],
    verdicts: Mapping[tuple[str, int], str],
) -> tuple[CutEntry, ...]:
    """One entry per shot in storyboard order, each with its chosen clip or a problem."""
    count = len(manifest.shots)
    entries = []
    for position, shot in enumerate(manifest.shots, start=1):
        choice = choose_take(shot, manifest.output_dir, records, verdicts)
        if isinstance(choice, str):
            entries.append(CutEntry(position, shot, None, None, None, None, problem=choice))
        else:
            take, source, reason = choice
            name = clip_name(position, count, shot.id)
            outdated = records[(shot.id, take)].outdated_for(shot, take)
            entries.append(CutEntry(position, shot, take, name, source, reason, outdated=outdated))
    return tuple(entries)


def export_cut(
    manifest: Manifest,
    store: ReviewStore | None,
    to: Path,
    *,
    ffmpeg: str | None = None,
    animatic: bool = True,
    formats: Sequence[str] = ("csv",),
    ffprobe: str | None = None,
) -> ExportResult:
    """Copy the chosen clips into ``to``, write the cut list in each of ``formats``
    (``cut.csv``, ``cut.otio``...; the timelines need ``ffprobe``) and, given ffmpeg,
    ``animatic.mp4``.

    Raises ``CannotWrite`` (exit 2) when ``to`` or a file in it cannot be written; what was
    written before stays whole, and no temp file is left behind.
    """
    records = take_records(store) if store is not None else {}
    verdicts = store.verdicts() if store is not None else {}
    entries = plan_cut(manifest, records, verdicts)
    with writing(to):
        to.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        if entry.file is not None and entry.source is not None:
            with writing(to / entry.file):
                copy_atomic(entry.source, to / entry.file)
    cut_list = write_cut_list(to / CUT_LIST, entries) if "csv" in formats else None
    timelines, problem = _write_timelines(manifest.name, entries, to, formats, ffprobe)
    written = ExportResult(
        to, entries, cut_list, None, timelines=timelines, timeline_problem=problem
    )
    clips = [to / e.file for e in entries if e.file is not None]
    if not animatic:
        return replace(written, animatic_note="animatic not asked for")
    if not clips:
        return replace(written, animatic_note="no clip to join: animatic.mp4 skipped")
    if ffmpeg is None:
        note = (
            "ffmpeg not found: animatic.mp4 skipped "
            "(install the ffmpeg extra, pip install 'shotrunner[ffmpeg]', or put ffmpeg on PATH)"
        )
        return replace(written, animatic_note=note)
    try:
        path = join_clips(clips, to / ANIMATIC, ffmpeg)
    except AnimaticError as error:
        return replace(written, animatic_note=str(error), animatic_failed=True)
    return replace(written, animatic=path)


def _write_timelines(
    title: str,
    entries: Sequence[CutEntry],
    to: Path,
    formats: Sequence[str],
    ffprobe: str | None,
) -> tuple[tuple[Path, ...], str | None]:
    """Each timeline format asked for, built once from the exported clips; or why none."""
    wanted = [name for name in dict.fromkeys(formats) if name in TIMELINE_FORMATS]
    if not wanted:
        return (), None
    if ffprobe is None:
        names = ", ".join(TIMELINE_FORMATS[name].file for name in wanted)
        return (), f"ffprobe not found: {names} not written (put ffmpeg's ffprobe on PATH)"
    try:
        timeline = build_timeline(title, entries, clip_timings(to, entries, ffprobe))
    except ProbeError as error:
        return (), f"{error}: timelines not written"
    paths, problems = [], []
    for name in wanted:
        try:
            text = timeline_text(timeline, name)
        except TimelineError as error:
            problems.append(str(error))
            continue
        paths.append(write_timeline(to / TIMELINE_FORMATS[name].file, text))
    return tuple(paths), "; ".join(problems) or None


def spreadsheet_text(cell: str) -> str:
    """``cell`` as a spreadsheet app shows it as text rather than running it as a formula.

    A cell that starts like a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return)
    gets a leading single quote, as OWASP advises: a prompt such as
    ``=HYPERLINK("http://...")`` must not become a live link or command when the cut list
    is opened. Other cells are returned as they are.
    """
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


def write_cut_list(path: Path, entries: Sequence[CutEntry]) -> Path:
    """``cut.csv``: one row per shot, in storyboard order.

    Only the cells of the user's own text (shot id, prompt, model) go through
    ``spreadsheet_text``: the others are numbers, names made from an id that begins with a
    letter or digit, absolute paths and provider names, none of which can start like a
    formula.
    """
    with (
        writing(path),
        replacing(path) as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow(CUT_COLUMNS)
        for e in entries:
            writer.writerow(
                [
                    e.index,
                    spreadsheet_text(e.shot.id),
                    "" if e.take is None else e.take,
                    e.file or "",
                    "" if e.source is None else str(e.source.absolute()),
                    "" if e.shot.seconds is None else e.shot.seconds,
                    spreadsheet_text(e.shot.prompt),
                    e.shot.provider,
                    spreadsheet_text(e.shot.model),
                ]
            )
    return path


def write_timeline(path: Path, text: str) -> Path:
    """A timeline file (the text its OpenTimelineIO adapter made), replaced whole."""
    with writing(path):
        write_atomic(path, text.encode("utf-8"))
    return path


# --- the animatic ------------------------------------------------------------------------


class AnimaticError(Exception):
    """ffmpeg could not join the clips; the message holds its last words."""


def find_ffmpeg() -> str | None:
    """The ffmpeg of the ``ffmpeg`` extra (imageio-ffmpeg) if installed, else one on PATH."""
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        pass
    else:
        try:
            exe: str = imageio_ffmpeg.get_ffmpeg_exe()
            return exe
        except RuntimeError:  # the package is there but its binary is not
            pass
    return shutil.which("ffmpeg")


_STREAM = re.compile(r"Stream #\d+:\d+.*?: (Video|Audio): (.*)")
_SIZE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_FPS = re.compile(r"([\d.]+) (?:fps|tbr)")
_HZ = re.compile(r"(\d+) Hz, ([^,]+)")


def stream_signature(clip: Path, ffmpeg: str) -> tuple[str, ...]:
    """What must match for clips to be joined without re-encoding: codec, size, rate, format."""
    result = subprocess.run(
        [ffmpeg, "-hide_banner", "-i", str(clip)],
        capture_output=True,
        text=True,
        check=False,
    )
    signature: list[str] = []
    for match in _STREAM.finditer(result.stderr):
        kind, rest = match.groups()
        codec = rest.split()[0] if rest.split() else ""
        if kind == "Video":
            size = _SIZE.search(rest)
            fps = _FPS.search(rest)
            pix = re.search(r"\b(yuv\w+|yuvj\w+|nv12|rgb\w+|gray\w*)\b", rest)
            signature.append(
                ":".join(
                    [
                        "v",
                        codec,
                        size.group(0) if size else "?",
                        fps.group(1) if fps else "?",
                        pix.group(1) if pix else "?",
                    ]
                )
            )
        else:
            hz = _HZ.search(rest)
            signature.append(":".join(["a", codec, *(hz.groups() if hz else ("?",))]))
    return tuple(signature)


def join_clips(clips: Sequence[Path], target: Path, ffmpeg: str) -> Path:
    """Join clips into ``target``: stream copy when they match, else one re-encode.

    ffmpeg writes by name, following links: it writes inside a new folder of this process's
    own (``mkdtemp``, mode 0700) next to ``target``, where nobody else can plant one, and the
    result is renamed into place.
    """
    signatures = [stream_signature(clip, ffmpeg) for clip in clips]
    with writing(target):
        private = Path(tempfile.mkdtemp(prefix=f".{target.stem}.", dir=target.parent))
        part = private / target.name
        try:
            if len(set(signatures)) == 1 and signatures[0]:
                _concat_copy(clips, part, ffmpeg)
            else:
                _concat_reencode(clips, signatures, part, ffmpeg)
            os.replace(part, target)
        finally:
            shutil.rmtree(private, ignore_errors=True)
    return target


def _run_ffmpeg(ffmpeg: str, args: Sequence[str], part: Path) -> None:
    """Run ffmpeg quietly with ``args`` (inputs and encoding), writing a faststart MP4 to
    ``part``; a failure raises AnimaticError with ffmpeg's last lines."""
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *args]
    command += ["-movflags", "+faststart", "-f", "mp4", str(part)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = [line for line in result.stderr.splitlines() if line.strip()][-3:]
        raise AnimaticError("ffmpeg failed to make animatic.mp4: " + " | ".join(last))


def _concat_copy(clips: Sequence[Path], part: Path, ffmpeg: str) -> None:
    # The concat demuxer joins identical streams without decoding them: fast and lossless.
    with tempfile.TemporaryDirectory(prefix="shotrunner-concat-") as tmp:
        listing = Path(tmp) / "clips.txt"
        lines = []
        for clip in clips:
            quoted = str(clip.absolute()).replace("'", "'\\''")
            lines.append(f"file '{quoted}'\n")
        listing.write_text("".join(lines), encoding="utf-8")
        _run_ffmpeg(ffmpeg, ["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy"], part)


def _concat_reencode(
    clips: Sequence[Path], signatures: Sequence[tuple[str, ...]], part: Path, ffmpeg: str
) -> None:
    # Clips that differ in codec, size or rate cannot share one stream as they are: the
    # concat filter decodes each, fits it into the first clip's frame, and encodes once.
    width, height, fps = 1280, 720, "24"
    for signature in signatures:
        video = next((s for s in signature if s.startswith("v:")), None)
        if video:
            _, _, size, rate, _ = video.split(":")
            if "x" in size:
                width, height = (int(n) for n in size.split("x"))
            if rate != "?":
                fps = rate
            break
    with_audio = all(any(s.startswith("a:") for s in sig) for sig in signatures)
    inputs: list[str] = []
    chains: list[str] = []
    pads: list[str] = []
    for i, clip in enumerate(clips):
        inputs += ["-i", str(clip)]
        chains.append(
            f"[{i}:v:0]scale={width}:{height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps},format=yuv420p[v{i}]"
        )
        pads.append(f"[v{i}]")
        if with_audio:
            chains.append(f"[{i}:a:0]aresample=48000,aformat=channel_layouts=stereo[a{i}]")
            pads.append(f"[a{i}]")
    audio = 1 if with_audio else 0
    graph = ";".join(chains) + ";" + "".join(pads) + f"concat=n={len(clips)}:v=1:a={audio}[v]"
    maps = ["-map", "[v]"]
    if with_audio:
        graph += "[a]"
        maps += ["-map", "[a]", "-c:a", "aac"]
    encode = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
    _run_ffmpeg(ffmpeg, [*inputs, "-filter_complex", graph, *maps, *encode], part)
