"""The benchmarks' pure logic: percentiles (nearest rank, measured values only) and the load
benchmark's checks of each dispatch's outcome."""
from __future__ import annotations

import math

import pytest

from benchmarks.load import PLANS, Tracked, is_final_report, outcome_disagreements
from benchmarks.stats import per_second, percentile, spread


def test_percentiles_are_nearest_rank_over_unsorted_values() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 1) == 1.0


def test_a_percentile_is_always_a_measured_value() -> None:
    values = [10.0, 20.0, 30.0, 1000.0]
    assert percentile(values, 50) == 20.0  # not 25 (interpolated)
    assert percentile(values, 99) == 1000.0  # one slow sample of four is the p99
    assert percentile(values, 0.1) == 10.0


def test_p99_of_200_is_the_198th_smallest() -> None:
    values = [float(v) for v in range(1, 201)]
    assert percentile(values, 99) == 198.0


def test_empty_samples_give_nan_and_bad_quantiles_are_refused() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_spread_and_throughput() -> None:
    assert spread([3.0, 1.0, 7.0]) == 6.0
    assert spread([5.0]) == 0.0
    assert math.isnan(spread([]))
    assert per_second(200, 4.0) == 50.0
    assert math.isnan(per_second(10, 0.0))


# --- the load benchmark's checks: they decide whether a run flags a service bug ----------------

FIRST, SECOND = "m-1", "m-2"


def _tracked(plan_name: str, status: str, completed_by: str | None, reports: list[dict]) -> Tracked:
    plan = next(p for p in PLANS if p.name == plan_name)
    tracked = Tracked(plan, "d-1", [FIRST, SECOND], created_at=0.0)
    tracked.view = {"status": status, "completed_by": completed_by}
    tracked.final_reports = reports
    return tracked


def _report(status: str, completed_by: str | None) -> dict:
    return {"dispatch_uuid": "d-1", "template": "failover", "status": status, "completed_by": completed_by}


def test_a_final_report_is_told_from_a_message_status_by_its_shape() -> None:
    status = {"message_uuid": FIRST, "status": "delivered", "_links": {"workflow": {"dispatch_uuid": "d-1"}}}
    assert is_final_report(_report("completed", FIRST))
    assert not is_final_report(status)
    assert not is_final_report("not json")


def test_outcomes_agreeing_with_the_plan_and_the_report_pass() -> None:
    assert outcome_disagreements(_tracked("delivered", "completed", FIRST, [_report("completed", FIRST)])) == []
    assert outcome_disagreements(_tracked("timeout", "completed", SECOND, [_report("completed", SECOND)])) == []
    assert outcome_disagreements(_tracked("fails", "error", None, [_report("error", None)])) == []


def test_an_outcome_against_the_plan_or_a_report_against_the_get_is_flagged() -> None:
    # Completed by the SMS although the first message was delivered in time.
    assert outcome_disagreements(_tracked("delivered", "completed", SECOND, [_report("completed", SECOND)]))
    # The GET and the report disagree.
    assert outcome_disagreements(_tracked("fails", "error", None, [_report("completed", SECOND)]))
    # Still open.
    assert outcome_disagreements(_tracked("rejected", "in_progress", None, []))
