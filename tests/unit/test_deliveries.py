"""The deliver_callbacks handler's batch handling: each dispatch drained once, the function's
time shared fairly, and what cannot be started in time queued again instead of cut off."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from chalicelib import bootstrap
from chalicelib.api.deliveries import MIN_BUDGET_SECONDS, RESERVE_SECONDS, run_deliveries
from chalicelib.service.callback_relay import DrainResult


class RecordingRelay:
    def __init__(self, clock_ms: list[int] | None = None, spend_ms: int = 0):
        self.drains: list[tuple[str, float | None]] = []
        self.clock_ms = clock_ms
        self.spend_ms = spend_ms

    def drain(self, dispatch_uuid, budget_seconds=None):
        self.drains.append((dispatch_uuid, budget_seconds))
        if self.clock_ms is not None:
            self.clock_ms[0] -= self.spend_ms
        if dispatch_uuid == "broken":
            raise RuntimeError("DynamoDB is down")
        return DrainResult(delivered=1)


class RecordingQueue:
    def __init__(self):
        self.nudged: list[str] = []

    def nudge(self, dispatch_uuid, at=None):
        self.nudged.append(dispatch_uuid)


@pytest.fixture
def services():
    fake = SimpleNamespace(callback_relay=RecordingRelay(), callback_queue=RecordingQueue())
    bootstrap.override(fake)  # type: ignore[arg-type]
    yield fake
    bootstrap.override(None)


def body(dispatch_uuid: str) -> str:
    return json.dumps({"dispatch_uuid": dispatch_uuid})


def test_each_dispatch_is_drained_once_and_bad_messages_are_counted(services):
    counts = run_deliveries([body("a"), body("b"), body("a"), "not json", json.dumps({"x": 1})])
    assert [d for d, _ in services.callback_relay.drains] == ["a", "b"]
    assert counts["drained"] == 2 and counts["delivered"] == 2 and counts["invalid"] == 2


def test_a_failed_drain_does_not_stop_the_others(services):
    counts = run_deliveries([body("broken"), body("b")])
    assert [d for d, _ in services.callback_relay.drains] == ["broken", "b"]
    assert counts["failed"] == 1 and counts["drained"] == 1


def test_the_functions_time_is_shared_between_the_drains(services):
    left = [int((RESERVE_SECONDS + 60) * 1000)]
    services.callback_relay.clock_ms, services.callback_relay.spend_ms = left, 20_000
    run_deliveries([body("a"), body("b"), body("c")], lambda: left[0])
    # 60 s to share: 20 s each while every drain uses its share.
    assert services.callback_relay.drains == [("a", 20.0), ("b", 20.0), ("c", 20.0)]


def test_what_cannot_start_in_time_is_queued_again(services):
    left = [int((RESERVE_SECONDS + 10) * 1000)]
    services.callback_relay.clock_ms, services.callback_relay.spend_ms = left, 10_000
    counts = run_deliveries([body("a"), body("b"), body("c")], lambda: left[0])
    assert [d for d, _ in services.callback_relay.drains] == ["a"]
    assert services.callback_queue.nudged == ["b", "c"]
    assert counts["deferred"] == 2


def test_the_first_drain_always_runs_so_a_short_timeout_still_makes_progress(services):
    counts = run_deliveries([body("a"), body("b")], lambda: 3_000)  # a 3 s function timeout
    assert services.callback_relay.drains == [("a", MIN_BUDGET_SECONDS)]
    assert services.callback_queue.nudged == ["b"] and counts["deferred"] == 1
