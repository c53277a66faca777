"""The API base a user gives: one with a query string or fragment is refused before anything
is sent (docs/client.md, "The API base")."""

from __future__ import annotations

import pytest

from runner.sim import RunningSim
from tests.e2e.conftest import Batch, RunBatch


@pytest.mark.parametrize("tail", ["?token=Q-secret", "/?token=Q-secret", "#Q-secret"])
def test_a_base_with_a_query_or_fragment_is_refused(
    sim: RunningSim, batch: Batch, run_batch: RunBatch, tail: str
) -> None:
    """``--api-base http://host/v1?token=Q``: exit 2 with a message that names the rule and
    not the query; the API receives nothing, and no clip is written."""
    result = run_batch(sim.base_url + tail)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "query string or fragment" in result.stderr
    assert "Q-secret" not in result.stdout + result.stderr
    assert sim.recorder.requests == []
    assert batch.clips() == []
    # Refused as the options are read: no batch folder, no state database, no run record.
    assert not batch.out.exists()
