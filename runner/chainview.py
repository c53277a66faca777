"""How ``plan`` shows chained shots: the order (which jobs wait for which) as an indented
list, each chained job's reason, and the same as JSON. The plan's table and summary are
``runner.view``'s; this adds the part about shots that need other shots' clips, and the
jobs that wait in the plan's cost lines, its requests (``--show-requests``) and its saved
file (``plan --save``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner.chain import order
from runner.model import amount_text
from runner.text import visible

if TYPE_CHECKING:
    from decimal import Decimal

    from runner.chain import Waiting
    from runner.model import Manifest
    from runner.plan import Plan

ORDER_HEADING = "Order (a shot after the shots whose frames it uses):"


def _reasons(plan: Plan) -> dict[str, str]:
    """Each chained job's word: why it waits, or the shots whose clip changed under it."""
    reasons: dict[str, str] = {}
    for item in plan.jobs:
        if item.job.shot.id in plan.needs:
            reasons[item.job.key] = item.action
    for waiting in plan.waiting:
        reasons[waiting.key] = waiting.reason
    for key, names in plan.changed.items():
        changed = f"needs {', '.join(names)}, whose clip changed"
        reasons[key] = f"{changed}; {reasons[key]}" if key in reasons else changed
    return reasons


def order_lines(manifest: Manifest, plan: Plan) -> list[str]:
    """The shots of a chained plan in the order they render, each indented under the shots
    it needs, with each chained job's reason; nothing for a plan without chains."""
    if not plan.needs:
        return []
    in_scope = {item.job.shot.id for item in plan.jobs} | {w.shot.id for w in plan.waiting}
    depth: dict[str, int] = {}
    lines = ["", ORDER_HEADING]
    reasons = _reasons(plan)
    for shot in order(manifest.shots):
        needs = plan.needs.get(shot.id, [])
        depth[shot.id] = 1 + max((depth.get(n, 0) for n in needs), default=-1)
        if shot.id not in in_scope:
            continue
        indent = "  " * (depth[shot.id] + 1)
        head = f"{indent}{visible(shot.id)}"
        if needs:
            head += f"  (from {', '.join(visible(n) for n in needs)})"
        lines.append(head)
        for take in range(1, shot.takes + 1):
            reason = reasons.get(f"{shot.id}/{take}")
            if reason is not None:
                lines.append(f"{indent}  take {take}: {visible(reason)}")
    if plan.waiting:
        paying = plan.waiting_to_pay
        seconds = sum(w.shot.seconds_to_pay for w in paying)
        held = len(plan.waiting) - len(paying)
        unpaid = (
            f"; the {held} held by a failed shot are not, without --retry-failed" if held else ""
        )
        lines.append(
            f"{len(plan.waiting)} job(s) wait for other shots' clips: fingerprinted and "
            f"submitted once those are delivered ({seconds} s counted in the seconds to pay"
            f"{unpaid})"
        )
    return lines


def chain_document(plan: Plan) -> dict[str, Any]:
    """``plan --json``'s part about chains: which shot needs which, the jobs that wait."""
    reasons = _reasons(plan)
    return {
        "needs": plan.needs,
        "waiting": [
            {
                "shot": w.shot.id,
                "take": w.take,
                "waits_for": list(w.waits_for),
                "held": w.held,
                "reason": reasons.get(w.key, w.reason),
                "cost": _amount(waiting_cost(plan, w)),
                "request": waiting_request(w),
            }
            for w in plan.waiting
        ],
        "changed": plan.changed,
    }


def waiting_cost(plan: Plan, waiting: Waiting) -> Decimal | None:
    """What a job that waits costs when it is submitted: a new render of its shot (None
    without a price table, or without a price for its model)."""
    return None if plan.money is None else plan.money.table.cost(waiting.shot)


def _amount(cost: Decimal | None) -> str | None:
    return None if cost is None else amount_text(cost)


def waiting_request(waiting: Waiting) -> dict[str, Any]:
    """The body a waiting job will send, as far as it is known: each frame of another shot
    as its entry (its clip's sha256 is null until that clip is delivered)."""
    from runner.jobs import provenance_request

    return provenance_request(waiting.shot)


def waiting_requests_text(plan: Plan) -> str:
    """``plan --show-requests`` for the jobs that wait: each body as far as it is known."""
    import json

    blocks = []
    for w in plan.waiting:
        head = (
            f"{visible(w.key)} ({visible(w.reason)}; its frames are taken once those clips "
            "are delivered):"
        )
        body = json.dumps(waiting_request(w), indent=2, ensure_ascii=False)
        blocks.append(f"{head}\n{body}")
    return "\n\n".join(blocks)
