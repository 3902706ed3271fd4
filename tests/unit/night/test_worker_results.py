"""A batch's result travels through the database as JSON (``night.workers``): whatever a
batch did comes back the same, so the run's totals add up every worker's batches."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from night.batch import OUTCOMES, BatchResult
from night.workers import ClaimTerms, result_from_json, result_json

campaigns = st.sampled_from(["credit", "discount", "plain"])
results = st.builds(
    BatchResult,
    outcomes=st.dictionaries(
        st.tuples(campaigns, st.sampled_from(OUTCOMES)), st.integers(1, 500)
    ).map(Counter),
    rewards_issued=st.dictionaries(campaigns, st.integers(1, 500)).map(Counter),
    problems=st.lists(st.text(max_size=20), max_size=5),
)


@given(results)
def test_a_result_comes_back_as_it_went(result: BatchResult) -> None:
    stored = result_json(result, None, 3)
    assert result_from_json(stored) == result
    assert stored["recovered"] == 3 and stored["stopped"] is None


def test_only_the_first_problems_are_kept() -> None:
    result = BatchResult(problems=[f"a{n}: refused" for n in range(80)])
    assert len(result_from_json(result_json(result)).problems) == 50


def test_a_claim_beats_before_it_expires() -> None:
    assert ClaimTerms(ttl_seconds=60, heartbeat_seconds=15).ttl.total_seconds() == 60
    with pytest.raises(ValueError, match="shorter than ttl"):
        ClaimTerms(ttl_seconds=10, heartbeat_seconds=10)
