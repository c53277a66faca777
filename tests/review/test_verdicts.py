"""Picks and rejections: stored in the store, one pick per shot, only for takes that exist."""

from __future__ import annotations

import pytest

from runner.errors import InputError
from runner.report import set_verdict
from runner.store import Store
from tests.review.conftest import Batch


def verdicts_of(batch: Batch) -> dict[tuple[str, int], str]:
    with batch.store() as store:
        return dict(store.verdicts())


def test_pick_is_stored(batch: Batch) -> None:
    """Picking a finished take records the verdict in the store."""
    batch.done("s02-hero", 2)
    with Store.open(batch.out) as store:
        set_verdict(batch.manifest, store, "s02-hero", 2, "picked")
    assert verdicts_of(batch) == {("s02-hero", 2): "picked"}


def test_picking_another_take_unpicks_the_first(batch: Batch) -> None:
    """A shot has at most one picked take: picking take 3 un-picks take 1."""
    batch.done("s02-hero", 1)
    batch.done("s02-hero", 3)
    with Store.open(batch.out) as store:
        set_verdict(batch.manifest, store, "s02-hero", 1, "picked")
        set_verdict(batch.manifest, store, "s02-hero", 3, "picked")
    assert verdicts_of(batch) == {("s02-hero", 3): "picked"}


def test_picks_of_different_shots_stand_together(batch: Batch) -> None:
    """Picking a take of one shot leaves the pick of another shot alone."""
    batch.done("s01-wide", 1)
    batch.done("s02-hero", 1)
    with Store.open(batch.out) as store:
        set_verdict(batch.manifest, store, "s01-wide", 1, "picked")
        set_verdict(batch.manifest, store, "s02-hero", 1, "picked")
    assert verdicts_of(batch) == {("s01-wide", 1): "picked", ("s02-hero", 1): "picked"}


def test_picking_a_rejected_take_clears_the_rejection(batch: Batch) -> None:
    """A rejected take that is then picked is picked, no longer rejected."""
    batch.done("s02-hero", 2)
    with Store.open(batch.out) as store:
        set_verdict(batch.manifest, store, "s02-hero", 2, "rejected")
        set_verdict(batch.manifest, store, "s02-hero", 2, "picked")
    assert verdicts_of(batch) == {("s02-hero", 2): "picked"}


def test_rejecting_the_picked_take_replaces_the_pick(batch: Batch) -> None:
    """Rejecting the picked take leaves it rejected and the shot without a pick."""
    batch.done("s02-hero", 2)
    with Store.open(batch.out) as store:
        set_verdict(batch.manifest, store, "s02-hero", 2, "picked")
        set_verdict(batch.manifest, store, "s02-hero", 2, "rejected")
    assert verdicts_of(batch) == {("s02-hero", 2): "rejected"}


def test_shot_id_matches_ignoring_case(batch: Batch) -> None:
    """Shot ids are unique ignoring case, so S02-HERO names s02-hero."""
    batch.done("s02-hero", 1)
    with Store.open(batch.out) as store:
        shot = set_verdict(batch.manifest, store, "S02-HERO", 1, "rejected")
    assert shot.id == "s02-hero"
    assert verdicts_of(batch) == {("s02-hero", 1): "rejected"}


def test_unknown_shot_is_an_input_error_naming_it(batch: Batch) -> None:
    """A shot the manifest does not have is refused with a message naming it and the shots."""
    batch.done("s01-wide", 1)
    with Store.open(batch.out) as store, pytest.raises(InputError) as caught:
        set_verdict(batch.manifest, store, "s09", 1, "picked")
    assert "no shot 's09'" in caught.value.message
    assert "s01-wide, s02-hero, s03-turn" in caught.value.message


@pytest.mark.parametrize("take", [0, 4, -1])
def test_take_outside_the_shot_is_an_input_error(batch: Batch, take: int) -> None:
    """A take number the shot does not have is refused, saying how many takes it has."""
    batch.done("s02-hero", 1)
    with Store.open(batch.out) as store, pytest.raises(InputError) as caught:
        set_verdict(batch.manifest, store, "s02-hero", take, "rejected")
    assert caught.value.message == f"shot 's02-hero' has 3 take(s); there is no take {take}"


def test_a_take_that_is_not_done_cannot_be_picked(batch: Batch) -> None:
    """Only a finished take can be picked; a failed one is refused with its state."""
    batch.failed("s03-turn", 1, "boom")
    with Store.open(batch.out) as store, pytest.raises(InputError) as caught:
        set_verdict(batch.manifest, store, "s03-turn", 1, "picked")
    assert "is failed, not done" in caught.value.message
    assert verdicts_of(batch) == {}


def test_a_take_that_is_not_done_can_be_rejected(batch: Batch) -> None:
    """Rejecting needs no finished clip: a failed take can be rejected."""
    batch.failed("s03-turn", 1, "boom")
    with Store.open(batch.out) as store:
        set_verdict(batch.manifest, store, "s03-turn", 1, "rejected")
    assert verdicts_of(batch) == {("s03-turn", 1): "rejected"}


def test_a_pick_does_not_pass_to_an_edited_shots_new_render(batch: Batch) -> None:
    """A verdict belongs to the render it was given to: the job's new render has none."""
    batch.done("s01-wide", 1)
    with Store.open(batch.out) as store:
        set_verdict(batch.manifest, store, "s01-wide", 1, "picked")
        store.bind_jobs(None, [("s01-wide", 1, "f" * 64, 1)])
    assert verdicts_of(batch) == {}
