"""The values that flow between the steps: resolved shots, manifests and jobs.

The manifest layer produces them; the planner, the engine, the store and the report
consume them. They carry no behaviour that needs HTTP, SQLite or the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from runner.diagnostics import Diagnostic

Mode = Literal["text", "first_frame", "first_last", "reference"]
ImageKind = Literal["file", "url", "data", "shot"]

#: Job states: one vocabulary for the store, ``status`` and the report (docs/running.md).
JobState = Literal["pending", "submitting", "queued", "running", "downloading", "done", "failed"]
JOB_STATES: tuple[JobState, ...] = (
    "pending",
    "submitting",
    "queued",
    "running",
    "downloading",
    "done",
    "failed",
)

#: States of a job whose task is being created or is on the service: polled, never resubmitted.
IN_FLIGHT_STATES: tuple[JobState, ...] = ("submitting", "queued", "running", "downloading")
#: Error codes of a failed render whose task is kept, to be asked again before any new
#: create: timed out, or its clip not downloaded.
KEPT_TASK_CODES: tuple[str, ...] = ("timeout", "download")

#: Plan actions (docs/running.md, "How each job is decided").
Action = Literal["submit", "resume", "skip", "fetch", "retry", "hold"]
ACTIONS: tuple[Action, ...] = ("submit", "resume", "skip", "fetch", "retry", "hold")

#: Seconds counted for a shot that sets no ``seconds`` (the service's default applies;
#: the money guard counts it at this length rather than at nothing).
ASSUMED_SECONDS = 8

DEFAULT_MODEL = "omni-fast"
#: The video API a shot goes to when the manifest names none (``runner.providers``).
DEFAULT_PROVIDER = "gateway"


#: The generic request's own fields, set by the runner from a shot's fields: ``extra`` may
#: not set them, and a provider's profile maps them (any other field is passed through).
REQUEST_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "seconds",
        "aspect_ratio",
        "resolution",
        "first_image_url",
        "last_image_url",
        "images",
    }
)


@dataclass(frozen=True, slots=True)
class ImageRef:
    """One input image of a shot, as resolved by the image resolver.

    ``source`` is what the manifest wrote (a path, a URL, or a data URI);
    ``sha256`` is the hash of the image bytes for local files and data URIs, None for URLs;
    ``path`` is the absolute file path for local files.

    A frame of another shot's clip (kind ``shot``) names the shot (``from_shot``), the take
    (``from_take``; None in the manifest: the picked take, else 1) and the frame (``frame``:
    ``first``, ``last`` or seconds as written). Once that clip is delivered, ``clip_sha256``
    and ``clip_path`` name it and ``path`` is where its frame is stored as a PNG
    (``runner.chain`` fills them in).
    """

    source: str
    kind: ImageKind
    sha256: str | None = None
    path: Path | None = None
    media_type: str | None = None
    size: int | None = None
    from_shot: str | None = None
    from_take: int | None = None
    frame: str | None = None
    clip_sha256: str | None = None
    clip_path: Path | None = None

    def identity(self) -> str:
        """What the fingerprint sees: the content hash where the bytes are known, else the URL;
        for a frame of another shot, its clip's hash and the frame, never the PNG's bytes
        (a decoder's version could change them)."""
        if self.kind == "shot":
            return f"shot:{self.from_shot}:take{self.from_take}:{self.frame}:{self.clip_sha256}"
        return f"sha256:{self.sha256}" if self.sha256 else self.source

    def provenance(self) -> dict[str, Any]:
        """The image as written in a sidecar: its source (never base64 bytes) and hash."""
        if self.kind == "shot":
            return {
                "source": self.source,
                "kind": "shot",
                "shot": self.from_shot,
                "take": self.from_take,
                "frame": self.frame,
                "clip_sha256": self.clip_sha256,
                "file": self.path.name if self.path is not None else None,
                "sha256": _file_sha256(self.path),
            }
        source = self.source
        if self.kind == "data":
            source = source.split(",", 1)[0] + ",…"
        return {"source": source, "kind": self.kind, "sha256": self.sha256}


def _file_sha256(path: Path | None) -> str | None:
    """The sha256 of an extracted frame's file, None when there is none (yet)."""
    import hashlib

    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class Shot:
    """A shot after defaults, vars and image resolution: everything a render needs."""

    id: str
    index: int
    prompt: str
    mode: Mode = "text"
    images: tuple[ImageRef, ...] = ()
    model: str = DEFAULT_MODEL
    seconds: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    takes: int = 1
    extra: dict[str, Any] = field(default_factory=dict, hash=False)
    line: int = 0
    #: The video API that renders it (``gateway``, ``veo``, ``runway``).
    provider: str = DEFAULT_PROVIDER

    @property
    def seconds_to_pay(self) -> int:
        return self.seconds if self.seconds is not None else ASSUMED_SECONDS


@dataclass(frozen=True, slots=True)
class Manifest:
    """A valid manifest: where it is, where its batch goes, and its shots in order."""

    path: Path
    display_path: str
    name: str
    output_dir: Path
    sha256: str
    shots: tuple[Shot, ...]
    warnings: tuple[Diagnostic, ...] = ()
    #: The manifest's ``pricing:`` table as written (schema-checked), None without one.
    pricing: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    #: The shots file its ``shots_from`` names (absolute), None without one.
    shots_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """One (shot, take): the unit that is rendered and delivered."""

    shot: Shot
    take: int
    fingerprint: str

    @property
    def key(self) -> str:
        """Stable name of the job in messages, plans and progress: ``<shot-id>/<take>`` (the
        store keys a job by its ``(shot, take)``)."""
        return f"{self.shot.id}/{self.take}"


@dataclass(slots=True)
class RunResult:
    """How a run ended: what it delivered, what failed and why, and, when it stopped early,
    the error that stopped it (``stopped_by``). The CLI turns it into an exit code."""

    delivered: int = 0
    seconds_delivered: int = 0
    done: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    possible_duplicates: list[str] = field(default_factory=list)
    interrupted: bool = False
    wall_time: float = 0.0
    creates: int = 0
    rate_limited: int = 0
    #: Clips of renders no job points at any more, kept in ``.history/`` this run.
    earlier_collected: int = 0
    #: Earlier renders whose task failed or was lost (nothing more to collect).
    earlier_lost: list[tuple[str, str]] = field(default_factory=list)
    #: Earlier creates without an answer, not sent again: the service may have billed them.
    possibly_billed: list[str] = field(default_factory=list)
    #: Why the run stopped before its end (a signal, a refused key, an unreachable API).
    stopped_by: Exception | None = None
    #: Renders with a create on the wire or a task in flight when the run stopped.
    in_flight_at_stop: int = 0
    #: Money, with a price table: the currency, the price of the creates sent this run, and
    #: of the renders whose clips were delivered this run.
    currency: str | None = None
    committed_cost: Decimal = Decimal(0)
    delivered_cost: Decimal = Decimal(0)
    #: What the plan cost when the run started, and its worst case with every retry.
    planned_cost: Decimal = Decimal(0)
    worst_case_cost: Decimal = Decimal(0)

    def summary(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "delivered": self.delivered,
            "seconds_delivered": self.seconds_delivered,
            "failed": len(self.failed),
            "possible_duplicates": len(self.possible_duplicates),
            "earlier_collected": self.earlier_collected,
            "possibly_billed": len(self.possibly_billed),
            "interrupted": self.interrupted,
            "wall_time": round(self.wall_time, 3),
            "money": None
            if self.currency is None
            else {
                "currency": self.currency,
                "planned": amount_text(self.planned_cost),
                "worst_case": amount_text(self.worst_case_cost),
                "committed": amount_text(self.committed_cost),
                "delivered": amount_text(self.delivered_cost),
            },
        }


def amount_text(amount: Decimal) -> str:
    """An amount of money as written down: two decimals at least, more when a price has them."""
    exponent = amount.normalize().as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{amount:.{min(places, 6)}f}"
