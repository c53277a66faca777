"""SimConfig: defaults are a well-behaved service; impossible knobs are refused."""

from __future__ import annotations

import pytest

from runner.sim import SimConfig


def test_the_defaults_are_a_well_behaved_service() -> None:
    """By default nothing fails, nothing is refused or dropped, and no key is needed."""
    config = SimConfig()
    assert config.token is None and config.max_active is None and not config.quirks
    rates = (config.fail_rate, config.error_rate, config.rate_limit_rate, config.drop_rate)
    assert rates == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "knobs",
    [
        {"fail_rate": 1.1},
        {"drop_rate": -0.5},
        {"hang_rate": float("nan")},
        {"job_seconds": -1.0},
        {"url_ttl": 0.0},
        {"max_active": 0},
        {"clip_bytes": -1},
        {"file_rate": 0.0},
        {"file_rate": float("inf")},
        {"stall_after": -1},
        {"cut_after": -1},
        {"deny_polls": 404},
        {"create_delay": -0.1},
        {"create_delay": float("nan")},
        {"port": 65536},
        {"fail_rate": 0.5, "lose_rate": 0.6},
    ],
    ids=repr,
)
def test_an_impossible_knob_is_refused(knobs: dict[str, float]) -> None:
    """Rates outside 0..1 (or adding up past 1), negative durations and limits raise ValueError."""
    with pytest.raises(ValueError, match="--"):
        SimConfig(**knobs)  # type: ignore[arg-type]
