"""The retry policy: full-jitter backoff, caps, Retry-After, and the instant switch for tests."""

from __future__ import annotations

import pytest

from runner.retry import INSTANT_ENV, RetryPolicy, instant_retries


@pytest.mark.parametrize(("failures", "bound"), [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0)])
def test_delay_is_full_jitter_under_the_exponential_bound(failures: int, bound: float) -> None:
    """Waits fall in [0, base*2**(failures-1)] and spread across that whole range."""
    policy = RetryPolicy(base=1.0, cap=60.0)
    samples = [policy.delay(failures) for _ in range(400)]
    assert all(0.0 <= s <= bound for s in samples)
    assert min(samples) < bound * 0.1
    assert max(samples) > bound * 0.9


def test_delay_never_exceeds_the_cap() -> None:
    """Past the cap, the bound stops growing."""
    policy = RetryPolicy(base=1.0, cap=5.0)
    samples = [policy.delay(12) for _ in range(400)]
    assert max(samples) <= 5.0
    assert max(samples) > 4.5


def test_huge_failure_counts_do_not_overflow() -> None:
    """Thousands of failures still give a capped wait, not an OverflowError."""
    assert 0.0 <= RetryPolicy(cap=10.0).delay(5000) <= 10.0


def test_zero_failures_counts_as_the_first() -> None:
    """A failure count below 1 is treated as the first failure."""
    assert 0.0 <= RetryPolicy(base=2.0).delay(0) <= 2.0


def test_retry_after_is_honoured() -> None:
    """The server's Retry-After replaces the backoff."""
    assert RetryPolicy(cap=5.0).delay(1, retry_after=42.0) == 42.0


def test_retry_after_is_capped() -> None:
    """An absurd Retry-After is cut down to the policy's maximum."""
    assert RetryPolicy().delay(1, retry_after=86400.0) == 300.0
    assert RetryPolicy(max_retry_after=30.0).delay(1, retry_after=86400.0) == 30.0


def test_instant_retries_makes_every_delay_zero() -> None:
    """Inside ``instant_retries()`` nothing waits, Retry-After included; outside it does again."""
    policy = RetryPolicy(base=10.0)
    with instant_retries():
        assert policy.delay(3) == 0.0
        assert policy.delay(1, retry_after=60.0) == 0.0
    assert policy.delay(1, retry_after=60.0) == 60.0


def test_instant_env_var_makes_every_delay_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """``SHOTRUNNER_INSTANT_RETRY=1`` switches waits off for a whole process."""
    monkeypatch.setenv(INSTANT_ENV, "1")
    assert RetryPolicy(base=10.0).delay(4, retry_after=5.0) == 0.0


def test_exhausted_counts_tries() -> None:
    """With max_tries=3, three tries are allowed and the third is the last."""
    policy = RetryPolicy(max_tries=3)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]


def test_no_max_tries_never_exhausts() -> None:
    """Without max_tries the policy never gives up by itself."""
    assert not RetryPolicy().exhausted(10_000)
