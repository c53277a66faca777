"""The simulator's knobs: one dataclass whose defaults are a well-behaved service."""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass
from pathlib import Path

from runner.sim.dialects import DIALECTS

#: Knobs that are fractions from 0 to 1.
RATE_FIELDS = (
    "fail_rate",
    "refuse_rate",
    "hang_rate",
    "lose_rate",
    "error_rate",
    "rate_limit_rate",
    "drop_rate",
)

#: Rates that decide a task's fate at creation; one draw picks among them, so they add up.
OUTCOME_RATES = ("fail_rate", "refuse_rate", "hang_rate", "lose_rate")


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes how the simulator behaves.

    Durations are seconds, rates are fractions from 0 to 1. ``port=0`` and
    ``file_port=0`` pick free ports.
    """

    #: Which provider's API to speak: ``gateway`` (docs/api.md), ``veo`` or ``runway``.
    dialect: str = "gateway"
    host: str = "127.0.0.1"
    port: int = 0
    file_port: int = 0
    job_seconds: float = 5.0
    fail_rate: float = 0.0
    refuse_rate: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    max_active: int | None = None
    url_ttl: float = 3600.0
    token: str | None = None
    clip_bytes: int | None = None
    drop_rate: float = 0.0
    quirks: bool = False
    ignore_idempotency: bool = False
    state_path: Path | None = None
    seed: int | None = None
    hang_rate: float = 0.0
    lose_rate: float = 0.0
    #: Answer ``/content`` with a 302 to the signed URL on the file host (another origin).
    redirect_content: bool = False
    #: Serve file bodies at about this many bytes per second (None: as fast as possible).
    file_rate: float | None = None
    #: Each file response sends at most this many bytes of its body, then stays open and
    #: silent until the client hangs up (a stalled download; resuming gains this many more).
    stall_after: int | None = None
    #: The first file response for each task sends at most this many body bytes, then the
    #: connection closes; later responses are whole (a download broken once, mid-file).
    cut_after: int | None = None
    #: The first download of each task's file answers 403, as a signed URL that expired
    #: before it was used; the task's next URL works.
    expire_first_url: bool = False
    #: Answer every retrieve (``GET /v1/videos/{id}``) with this status (401 or 403), as
    #: when a key is revoked while its tasks render; creates are still accepted.
    deny_polls: int | None = None
    #: Hold each create this long before answering it (a slow gateway).
    create_delay: float = 0.0
    #: Keep every request in the recorder. Long-lived servers turn it off to bound memory.
    record: bool = True
    #: Serve both listeners over TLS with this context (tests give one from a test CA):
    #: the base URLs become ``https://``, as some SDKs expect of a video's URI.
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        problems = config_problems(self)
        if problems:
            raise ValueError("; ".join(problems))


def config_problems(config: SimConfig) -> list[str]:
    """Every reason ``config`` is unusable, as ``--option: message`` lines."""
    problems: list[str] = []
    if config.dialect not in DIALECTS:
        known = ", ".join(DIALECTS)
        problems.append(f"--dialect: must be one of {known}, not {config.dialect!r}")
    for name in RATE_FIELDS:
        value = getattr(config, name)
        if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
            problems.append(f"{_flag(name)}: must be a fraction from 0 to 1, not {value!r}")
    outcome_total = sum(getattr(config, name) for name in OUTCOME_RATES if _is_number(config, name))
    if outcome_total > 1.0 + 1e-9:
        joined = ", ".join(_flag(name) for name in OUTCOME_RATES)
        problems.append(f"{joined}: add up to {outcome_total:g}, more than 1")
    if not (_is_number(config, "job_seconds") and 0.0 <= config.job_seconds < math.inf):
        problems.append(f"--job-seconds: must be 0 or more, not {config.job_seconds!r}")
    if not (_is_number(config, "url_ttl") and 0.0 < config.url_ttl < math.inf):
        problems.append(f"--url-ttl: must be more than 0, not {config.url_ttl!r}")
    if config.max_active is not None and config.max_active < 1:
        problems.append(f"--max-active: must be 1 or more, not {config.max_active!r}")
    if config.clip_bytes is not None and config.clip_bytes < 0:
        problems.append(f"--clip-bytes: must be 0 or more, not {config.clip_bytes!r}")
    if config.file_rate is not None and not (
        _is_number(config, "file_rate") and 0.0 < config.file_rate < math.inf
    ):
        problems.append(f"--file-rate: must be more than 0, not {config.file_rate!r}")
    if config.stall_after is not None and config.stall_after < 0:
        problems.append(f"--stall-after: must be 0 or more, not {config.stall_after!r}")
    if config.cut_after is not None and config.cut_after < 0:
        problems.append(f"--cut-after: must be 0 or more, not {config.cut_after!r}")
    if config.deny_polls not in (None, 401, 403):
        problems.append(f"--deny-polls: must be 401 or 403, not {config.deny_polls!r}")
    if not (_is_number(config, "create_delay") and 0.0 <= config.create_delay < math.inf):
        problems.append(f"--create-delay: must be 0 or more, not {config.create_delay!r}")
    for name in ("port", "file_port"):
        value = getattr(config, name)
        if not 0 <= value <= 65535:
            problems.append(f"{_flag(name)}: must be from 0 to 65535, not {value!r}")
    return problems


def _is_number(config: SimConfig, name: str) -> bool:
    value = getattr(config, name)
    return isinstance(value, int | float) and not math.isnan(value)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
