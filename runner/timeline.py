"""The cut as an editor's timeline: OpenTimelineIO, and the EDL and XML its adapters write.

``build_timeline`` turns the export's cut (``runner.export.plan_cut``) into one
OpenTimelineIO timeline: a single video track holding the exported clip of each shot in
storyboard order, each with the duration and frame rate ffprobe reads from the file, its
media reference relative to the export folder (``01-s01-wide.mp4``), the shot id as its
name and the prompt as a marker. ``timeline_text`` hands that timeline to the adapter of a
format (``otio``, ``edl``, ``fcpxml``, ``xml``): no format is written by hand here. The
EDL and the XML formats count time in frames of one standard rate for the whole sequence,
so their timeline is first put ``at_edit_rate``; ``cut.otio`` keeps each clip's own rate.
Reads the exported clips, never the store or the API.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.text import visible

if TYPE_CHECKING:
    import opentimelineio as otio

    from runner.export import CutEntry


@dataclass(frozen=True, slots=True)
class TimelineFormat:
    """A format an editor reads: its file in the export folder and the OTIO adapter."""

    name: str
    file: str
    adapter: str
    reads: str
    #: Counts time in frames of one standard (SMPTE) rate for the whole sequence: the
    #: timeline is handed over ``at_edit_rate``. Only OpenTimelineIO's own keeps every
    #: clip's rate as it is.
    edit_rate: bool = True


#: The timeline formats, by the name ``export --format`` takes.
TIMELINE_FORMATS: dict[str, TimelineFormat] = {
    f.name: f
    for f in (
        TimelineFormat(
            "otio", "cut.otio", "otio_json", "OpenTimelineIO (Resolve, RV, Hiero)", edit_rate=False
        ),
        TimelineFormat("edl", "cut.edl", "cmx_3600", "CMX 3600 EDL (any editor)"),
        TimelineFormat(
            "fcpxml", "cut.fcpxml", "fcpx_xml", "Final Cut Pro X XML (Final Cut, Resolve)"
        ),
        TimelineFormat("xml", "cut.xml", "fcp_xml", "Final Cut Pro 7 XML (Premiere, Resolve)"),
    )
}


@dataclass(frozen=True, slots=True)
class ClipTiming:
    """What ffprobe reports of a clip's first video stream: frames and frame rate."""

    frames: int
    rate: Fraction

    @property
    def seconds(self) -> float:
        return float(self.frames / self.rate)


class ProbeError(Exception):
    """ffprobe could not read a clip's length or rate; the message says which and why."""


class TimelineError(Exception):
    """An adapter could not write the timeline in its format; the message says why."""


def find_ffprobe(ffmpeg: str | None = None) -> str | None:
    """ffprobe beside the ffmpeg in use (one install ships both), else one on PATH.

    The ``ffmpeg`` extra (imageio-ffmpeg) brings no ffprobe, hence the PATH fallback."""
    if ffmpeg is not None:
        beside = Path(ffmpeg).with_name("ffprobe")
        if beside.is_file():
            return str(beside)
    return shutil.which("ffprobe")


_RATE = re.compile(r"^(\d+)/(\d+)$")


def probe(clip: Path, ffprobe: str) -> ClipTiming:
    """The frame count and rate of ``clip``'s first video stream, as ffprobe reads them."""
    result = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=r_frame_rate,avg_frame_rate,nb_frames,duration:format=duration",
            "-of",
            "json",
            str(clip),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        last = " | ".join(line for line in result.stderr.splitlines() if line.strip())[-300:]
        raise ProbeError(f"ffprobe cannot read {clip.name}: {last or 'no output'}")
    try:
        document: dict[str, Any] = json.loads(result.stdout)
        stream = document["streams"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ProbeError(f"ffprobe found no video stream in {clip.name}") from None
    rate = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
    if rate is None:
        raise ProbeError(f"ffprobe reports no frame rate for {clip.name}")
    frames = _int(stream.get("nb_frames"))
    if frames is None:
        # Some containers do not count frames: the duration at the rate gives them.
        seconds = _float(stream.get("duration")) or _float(
            document.get("format", {}).get("duration")
        )
        if seconds is None:
            raise ProbeError(f"ffprobe reports no duration for {clip.name}")
        frames = round(seconds * rate)
    if frames <= 0:
        raise ProbeError(f"ffprobe reports no frames in {clip.name}")
    return ClipTiming(frames, rate)


def _rate(value: object) -> Fraction | None:
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(2)) == 0 or int(match.group(1)) == 0:
        return None
    return Fraction(int(match.group(1)), int(match.group(2)))


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _float(value: object) -> float | None:
    try:
        return float(str(value))
    except ValueError:
        return None


def _one_line(text: str) -> str:
    """A prompt on one line, for a marker's name (an EDL's locator holds one line), with
    its other control characters shown as escapes (``_as_text``)."""
    return _as_text(" ".join(text.split()))


def _as_text(text: str) -> str:
    """A prompt as an editor's file can hold it: line ends and tabs kept, every other control
    character (a terminal escape, a BEL, a NUL, which XML cannot hold at all and an editor
    would show raw) written as its escape, ``\\x1b``, and so are U+FFFE and U+FFFF."""
    lines = text.replace("\r\n", "\n").split("\n")
    shown = "\n".join("\t".join(visible(cell) for cell in line.split("\t")) for line in lines)
    return _NOT_XML.sub(lambda match: f"\\u{ord(match.group()):04x}", shown)


# The characters besides controls that XML 1.0 cannot hold: U+FFFE, U+FFFF, and surrogates.
_NOT_XML = re.compile("[\ufffe\uffff\ud800-\udfff]")


def build_timeline(
    title: str, entries: Sequence[CutEntry], timings: dict[str, ClipTiming]
) -> otio.schema.Timeline:
    """One video track: the exported clip of each shot in order (shots with no clip are left
    out; export reports them). ``timings`` holds each clip's timing by its file name."""
    import opentimelineio as otio

    timeline = otio.schema.Timeline(name=title)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for entry in entries:
        if entry.file is None:
            continue
        timing = timings[entry.file]
        rate = float(timing.rate)
        available = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(timing.frames, rate)
        )
        clip = otio.schema.Clip(
            name=entry.shot.id,
            # Relative to the export folder, so the folder can move as one piece.
            media_reference=otio.schema.ExternalReference(
                target_url=entry.file, available_range=available
            ),
            source_range=available,
            metadata={
                "shotrunner": {
                    "index": entry.index,
                    "shot": entry.shot.id,
                    "take": entry.take,
                    "reason": entry.reason,
                    "prompt": _as_text(entry.shot.prompt),
                }
            },
        )
        clip.markers.append(
            otio.schema.Marker(
                name=_one_line(entry.shot.prompt),
                marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(0, rate)
                ),
                comment=_as_text(entry.shot.prompt),
            )
        )
        track.append(clip)
    return timeline


#: The edit rate of a sequence whose first clip runs at a rate SMPTE timecode cannot count.
FALLBACK_EDIT_RATE = 24.0


def at_edit_rate(timeline: otio.schema.Timeline) -> otio.schema.Timeline:
    """A copy of ``timeline`` counted in one SMPTE rate, as an EDL or a Final Cut sequence
    must be (the XML adapters know only the standard rates): its first clip's
    rate where timecode can count it, else 24 fps. Each clip keeps its length in seconds
    (to the nearest frame of that rate)."""
    import opentimelineio as otio

    copy: otio.schema.Timeline = timeline.deepcopy()
    clips = list(copy.find_clips())
    if not clips:
        return copy
    first = clips[0].source_range.duration.rate
    rate = first if otio.opentime.RationalTime.is_valid_timecode_rate(first) else FALLBACK_EDIT_RATE

    def rescaled(span: otio.opentime.TimeRange) -> otio.opentime.TimeRange:
        start = round(span.start_time.rescaled_to(rate).value)
        length = round(span.duration.rescaled_to(rate).value)
        return otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(length, rate)
        )

    for clip in clips:
        clip.source_range = rescaled(clip.source_range)
        reference = clip.media_reference
        if reference.available_range is not None:
            reference.available_range = rescaled(reference.available_range)
        for marker in clip.markers:
            marker.marked_range = rescaled(marker.marked_range)
    return copy


def timeline_text(timeline: otio.schema.Timeline, format_name: str) -> str:
    """The timeline in one format, as its OpenTimelineIO adapter writes it."""
    from xml.parsers.expat import ExpatError

    import opentimelineio as otio

    chosen = TIMELINE_FORMATS[format_name]
    if chosen.edit_rate:
        timeline = at_edit_rate(timeline)
    try:
        text: str = otio.adapters.write_to_string(timeline, adapter_name=chosen.adapter)
    except (otio.exceptions.OTIOError, ValueError, ExpatError) as error:
        # The adapters raise ValueError for what their format cannot say (a rate, a name);
        # the FCP 7 XML adapter re-parses what it wrote, and raises ExpatError for a character
        # XML cannot hold that slipped past ``_as_text``.
        raise TimelineError(f"cannot write {chosen.file}: {error}") from None
    return text


def clip_timings(to: Path, entries: Sequence[CutEntry], ffprobe: str) -> dict[str, ClipTiming]:
    """The timing of every exported clip in ``to``, by file name."""
    return {entry.file: probe(to / entry.file, ffprobe) for entry in entries if entry.file}
