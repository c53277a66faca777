"""Prices: the user's price table, and what a plan costs with it.

The table gives a price per second of video for each model and resolution (``default`` for a
resolution not listed or not set), in one currency. It is read from, in this order:
``--prices FILE``, ``shotrunner.toml`` beside the manifest (its ``[pricing]`` table), the
manifest's ``pricing:`` key. Each is checked against ``$defs/pricing`` of the manifest's
schema. The project ships no prices: they change, and differ per account.

Every money figure (a plan's, and a run's money committed and delivered) is priced with the
table. A price a provider reports in its own unit (Runway's credits) is kept on the render
in the store as it was reported, never converted. Knows nothing of HTTP or SQLite.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.diagnostics import Diagnostic
from runner.errors import InputError, ManifestInvalid
from runner.model import amount_text

if TYPE_CHECKING:
    from runner.model import Manifest, Shot
    from runner.plan import Plan

#: The user's settings file, looked for beside the manifest.
SETTINGS_FILE = "shotrunner.toml"
#: What ``plan`` says when there is no price table.
NO_PRICES_HINT = (
    f"no prices: add a [pricing] table to {SETTINGS_FILE} beside the manifest, give "
    "--prices FILE, or a pricing: key in the manifest (docs/pricing.md)"
)


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices per second of video by (model, resolution), in ``currency``."""

    currency: str
    prices: Mapping[tuple[str, str], Decimal]
    #: Where the table was read from (a file, or the manifest), for messages.
    source: str

    def per_second(self, model: str, resolution: str | None) -> Decimal | None:
        exact = self.prices.get((model, resolution or "default"))
        return exact if exact is not None else self.prices.get((model, "default"))

    def cost(self, shot: Shot) -> Decimal | None:
        """What one render of ``shot`` costs, None when the table has no price for it."""
        price = self.per_second(shot.model, shot.resolution)
        return None if price is None else price * shot.seconds_to_pay


def money(amount: Decimal, currency: str) -> str:
    """An amount with its currency, as shown."""
    return f"{amount_text(amount)} {currency}"


def parse_amount(text: str) -> Decimal:
    """A ``--max-cost`` amount: a finite number of at least 0; raises ``InputError``."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise InputError(f"--max-cost: {text!r} is not an amount of money") from None
    if not amount.is_finite() or amount < 0:
        raise InputError(f"--max-cost: {text!r} is not an amount of money of at least 0")
    return amount


# -- reading the table -------------------------------------------------------------------------


def load_prices(manifest: Manifest, prices_file: Path | None = None) -> PriceTable | None:
    """The price table for ``manifest``, None when there is none.

    Raises ``ManifestInvalid`` (exit 2, FILE:LINE:COL) for a table the schema refuses, and
    ``InputError`` for a ``--prices`` file that cannot be read.
    """
    if prices_file is not None:
        table = _read_toml(prices_file, required=True)
        if table is None:
            raise InputError(f"--prices {prices_file}: it has no [pricing] table")
        return table
    beside = manifest.path.parent / SETTINGS_FILE
    if beside.is_file():
        table = _read_toml(beside, required=False)
        if table is not None:
            return table
    if manifest.pricing is not None:
        return _table(manifest.pricing, manifest.display_path)
    return None


def _read_toml(path: Path, *, required: bool) -> PriceTable | None:
    display = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{display}: cannot read the price table: {error}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line, column = _toml_position(str(error))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        raise ManifestInvalid([Diagnostic(display, line, column, "", message)]) from None
    pricing = document.get("pricing")
    if pricing is None:
        return None
    problems = _check(pricing)
    if problems:
        raise ManifestInvalid(
            [
                Diagnostic(display, _toml_line(text, where), 1, _dotted(where), message)
                for where, message in problems
            ]
        )
    return _table(pricing, display)


def _table(pricing: Mapping[str, Any], source: str) -> PriceTable:
    prices = {
        (model, resolution): Decimal(str(price))
        for model, by_resolution in pricing["models"].items()
        for resolution, price in by_resolution.items()
    }
    return PriceTable(currency=pricing["currency"], prices=prices, source=source)


def _check(pricing: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """The schema's complaints about a ``[pricing]`` table, each with where it is."""
    import jsonschema  # type: ignore[import-untyped]

    from runner.schema import load_schema

    schema = {"$defs": load_schema()["$defs"], "$ref": "#/$defs/pricing"}
    validator = jsonschema.Draft202012Validator(schema)
    return [
        (("pricing", *error.absolute_path), error.message)
        for error in sorted(validator.iter_errors(pricing), key=lambda e: list(e.absolute_path))
    ]


def _dotted(where: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in where)


def _toml_position(message: str) -> tuple[int, int]:
    found = re.search(r"at line (\d+), column (\d+)", message)
    return (int(found.group(1)), int(found.group(2))) if found else (1, 1)


def _toml_line(text: str, where: Sequence[str | int]) -> int:
    """The line of the deepest key of ``where`` in the TOML text (1 when not found)."""
    for key in reversed([part for part in where if isinstance(part, str)]):
        pattern = re.compile(rf"""^\s*(\[.*)?["']?{re.escape(key)}["']?\s*(=|\]|\.)""")
        for number, line in enumerate(text.splitlines(), start=1):
            if pattern.search(line):
                return number
    return 1


# -- what a plan costs -------------------------------------------------------------------------


@dataclass(slots=True)
class PlanMoney:
    """A plan in money: each paying render's cost, the total, and the worst case of retries."""

    currency: str
    #: The table the plan was priced with (a run prices its resubmissions with it too).
    table: PriceTable
    #: Cost of each render to submit or retry, by render key (None: the table has no price).
    costs: dict[tuple[str, int], Decimal | None] = field(default_factory=dict)
    total: Decimal = Decimal(0)
    #: What ``--max-attempts`` may add at most: every paying render failing until its last
    #: attempt, and every resumed task lost or failed until then.
    worst_case_extra: Decimal = Decimal(0)
    #: "model resolution" pairs the table has no price for.
    unpriced: list[str] = field(default_factory=list)
    #: Cost of each job that waits for other shots' clips, by job key (``shot/take``):
    #: submitted once those clips are delivered, it pays like a new render.
    waiting_costs: dict[str, Decimal | None] = field(default_factory=dict)

    @property
    def worst_case(self) -> Decimal:
        return self.total + self.worst_case_extra


def plan_money(plan: Plan, table: PriceTable, max_attempts: int) -> PlanMoney:
    """What ``plan`` costs with ``table`` when each render may take ``max_attempts``."""
    result = PlanMoney(currency=table.currency, table=table)
    for group in plan.renders:
        shot = group.jobs[0].job.shot
        if group.action not in ("submit", "retry", "resume"):
            continue
        cost = table.cost(shot)
        if cost is None:
            name = f"{shot.model} {shot.resolution or 'default'}"
            if name not in result.unpriced:
                result.unpriced.append(name)
            if group.action != "resume":
                result.costs[group.key] = None
            continue
        attempt = group.render.attempt if group.render is not None else 0
        if group.action == "resume":
            # Already paid; a lost or failed task may be submitted again while attempts last.
            result.worst_case_extra += cost * max(0, max_attempts - max(attempt, 1))
            continue
        result.costs[group.key] = cost
        result.total += cost
        result.worst_case_extra += cost * (max_attempts - 1)
    for waiting in plan.waiting_to_pay:
        # A chained job submitted once the clips it needs are delivered pays like a new one.
        cost = table.cost(waiting.shot)
        result.waiting_costs[waiting.key] = cost
        if cost is None:
            name = f"{waiting.shot.model} {waiting.shot.resolution or 'default'}"
            if name not in result.unpriced:
                result.unpriced.append(name)
            continue
        result.total += cost
        result.worst_case_extra += cost * (max_attempts - 1)
    return result


def price_plan(
    plan: Plan, manifest: Manifest, prices_file: Path | None, max_attempts: int
) -> PlanMoney | None:
    """Attach the plan's money (``plan.money``) from the manifest's price table, if any."""
    table = load_prices(manifest, prices_file)
    if table is None:
        plan.money = None
        return None
    return price_with(plan, table, max_attempts)


def price_with(plan: Plan, table: PriceTable, max_attempts: int) -> PlanMoney:
    """Attach the plan's money (``plan.money``, and its summary's words) from ``table``."""
    plan.money = plan_money(plan, table, max_attempts)
    currency = plan.money.currency
    plan.summary.cost = (
        f"{money(plan.money.total, currency)}, worst case {money(plan.money.worst_case, currency)}"
    )
    return plan.money


def check_max_cost(plan: Plan, max_cost: Decimal | None) -> None:
    """Refuse to start (exit 2, nothing sent) a plan that costs more than ``--max-cost``, or
    that cannot be priced."""
    if max_cost is None:
        return
    if plan.money is None:
        if plan.summary.tasks_to_submit == 0 and not plan.waiting_to_pay:
            return  # nothing to pay for this run
        raise InputError(f"--max-cost needs prices: {NO_PRICES_HINT}; nothing was sent")
    if plan.money.unpriced:
        raise InputError(
            f"--max-cost: no price for {', '.join(plan.money.unpriced)} in "
            "the price table; add it; nothing was sent"
        )
    if plan.money.total > max_cost:
        currency = plan.money.currency
        raise InputError(
            f"the plan costs {money(plan.money.total, currency)}, more than --max-cost "
            f"{money(max_cost, currency)}; nothing was sent"
        )
