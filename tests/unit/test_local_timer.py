"""The local Timer: fires due checks in order, never early, and survives failing checks.

Real time, short delays: checks are due 50-150 ms ahead, and each test waits on a
threading.Event that the firing sets, so a passing test waits only as long as its timers.
How late a check fires is a measurement (scripts/bench_local_timer.py), not an assertion here:
this machine is shared, and a busy moment must not fail the suite. A check that never fires
(a thread that was not woken) fails through the guard below.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.adapters.local_timer import LocalTimer

#: How long a test waits for firings it expects; only a failing test waits this long.
GUARD_SECONDS = 10.0


def soon(seconds: float = 0.05) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


class Recorder:
    """A `fire` callback that records each event with the time it fired."""

    def __init__(self, expected: int) -> None:
        self.fired: list[tuple[dict, datetime]] = []
        self._expected = expected
        self.done = threading.Event()

    def __call__(self, event: dict) -> None:
        self.fired.append((event, datetime.now(timezone.utc)))
        if len(self.fired) >= self._expected:
            self.done.set()

    @property
    def events(self) -> list[dict]:
        return [event for event, _ in self.fired]

    def wait(self) -> None:
        assert self.done.wait(GUARD_SECONDS), f"only {len(self.fired)} checks fired"


@pytest.fixture
def make_timer():
    timers: list[LocalTimer] = []

    def make(fire) -> LocalTimer:
        timer = LocalTimer(fire)
        timers.append(timer)
        return timer

    yield make
    for timer in timers:
        timer.stop()


def ev(dispatch_uuid: str, step_index: int) -> dict:
    return {"dispatch_uuid": dispatch_uuid, "step_index": step_index}


def assert_not_early(fired_at: datetime, due: datetime) -> None:
    assert fired_at >= due


def test_fires_in_due_order_and_never_early(make_timer):
    recorder = Recorder(expected=3)
    timer = make_timer(recorder)
    due = {("b", 1): soon(0.10), ("a", 0): soon(0.05), ("c", 2): soon(0.15)}
    for (dispatch_uuid, step_index), at in due.items():
        timer.schedule(dispatch_uuid, step_index, at)
    timer.start()

    recorder.wait()

    assert recorder.events == [ev("a", 0), ev("b", 1), ev("c", 2)]
    for event, fired_at in recorder.fired:
        assert_not_early(fired_at, due[(event["dispatch_uuid"], event["step_index"])])
    assert timer.pending() == 0


def test_reschedule_to_an_earlier_time_wakes_the_thread(make_timer):
    recorder = Recorder(expected=1)
    timer = make_timer(recorder)
    timer.start()
    timer.schedule("d", 0, soon(3600))
    # Give the thread time to fall asleep on the far check; only a wake-up can make it fire now.
    threading.Event().wait(0.05)

    at = soon(0.05)
    timer.schedule("d", 0, at)
    recorder.wait()

    assert recorder.events == [ev("d", 0)]
    assert_not_early(recorder.fired[0][1], at)
    assert timer.pending() == 0


def test_reschedule_to_a_later_time_replaces_the_pending_check(make_timer):
    recorder = Recorder(expected=2)
    timer = make_timer(recorder)
    timer.schedule("d", 1, soon(0.05))
    later = soon(0.15)
    timer.schedule("d", 1, later)
    timer.schedule("sentinel", 0, soon(0.2))
    assert timer.pending() == 2
    timer.start()

    recorder.wait()

    assert recorder.events == [ev("d", 1), ev("sentinel", 0)]
    assert_not_early(recorder.fired[0][1], later)


def test_many_reschedules_fire_once_at_the_last_time(make_timer):
    recorder = Recorder(expected=2)
    timer = make_timer(recorder)
    for i in range(1000):
        timer.schedule("d", 0, soon(60 + i))
    last = soon(0.05)
    timer.schedule("d", 0, last)
    timer.schedule("sentinel", 0, soon(0.1))
    timer.start()

    recorder.wait()

    assert recorder.events == [ev("d", 0), ev("sentinel", 0)]
    assert_not_early(recorder.fired[0][1], last)


def test_cancel_prevents_firing(make_timer):
    recorder = Recorder(expected=1)
    timer = make_timer(recorder)
    a_at = soon(0.05)
    timer.schedule("a", 0, a_at)
    timer.schedule("b", 0, soon(0.10))
    timer.start()

    timer.cancel("a", 0, a_at)
    timer.cancel("unknown", 7, a_at)
    assert timer.pending() == 1
    recorder.wait()

    # "a" was due first, so had it survived it would have fired before "b".
    assert recorder.events == [ev("b", 0)]


def test_cancel_of_a_replaced_check_keeps_its_replacement(make_timer):
    recorder = Recorder(expected=1)
    timer = make_timer(recorder)
    guard = soon(30)
    timer.schedule("a", 0, guard)
    timer.schedule("a", 0, soon(0.05))  # the deadline replaces the guard...
    timer.cancel("a", 0, guard)  # ...which is then cancelled by its own time
    assert timer.pending() == 1
    timer.start()
    recorder.wait()

    assert recorder.events == [ev("a", 0)]


def test_a_failing_check_is_logged_and_later_checks_still_fire(make_timer, caplog):
    recorder = Recorder(expected=1)

    def fire(event: dict) -> None:
        if event["dispatch_uuid"] == "boom":
            raise RuntimeError("provider unreachable")
        recorder(event)

    timer = make_timer(fire)
    timer.schedule("boom", 0, soon(0.05))
    at = soon(0.10)
    timer.schedule("ok", 1, at)
    with caplog.at_level(logging.ERROR, logger="chalicelib.adapters.local_timer"):
        timer.start()
        recorder.wait()

    assert recorder.events == [ev("ok", 1)]
    assert_not_early(recorder.fired[0][1], at)
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert (record.dispatch_uuid, record.step_index) == ("boom", 0)
    assert timer.running


def test_a_check_may_schedule_the_next_one(make_timer):
    recorder = Recorder(expected=2)

    def fire(event: dict) -> None:
        recorder(event)
        if event["step_index"] == 0:
            timer.schedule(event["dispatch_uuid"], 1, soon(0.05))

    timer = make_timer(fire)
    timer.schedule("d", 0, soon(0.05))
    timer.start()

    recorder.wait()

    assert recorder.events == [ev("d", 0), ev("d", 1)]


def test_stop_joins_the_thread_and_start_resumes(make_timer):
    recorder = Recorder(expected=1)
    timer = make_timer(recorder)
    timer.start()
    assert timer.running

    timer.stop()
    assert not timer.running
    at = soon(0.05)
    timer.schedule("d", 0, at)
    assert not recorder.done.wait(0.15), "a stopped timer fired"
    assert timer.pending() == 1

    timer.start()
    recorder.wait()
    assert recorder.events == [ev("d", 0)]


def test_naive_due_times_are_refused(make_timer):
    timer = make_timer(Recorder(expected=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        timer.schedule("d", 0, datetime.now())
