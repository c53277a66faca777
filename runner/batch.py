"""One ``run`` from start to end: plan, (simulator,) client, engine, report, run record.

The CLI calls ``run_batch`` with a loaded manifest and settings; this module opens the
state store under the batch lock, makes the plan (the same ``Plan`` that ``plan`` prints),
refuses a run that would mix bases or kinds of render, starts the in-process simulator for
``--simulate``, executes the plan, writes the contact sheet when the review module is
present, and records the run. It returns the run's result: the CLI picks the exit code (and
gives it back to be recorded) and owns the signals. The API key lives only in memory here
and in the client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import os
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from runner.api.proxies import check_proxy
from runner.engine import Run, RunContext, RunOptions, StopSwitch, check_max_new
from runner.errors import ConfigError, InputError, Interrupted, NotWritten, ShotrunnerError
from runner.model import RunResult
from runner.plan import Plan, PlanOptions, make_plan
from runner.store import SIMULATOR_BASE
from runner.view import View
from runner.waves import check_max_new_waiting, hold_waiting, run_waves

if TYPE_CHECKING:
    from runner.chain import Waiting
    from runner.model import Manifest
    from runner.sim import RunningSim
    from runner.store import RenderKey, Store

DEFAULT_API_BASE = "https://octopusx.ai/v1"
#: With --simulate: how long each simulated task renders, and the default poll interval.
SIMULATE_JOB_SECONDS = 3.0
SIMULATE_POLL_INTERVAL = 0.5
SIMULATOR_DB = "simulator.db"


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """Everything ``run`` was asked to do, besides the manifest."""

    api_base: str = DEFAULT_API_BASE
    api_key: str = field(default="", repr=False)
    simulate: bool = False
    run: RunOptions = field(default_factory=RunOptions)
    plan: PlanOptions = field(default_factory=PlanOptions)
    argv: tuple[str, ...] = ()
    #: ``--prices FILE`` (else ``shotrunner.toml`` beside the manifest, else its ``pricing:``).
    prices: Path | None = None
    #: ``run --plan FILE``: the saved plan this run must equal (``runner.planfile``).
    saved_plan: dict[str, Any] | None = None
    saved_plan_path: Path | None = None
    #: The largest clip downloaded (``run --max-clip-size``); None: the client's default.
    max_clip_bytes: int | None = None
    #: Each provider's key but the gateway's (``api_key``), from ``provider_keys``.
    provider_keys: dict[str, str] = field(default_factory=dict, repr=False)
    #: ``--api-base`` as given: it overrides the base of a provider other than the gateway
    #: too (``api_base`` is the gateway's, from the flag, the environment or the default).
    base_override: str | None = None


def providers_of(manifest: Manifest) -> list[str]:
    """The providers the manifest's shots go to, in the order they first appear."""
    return list(dict.fromkeys(shot.provider for shot in manifest.shots))


def provider_keys(manifest: Manifest, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The key of every provider the manifest uses, from its usual variable; only those are
    required. ``ConfigError`` naming the variables that are not set."""
    from runner.providers import profile

    env = os.environ if environ is None else environ
    keys: dict[str, str] = {}
    missing: list[str] = []
    for name in providers_of(manifest):
        variable = profile(name).key_env
        key = env.get(variable, "").strip()
        if key:
            keys[name] = key
        else:
            missing.append(f"{variable} (for {name})")
    if missing == ["SHOTRUNNER_API_KEY (for gateway)"]:
        variable = "SHOTRUNNER_API_KEY"
        raise ConfigError(
            f"{variable} is not set: export your API key in {variable} (or try --simulate)"
        )
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} not set: export the API key of each provider the "
            "manifest uses (or try --simulate)"
        )
    return keys


def provider_bases(manifest: Manifest, settings: BatchSettings) -> dict[str, str]:
    """The API base of each provider the manifest uses: ``--api-base`` overrides one
    provider's; with several providers it is the gateway's only."""
    from runner.providers import profile

    used = providers_of(manifest)
    if settings.base_override is not None and len(used) > 1 and "gateway" not in used:
        # Not silently ignored: no provider of this manifest would take it.
        raise ConfigError(
            f"--api-base is the base of one provider, and this manifest uses {', '.join(used)} "
            "and no gateway shot: leave it out (each provider's own base is used), or run "
            "one provider's shots from a manifest of their own"
        )
    bases: dict[str, str] = {}
    for name in used:
        if name == "gateway":
            bases[name] = settings.api_base
            continue
        override = settings.base_override if len(used) == 1 else None
        base = override or profile(name).default_base
        if base is None:
            raise ConfigError(f"provider {name} has no API base: give one with --api-base")
        bases[name] = base
    return bases


def public_base(url: str) -> str:
    """The API base as it may be recorded and compared: no user:password, query or fragment,
    no trailing slash; scheme and host in lower case."""
    parts = urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2].lower()
    return urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), "", ""))


def _without_credentials(arg: str) -> str:
    """A command-line argument as it may be recorded: a URL's user:password part removed."""
    option, sep, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    if "://" in value and "@" in value:
        value = public_base(value)
    return f"{option}{sep}{value}"


def run_batch(
    manifest: Manifest,
    settings: BatchSettings,
    view: View,
    exit_code: Callable[[RunResult], int],
    stop: StopSwitch | None = None,
) -> RunResult:
    """Run the batch; returns its result, ``stopped_by`` saying why it ended early (a stop
    asked for through ``stop``, a refused key, an unreachable API). ``exit_code`` is the
    CLI's word for the result, recorded with the run.

    Raises ``InputError`` (``--max-new`` exceeded, another run holds the batch, mixed bases
    or kinds of render) before anything is sent. A KeyboardInterrupt outside the run's loop
    ends it as interrupted, everything saved.
    """
    from runner.files import check_shot_folders
    from runner.sources import attach_chain, bind_batch
    from runner.store import Store

    store = Store.open(manifest.output_dir)
    try:
        lock = _lock_batch(manifest.output_dir)
    except BaseException:
        store.close()
        raise
    outcome = _Outcome()
    run_id: str | None = None
    try:
        check_shot_folders(manifest.output_dir, [shot.id for shot in manifest.shots])
        # A simulated run's base is known once its simulator starts (only if needed).
        bases = {name: public_base(url) for name, url in provider_bases(manifest, settings).items()}
        base = bases.get("gateway") or next(iter(bases.values()))
        if settings.simulate:
            base = SIMULATOR_BASE
        _check_kind(store, settings.simulate)
        if not settings.simulate:
            for url in bases.values():
                check_proxy(url)
        options = dataclasses.replace(settings.plan, simulated=settings.simulate)
        bound, options = bind_batch(manifest, store, options)
        plan = attach_chain(make_plan(bound.jobs, store, options), bound, manifest.output_dir)
        _check_providers(plan, manifest)
        allowed = {SIMULATOR_BASE} if settings.simulate else set(bases.values())
        _check_bases(store, allowed, {e.render.key for e in plan.earlier if e.possibly_billed})
        check_max_new(plan, settings.run.max_new)
        _check_money(plan, manifest, settings)
        check_max_new_waiting(plan, settings.run.max_new)
        context = RunContext(manifest=manifest, api_base=base, simulated=settings.simulate)
        run_id = store.start_run(
            manifest=manifest.display_path,
            manifest_sha256=manifest.sha256,
            api_base=context.api_base,
            simulated=settings.simulate,
            argv=[_without_credentials(arg) for arg in settings.argv],
        )
        _record_requests(store, plan)
        try:
            asyncio.run(_drive(outcome, store, plan, settings, context, view, run_id, stop))
        except KeyboardInterrupt:
            outcome.result.interrupted = True
            outcome.result.stopped_by = Interrupted(
                "interrupted: run the same command again to resume"
            )
        if outcome.started:
            view.finish(outcome.result)
            if not isinstance(outcome.result.stopped_by, NotWritten):
                # A disk that could not take a clip cannot take the page either.
                _write_report(manifest, store)
    finally:
        if run_id is not None:
            _finish_run(store, run_id, outcome.result, exit_code, failing=sys.exc_info()[1])
        store.close()
        os.close(lock)
        for sim in outcome.sims:
            sim.stop()
    return outcome.result


def _check_money(plan: Plan, manifest: Manifest, settings: BatchSettings) -> None:
    """Price the plan; refuse (exit 2, nothing sent) a saved plan that is not this one, and
    a plan that costs more than ``--max-cost``."""
    from runner.pricing import check_max_cost, price_plan

    price_plan(plan, manifest, settings.prices, settings.run.max_attempts)
    if settings.saved_plan is not None:
        from runner.planfile import check_plan

        check_plan(settings.saved_plan, manifest, plan, settings.saved_plan_path or Path())
    check_max_cost(plan, settings.run.max_cost)


def _record_requests(store: Store, plan: Plan) -> None:
    """Keep the request of each render about to be submitted, so that a later plan can say
    what an edit changed."""
    from runner.jobs import provenance_request

    store.record_requests(
        {
            group.key[0]: provenance_request(group.jobs[0].job.shot)
            for group in plan.renders
            if group.action in ("submit", "retry")
        }
    )


def _finish_run(
    store: Store,
    run_id: str,
    result: RunResult,
    exit_code: Callable[[RunResult], int],
    failing: BaseException | None,
) -> None:
    """Record the run's end. When that cannot be written (the disk that stopped the run is
    still full), the run's own error is what the user reads: it stands, and the record is
    left open (the run's events are in the store already). Only a run that ended well
    reports the failure to record it."""
    try:
        store.finish_run(run_id, exit_code=exit_code(result), summary=result.summary())
    except NotWritten as error:
        if failing is None and result.stopped_by is None:
            result.stopped_by = error


@dataclass(slots=True)
class _Outcome:
    result: RunResult = field(default_factory=RunResult)
    started: bool = False
    #: Jobs still waiting for other shots' clips when the run ended.
    waiting: list[Waiting] = field(default_factory=list)
    #: Every simulator started (one per provider).
    sims: list[RunningSim] = field(default_factory=list)


def _check_kind(store: Store, simulate: bool) -> None:
    """A batch folder is simulated or real, never both: fake clips must not pass for paid ones
    (nor a real run be reported done on the simulator's clips)."""
    simulated, real = store.render_kinds()
    if not (simulated or real):
        simulated, real = _folder_kinds(store.path.parent)
    if simulate and real:
        raise InputError(
            "this batch folder holds real renders; use --out DIR for the simulated run"
        )
    if not simulate and simulated:
        raise InputError(
            "this batch folder holds simulated renders; use --out DIR for the real run"
        )


def _folder_kinds(output_dir: Path) -> tuple[bool, bool]:
    """Whether a batch folder whose store knows no render (``state.db`` lost or new) holds a
    simulator's database or sidecars of simulated clips, and sidecars of real ones."""
    from runner.delivery import read_sidecar

    simulated = (output_dir / SIMULATOR_DB).exists()
    real = False
    for sidecar in output_dir.glob("*/take-*.json"):
        data = read_sidecar(sidecar.with_suffix(".mp4"))
        if data is None or "simulated" not in data:
            continue
        if data["simulated"] is True:
            simulated = True
        else:
            real = True
    return simulated, real


def _check_providers(plan: Plan, manifest: Manifest) -> None:
    """Refuse (exit 2, nothing sent) a run while a render in flight belongs to a provider the
    manifest no longer uses: a run opens a client (and takes a key) for the manifest's
    providers only, and another provider's client would carry its key to this one's origin,
    or ask it for a task it never made."""
    from collections import Counter

    used = set(providers_of(manifest))
    owed = Counter(
        earlier.render.provider or "gateway"
        for earlier in plan.earlier
        if not earlier.possibly_billed and (earlier.render.provider or "gateway") not in used
    )
    if owed:
        raise ConfigError(
            "; ".join(
                f"{count} task(s) in flight were submitted to {name}, which this manifest no "
                f"longer uses; put back a shot with provider: {name} to collect them"
                for name, count in sorted(owed.items())
            )
        )


def _check_bases(
    store: Store, allowed: Collection[str], unanswered: Collection[RenderKey] = ()
) -> None:
    """Refuse (exit 2, nothing sent) a run against another API base than tasks still owed.

    Asked at another base, a task answers 404 and would be taken for lost: paid again, and
    its clip abandoned. ``unanswered`` creates of removed shots owe nothing to collect; should
    their shot come back, they count again, and their key goes to their own base only.
    """
    problems = []
    for other, count in sorted(store.bases_in_flight(exclude=unanswered).items()):
        if other in allowed:
            continue
        if other == SIMULATOR_BASE:
            where, how = "the built-in simulator (--simulate)", "--simulate"
        else:
            where, how = other, f"--api-base {other}"
        problems.append(
            f"{count} task(s) in flight were submitted to {where}; run with {how} to collect them"
        )
    if problems:
        raise ConfigError("; ".join(problems))


def _lock_batch(output_dir: Path) -> int:
    """Hold an exclusive lock on the batch folder: two runs of one batch could pay twice.

    The lock is on the folder itself (not on state.db, whose POSIX locks belong to SQLite),
    and the kernel drops it when the process ends, however it ends.
    """
    import fcntl

    fd = os.open(output_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InputError(
            f"another run is using {output_dir} right now; wait for it to end (or stop it)"
        ) from None
    return fd


async def _drive(
    outcome: _Outcome,
    store: Store,
    plan: Plan,
    settings: BatchSettings,
    context: RunContext,
    view: View,
    run_id: str,
    stop: StopSwitch | None,
) -> None:
    run = Run(
        store=store,
        client=None,
        plan=plan,
        options=settings.run,
        context=context,
        view=view,
        run_id=run_id,
        stop_switch=stop,
    )
    outcome.started = True
    outcome.result = run.result
    outcome.waiting = list(plan.waiting)
    try:
        if plan.needs_network:
            from contextlib import AsyncExitStack

            from runner.api.client import ApiClient
            from runner.providers import profile

            manifest = context.manifest
            bases = provider_bases(manifest, settings)
            keys = {**settings.provider_keys, "gateway": settings.api_key}
            if settings.simulate:
                # One simulator per provider used, each speaking its API.
                for name in bases:
                    sim = await asyncio.to_thread(_start_simulator, manifest, name)
                    outcome.sims.append(sim)
                    bases[name], keys[name] = sim.base_url, "simulated"
                first = bases.get("gateway") or next(iter(bases.values()))
                run.context = dataclasses.replace(context, api_base=public_base(first))
            caps: dict[str, Any] = {}
            if settings.max_clip_bytes is not None:
                caps["max_clip_bytes"] = settings.max_clip_bytes
            async with AsyncExitStack() as stack:
                for name, url in bases.items():
                    client = ApiClient(url, keys.get(name, ""), profile=profile(name), **caps)
                    run.clients[name] = await stack.enter_async_context(client)
                    run.provider_bases[name] = public_base(url)
                run.client = run.clients.get("gateway") or next(iter(run.clients.values()))
                outcome.result = await run.execute()
                # Jobs that waited for clips this run delivered: the next wave.
                await run_waves(outcome, run, plan, lambda later: _next_run(run, later))
        else:
            # Nothing to submit, poll or fetch: no HTTP stack to import or open.
            outcome.result = await run.execute()
    except ShotrunnerError as error:
        outcome.result.stopped_by = error
    hold_waiting(outcome.result, outcome.waiting)


def _next_run(run: Run, plan: Plan) -> Run:
    """A run over the next wave's plan, sharing the first one's clients, view and record."""
    later = Run(
        store=run.store,
        client=run.client,
        plan=plan,
        options=run.options,
        context=run.context,
        view=run.view,
        run_id=run.run_id,
        stop_switch=run.stop_switch,
    )
    later.clients = run.clients
    later.provider_bases = run.provider_bases
    # The wave's money and the money committed so far are waves.run_waves's to set.
    return later


def _start_simulator(manifest: Manifest, dialect: str = "gateway") -> RunningSim:
    """The in-process simulator of ``--simulate`` in one provider's dialect, its tasks kept
    in the batch folder (``simulator.db`` for the gateway, ``simulator-<provider>.db``)."""
    from runner.sim import SimConfig, start_in_thread

    state = SIMULATOR_DB if dialect == "gateway" else f"simulator-{dialect}.db"
    return start_in_thread(
        SimConfig(
            dialect=dialect,
            job_seconds=SIMULATE_JOB_SECONDS,
            state_path=manifest.output_dir / state,
            # The recorder would hold every request body (base64 images included) for the
            # whole run.
            record=False,
        )
    )


def _write_report(manifest: Manifest, store: Store) -> None:
    """The contact sheet, when the review module is installed; never fails the run."""
    if importlib.util.find_spec("runner.report") is None:
        return
    try:
        from runner.report import REPORT_NAME, write_report

        if _page_is_current(manifest, store, manifest.output_dir / REPORT_NAME):
            return
        write_report(manifest, store)
    except Exception as error:  # the run's outcome must not depend on the page
        print(f"warning: could not write the report: {error}", file=sys.stderr)


def _page_is_current(manifest: Manifest, store: Store, page: Path) -> bool:
    """Whether the contact sheet was written after the manifest (and its shots file) and
    the store last changed.

    Over a batch where nothing changed (a run over thousands of done jobs), rewriting it
    would cost more than the rest of the run; every change of state, verdicts included,
    is an event with its time, so the newest event dates the store.
    """
    sources = [path for path in (manifest.path, manifest.shots_file) if path is not None]
    try:
        written = page.stat().st_mtime
        edited = max(source.stat().st_mtime for source in sources)
    except OSError:
        return False
    changed = store.last_change_at()
    return written >= edited and changed is not None and written >= changed
