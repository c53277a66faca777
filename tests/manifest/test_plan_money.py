"""The plan's seam for reasons, prices and plan files: ``make_plan`` with a store, read-only."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from runner.errors import InputError, ManifestInvalid
from runner.jobs import expand_jobs, provenance_request
from runner.manifest import load_manifest
from runner.plan import PlanOptions, make_plan, plan_batch
from runner.planfile import first_difference, plan_record
from runner.pricing import load_prices, parse_amount, plan_money, price_plan
from runner.reasons import changes, word_diff
from runner.store import Store
from tests.manifest.conftest import WriteManifest

PRICED = """
version: 1
output_dir: batch
defaults: {seconds: 5}
pricing:
  currency: EUR
  unit: per_second
  models:
    omni-fast: {720p: 0.04, default: 0.1}
shots:
  - {id: a, prompt: waves at golden hour, resolution: 720p}
  - {id: b, prompt: dunes, takes: 2}
  - {id: c, prompt: gulls, model: other}
"""


def test_word_diff_names_the_first_changed_stretch() -> None:
    assert word_diff("waves at golden hour", "waves at blue hour") == "- golden / + blue"
    assert word_diff("waves", "waves at dusk") == "+ at dusk"
    assert word_diff("a b c d e f g h", "z") == "- a b c d e f … / + z"


def test_changes_lists_every_field_old_to_new() -> None:
    before = {"model": "m", "prompt": "p", "seconds": "4", "aspect_ratio": "16:9"}
    now = {"model": "n", "prompt": "p", "seconds": "6", "resolution": "720p"}
    assert changes(before, now) == (
        "seconds changed: 4 → 6; ratio changed: 16:9 → unset; "
        "resolution changed: unset → 720p; model changed: m → n"
    )
    assert changes(before, before) == ""


def test_a_plan_prices_each_render_once_and_names_what_it_cannot_price(
    write_manifest: WriteManifest,
) -> None:
    manifest = load_manifest(write_manifest(PRICED))
    plan = plan_batch(manifest)
    money = price_plan(plan, manifest, None, max_attempts=3)
    assert money is not None
    costs = [money.costs.get(group.key) for group in plan.renders]
    # a: 5 s at 0.04; b's two takes are two renders at the default 0.10; c has no price.
    assert costs == [Decimal("0.20"), Decimal("0.5"), Decimal("0.5"), None]
    assert money.total == Decimal("1.20")
    assert money.worst_case_extra == Decimal("2.40")
    assert money.unpriced == ["other default"]
    assert money.currency == "EUR"


def test_a_settings_file_beside_the_manifest_wins_over_its_pricing_key(
    write_manifest: WriteManifest, workdir: Path
) -> None:
    manifest = load_manifest(write_manifest(PRICED))
    (workdir / "shotrunner.toml").write_text(
        '[pricing]\ncurrency = "USD"\nunit = "per_second"\n[pricing.models.other]\ndefault = 1\n',
        encoding="utf-8",
    )
    table = load_prices(manifest)
    assert table is not None and table.currency == "USD"
    assert table.per_second("other", "4k") == Decimal(1)
    given = workdir / "given.toml"
    given.write_text("[pricing]\ncurrency = 'USD'\nunit = 'per_minute'\n", encoding="utf-8")
    with pytest.raises(ManifestInvalid) as refused:
        load_prices(manifest, given)
    formatted = [d.format() for d in refused.value.diagnostics]
    assert any(f.startswith(f"{given}:3:1: error:") and "per_second" in f for f in formatted)


@pytest.mark.parametrize("text", ["", "x", "-0.01", "inf"])
def test_max_cost_refuses_what_is_not_an_amount(text: str) -> None:
    with pytest.raises(InputError):
        parse_amount(text)


def test_reasons_from_the_store_and_the_first_difference_of_a_saved_plan(
    write_manifest: WriteManifest, workdir: Path
) -> None:
    path = write_manifest(PRICED)
    manifest = load_manifest(path)
    jobs = expand_jobs(manifest)
    (workdir / "batch").mkdir()
    with Store.open(workdir / "batch") as store:
        store.bind_jobs(None, [(j.shot.id, j.take, j.fingerprint, 1) for j in jobs])
        store.record_requests({j.fingerprint: provenance_request(j.shot) for j in jobs})
        saved = json.loads(json.dumps(plan_record(manifest, make_plan(jobs, store), 3)))

    path.write_text(PRICED.replace("golden hour", "blue hour"), encoding="utf-8")
    edited = load_manifest(path)
    with Store.open(workdir / "batch") as store:
        plan = make_plan(expand_jobs(edited), store, PlanOptions(force=frozenset({"b"})))
    by_shot = {(p.job.shot.id, p.job.take): p.reason for p in plan.jobs}
    assert by_shot[("a", 1)] == "prompt changed: - golden / + blue"
    assert by_shot[("c", 1)] == "not submitted yet (an earlier run stopped before)"
    difference = first_difference(saved, edited, plan)
    assert difference == (
        "a/1: the manifest or its images changed (prompt changed: - golden / + blue)"
    )


def test_one_attempt_in_all_adds_no_worst_case(
    write_manifest: WriteManifest, workdir: Path
) -> None:
    manifest = load_manifest(write_manifest(PRICED))
    jobs = expand_jobs(manifest)[:1]
    plan = make_plan(jobs, None)
    table = load_prices(manifest)
    assert table is not None
    money = plan_money(plan, table, max_attempts=1)
    assert (money.total, money.worst_case_extra) == (Decimal("0.20"), Decimal(0))
