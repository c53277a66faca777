"""A plan file: ``plan --save FILE`` writes a plan, ``run --plan FILE`` executes only it.

The file holds the manifest's sha256, the options the plan was made with, every job with
its action, fingerprint (which covers the prompt, the images' sha256 and every setting),
generation, state in the store, and cost, and every job waiting for other shots' clips
(not fingerprinted yet) with its own images' sha256 and cost. ``run --plan`` plans again
under the batch lock and refuses (exit 2, the first difference) when anything differs: the
manifest, an image, or the store. Knows nothing of HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import InputError
from runner.files import write_atomic
from runner.model import amount_text

if TYPE_CHECKING:
    from runner.model import Manifest
    from runner.plan import Plan, PlanOptions

#: Bumped when the file's shape changes.
PLAN_FILE_VERSION = 1


def plan_record(manifest: Manifest, plan: Plan, max_attempts: int) -> dict[str, Any]:
    """The plan as the file keeps it."""

    options = plan.options
    return {
        "version": PLAN_FILE_VERSION,
        "manifest": manifest.display_path,
        "manifest_sha256": manifest.sha256,
        "output_dir": str(manifest.output_dir),
        "options": {
            "only": sorted(options.only),
            "force": sorted(options.force),
            "retry_failed": options.retry_failed,
            "rerender_rejected": options.rerender_rejected,
            "verify": options.verify,
            "max_attempts": max_attempts,
        },
        "jobs": [
            {
                "shot": p.job.shot.id,
                "take": p.job.take,
                "action": p.action,
                "fingerprint": p.job.fingerprint,
                "generation": p.generation,
                "state": p.state,
                "attempts": p.attempts,
                "reason": p.reason,
                "cost": _cost(plan, p.render_key, p.action),
            }
            for p in plan.jobs
        ],
        # Jobs that wait for other shots' clips have no fingerprint yet: their own images
        # (by sha256) stand for what can change before the run.
        "waiting": [
            {
                "shot": w.shot.id,
                "take": w.take,
                "waits_for": list(w.waits_for),
                "held": w.held,
                "images": [image.identity() for image in w.shot.images if image.kind != "shot"],
                "cost": _waiting_cost(plan, w.key),
            }
            for w in plan.waiting
        ],
        "money": None
        if plan.money is None
        else {"currency": plan.money.currency, "total": amount_text(plan.money.total)},
    }


def _waiting_cost(plan: Plan, key: str) -> str | None:
    cost = None if plan.money is None else plan.money.waiting_costs.get(key)
    return None if cost is None else amount_text(cost)


def _cost(plan: Plan, key: tuple[str, int], action: str) -> str | None:
    if plan.money is None or action not in ("submit", "retry"):
        return None
    cost = plan.money.costs.get(key)
    return None if cost is None else amount_text(cost)


def write_plan_file(path: Path, manifest: Manifest, plan: Plan, max_attempts: int) -> None:
    text = json.dumps(plan_record(manifest, plan, max_attempts), indent=2, ensure_ascii=False)
    write_atomic(path, (text + "\n").encode("utf-8"))


def read_plan_file(path: Path) -> dict[str, Any]:
    """The plan file's document; raises ``InputError`` for one that is not a plan file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"--plan {path}: cannot read the plan file: {error}") from None
    if not isinstance(document, dict) or document.get("version") != PLAN_FILE_VERSION:
        raise InputError(f"--plan {path}: not a plan file of this shotrunner (plan --save)")
    problem = _shape_problem(document)
    if problem is not None:
        raise InputError(f"--plan {path}: not a plan file of this shotrunner ({problem})")
    return document


def _shape_problem(document: dict[str, Any]) -> str | None:
    """What in ``document`` no ``plan --save`` writes, None when nothing: the run acts on
    its options (the attempts a render may take), so an edited value is refused, not read."""
    options = document.get("options")
    if not isinstance(options, dict):
        return "options must be a mapping"
    for name in ("only", "force"):
        ids = options.get(name, [])
        if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
            return f"options.{name} must be a list of shot ids"
    for name in ("retry_failed", "rerender_rejected", "verify"):
        if not isinstance(options.get(name, False), bool):
            return f"options.{name} must be true or false"
    attempts = options.get("max_attempts")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        return "options.max_attempts must be a whole number from 1"
    for name in ("jobs", "waiting"):
        if not isinstance(document.get(name, []), list):
            return f"{name} must be a list"
    return None


def saved_options(document: dict[str, Any]) -> tuple[PlanOptions, int]:
    """The plan options and ``--max-attempts`` the saved plan was made with (a document
    ``read_plan_file`` checked)."""
    from runner.plan import PlanOptions

    options = document["options"]
    return (
        PlanOptions(
            only=frozenset(options.get("only", ())),
            force=frozenset(options.get("force", ())),
            retry_failed=options.get("retry_failed", False),
            rerender_rejected=options.get("rerender_rejected", False),
            verify=options.get("verify", False),
        ),
        options["max_attempts"],
    )


def first_difference(saved: dict[str, Any], manifest: Manifest, plan: Plan) -> str | None:
    """What differs first between the saved plan and the plan now, None when they agree."""
    now = plan_record(manifest, plan, saved_options(saved)[1])
    if saved.get("output_dir") != now["output_dir"]:
        return f"the batch folder: {saved.get('output_dir')} → {now['output_dir']}"
    old_jobs = saved.get("jobs") or []
    for old, new in zip(old_jobs, now["jobs"], strict=False):
        if not isinstance(old, dict):
            return "the plan file's jobs are unreadable"
        label = f"{new['shot']}/{new['take']}"
        if (old.get("shot"), old.get("take")) != (new["shot"], new["take"]):
            return f"job {old.get('shot')}/{old.get('take')} → {label}"
        if old.get("fingerprint") != new["fingerprint"]:
            why = new["reason"] or "its request changed"
            return f"{label}: the manifest or its images changed ({why})"
        for key in ("action", "generation", "state", "attempts"):
            if old.get(key) != new[key]:
                return f"{label}: {key} {old.get(key)} → {new[key]} (the store changed)"
        if old.get("cost") != new["cost"]:
            return f"{label}: cost {old.get('cost')} → {new['cost']} (the prices changed)"
    if len(old_jobs) != len(now["jobs"]):
        return f"{len(old_jobs)} job(s) planned, {len(now['jobs'])} now"
    difference = _waiting_difference(saved.get("waiting") or [], now["waiting"])
    if difference is not None:
        return difference
    if saved.get("manifest_sha256") != manifest.sha256:
        return "the manifest file changed (its sha256 differs)"
    return None


def _waiting_difference(old_waiting: list[Any], new_waiting: list[dict[str, Any]]) -> str | None:
    """The first difference among the jobs that wait for other shots' clips."""
    for old, new in zip(old_waiting, new_waiting, strict=False):
        if not isinstance(old, dict):
            return "the plan file's waiting jobs are unreadable"
        label = f"{new['shot']}/{new['take']}"
        if (old.get("shot"), old.get("take")) != (new["shot"], new["take"]):
            return f"waiting job {old.get('shot')}/{old.get('take')} → {label}"
        if old.get("images") != new["images"]:
            return f"{label}: its images changed"
        for key in ("waits_for", "held"):
            if old.get(key) != new[key]:
                return f"{label}: {key} {old.get(key)} → {new[key]} (the store changed)"
        if old.get("cost") != new["cost"]:
            return f"{label}: cost {old.get('cost')} → {new['cost']} (the prices changed)"
    if len(old_waiting) != len(new_waiting):
        return (
            f"{len(old_waiting)} job(s) waiting for other shots' clips planned, "
            f"{len(new_waiting)} now"
        )
    return None


def check_plan(saved: dict[str, Any], manifest: Manifest, plan: Plan, path: Path) -> None:
    """Refuse (exit 2, nothing sent) a run whose plan is not the saved one."""
    difference = first_difference(saved, manifest, plan)
    if difference is not None:
        raise InputError(
            f"--plan {path}: the plan changed since it was saved: {difference}; nothing was "
            "sent (make and review a new plan)"
        )
