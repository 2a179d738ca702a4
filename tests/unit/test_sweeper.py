"""The safety sweeper over in-memory fakes: lost checks are re-driven once, and only those."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest

from chalicelib.domain.model import (
    Channel,
    Condition,
    DispatchStatus,
    MessageStatus,
    Outcome,
    Phase,
    StatusEvent,
    StepSpec,
)
from chalicelib.service.ports import ProviderError
from chalicelib.service.sweeper import Sweeper, SweepResult
from tests.fake_repository import InMemorySweepMarks
from tests.service_harness import Harness

GRACE = 90
LOOKBACK_MINUTES = 60
NOTHING = SweepResult(found=0, redriven=0, failed=0)
TEXT = "a message nobody else may read"


def spec(channel: Channel, condition: Condition | None = None, expiry: int | None = None) -> StepSpec:
    return StepSpec(
        channel=channel,
        to={"type": channel.value, "number": "447700900000"},
        sender={"type": channel.value, "number": "447700900001"},
        message={"content": {"type": "text", "text": TEXT}},
        condition=condition,
        expiry_time=expiry,
    )


def whatsapp_then_sms(expiry: int = 600) -> list[StepSpec]:
    return [spec(Channel.WHATSAPP, Condition.READ, expiry), spec(Channel.SMS)]


@pytest.fixture
def h() -> Harness:
    return Harness()


@pytest.fixture
def sweeper(h: Harness) -> Sweeper:
    return Sweeper(h.repo, h.service, h.clock, grace_seconds=GRACE, lookback_minutes=LOOKBACK_MINUTES)


def lose_timers(h: Harness) -> None:
    """Every pending check is lost, as with a failed StartExecution: the timer never fires."""
    h.timer.pending.clear()


def sent_steps(h: Harness) -> list[int]:
    return [m.step_index for m in h.provider.accepted]


def test_a_lost_deadline_is_redriven_exactly_once(h, sweeper):
    uuid = h.service.create(h.app, whatsapp_then_sms(expiry=600))
    lose_timers(h)
    h.clock.advance(600 + GRACE + 1)

    # A deadline is a check its timer owned: losing it is counted apart from backstops.
    assert sweeper.sweep() == SweepResult(found=1, redriven=1, failed=0, lost=1)

    d = h.dispatch(uuid)
    assert sent_steps(h) == [0, 1]
    assert d.steps[0].outcome is Outcome.EXPIRED and d.steps[0].phase is Phase.FAILED
    assert d.current == 1 and d.steps[1].phase is Phase.WAITING
    assert sweeper.sweep() == NOTHING  # the next step is due an hour from now
    h.service.run_check(uuid, 0)  # the lost check turning up after all changes nothing
    assert sent_steps(h) == [0, 1]
    assert [p["status"] for p in h.callbacks.statuses(uuid)] == ["submitted", "submitted"]


def test_a_lost_retry_is_redriven(h, sweeper):
    h.provider.fail_next(ProviderError("throttled", permanent=False, code="429"))
    uuid = h.service.create(h.app, whatsapp_then_sms())
    lose_timers(h)
    h.clock.advance(2 + GRACE + 1)

    assert sweeper.sweep() == SweepResult(found=1, redriven=1, failed=0, lost=1)

    d = h.dispatch(uuid)
    assert sent_steps(h) == [0] and d.steps[0].attempts == 2
    assert d.steps[0].phase is Phase.WAITING


def test_a_lost_report_limit_ends_the_dispatch_with_one_error_report(h, sweeper):
    uuid = h.service.create(h.app, [spec(Channel.SMS)])
    lose_timers(h)
    h.clock.advance(h.policy.last_step_report_seconds + GRACE + 1)

    # The report limit is a backstop: the AWS timers leave it to the sweep, so it is not lost.
    assert sweeper.sweep() == SweepResult(found=1, redriven=1, failed=0, lost=0)
    assert sweeper.sweep() == NOTHING

    d = h.dispatch(uuid)
    assert d.status is DispatchStatus.ERROR and d.steps[0].outcome is Outcome.NO_REPORT
    assert [r["status"] for r in h.callbacks.final_reports(uuid)] == ["error"]


@pytest.mark.parametrize(("late", "found"), [(GRACE - 1, 0), (GRACE, 1)])
def test_a_check_within_its_grace_period_is_left_to_its_timer(h, sweeper, late, found):
    uuid = h.service.create(h.app, whatsapp_then_sms(expiry=600))
    h.clock.advance(600 + late)

    assert sweeper.sweep().found == found

    if not found:
        assert sent_steps(h) == [0] and h.dispatch(uuid).current == 0
        h.advance(0)  # the timer, a little late, still does its job
        assert sent_steps(h) == [0, 1]


def test_a_final_dispatch_is_never_touched(h, sweeper, monkeypatch):
    uuid = h.service.create(h.app, whatsapp_then_sms(expiry=600))
    h.status(uuid, 0, StatusEvent(MessageStatus.READ))
    assert h.dispatch(uuid).status is DispatchStatus.COMPLETED
    checks: list[tuple[str, int]] = []
    monkeypatch.setattr(h.service, "run_check", lambda *args: checks.append(args))
    saves = h.repo.saves

    for minutes in (10, 30, 59):
        h.clock.advance(minutes * 60)
        assert sweeper.sweep() == NOTHING

    assert checks == [] and h.repo.saves == saves


def test_a_failing_check_is_counted_and_the_others_still_run(h, sweeper, monkeypatch, caplog):
    uuids = [h.service.create(h.app, whatsapp_then_sms()) for _ in range(3)]
    broken = uuids[1]
    lose_timers(h)
    h.clock.advance(600 + GRACE + 1)
    real_check = h.service.run_check

    def check(dispatch_uuid: str, step_index: int) -> None:
        if dispatch_uuid == broken:
            raise RuntimeError("table throttled")
        real_check(dispatch_uuid, step_index)

    monkeypatch.setattr(h.service, "run_check", check)
    caplog.set_level(logging.INFO, logger="chalicelib.service.sweeper")

    assert sweeper.sweep() == SweepResult(found=3, redriven=2, failed=1, lost=3)

    assert [h.dispatch(u).current for u in uuids] == [1, 0, 1]
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert (failure.dispatch_uuid, failure.step_index) == (broken, 0)
    assert TEXT not in caplog.text
    monkeypatch.setattr(h.service, "run_check", real_check)
    assert sweeper.sweep() == SweepResult(found=1, redriven=1, failed=0, lost=1)  # retried
    assert h.dispatch(broken).current == 1


def test_a_dispatch_stranded_beyond_the_look_back_needs_a_longer_one(h, sweeper):
    uuid = h.service.create(h.app, whatsapp_then_sms(expiry=600))
    lose_timers(h)
    h.clock.advance(600 + GRACE + (LOOKBACK_MINUTES + 1) * 60)

    assert sweeper.sweep() == NOTHING
    assert sweeper.sweep(lookback_minutes=LOOKBACK_MINUTES + 2).redriven == 1
    assert h.dispatch(uuid).current == 1


def test_it_logs_a_summary_only_when_it_found_something(h, sweeper, caplog):
    caplog.set_level(logging.INFO, logger="chalicelib.service.sweeper")
    h.service.create(h.app, whatsapp_then_sms(expiry=600))
    lose_timers(h)

    def summaries():  # other modules may log too, when another test left the root at INFO
        return [r for r in caplog.records if r.name == "chalicelib.service.sweeper"]

    sweeper.sweep()
    assert summaries() == []

    h.clock.advance(600 + GRACE)
    sweeper.sweep()
    [summary] = summaries()
    assert summary.levelno == logging.INFO
    assert (summary.found, summary.redriven, summary.failed) == (1, 1, 0)


# --- short runs from the last clean run's mark, and a full look-back every 15 minutes ---------


@pytest.fixture
def marks() -> InMemorySweepMarks:
    return InMemorySweepMarks()


@pytest.fixture
def tiered(h: Harness, marks: InMemorySweepMarks) -> Sweeper:
    return Sweeper(
        h.repo, h.service, h.clock, grace_seconds=GRACE, lookback_minutes=LOOKBACK_MINUTES,
        marks=marks, recent_minutes=3, full_every_minutes=15,
    )


def at_minute_of_hour(h: Harness, minute: int) -> None:
    """Move the clock forward to the next time whose minute of the hour is `minute` (:30 s)."""
    now = h.clock.now()
    h.clock.advance(((minute - now.minute) % 60) * 60 - now.second - now.microsecond / 1e6 + 30)


def cutoff(h: Harness) -> datetime:
    return h.clock.now() - timedelta(seconds=GRACE)


def test_a_run_that_finishes_marks_its_cutoff_and_the_next_starts_there(h, tiered, marks):
    h.service.create(h.app, whatsapp_then_sms(expiry=600))
    lose_timers(h)
    at_minute_of_hour(h, 1)
    assert tiered.sweep() == NOTHING
    assert marks.swept_to() == cutoff(h)

    at_minute_of_hour(h, 17)  # due at :10, overdue since :11:30; the runs :02 to :16 never came
    assert tiered.sweep().redriven == 1
    assert sent_steps(h) == [0, 1]


def test_minutes_a_dead_run_skipped_are_covered_by_the_next_one(h, tiered, marks):
    h.service.create(h.app, whatsapp_then_sms(expiry=600))
    lose_timers(h)
    at_minute_of_hour(h, 8)
    tiered.sweep()
    at_minute_of_hour(h, 20)  # the runs from :09 died before they finished: no mark

    assert tiered.sweep().redriven == 1
    assert marks.swept_to() == cutoff(h)


def test_a_check_that_raised_keeps_the_mark_so_the_next_run_tries_it_again(h, tiered, marks, monkeypatch):
    uuid = h.service.create(h.app, whatsapp_then_sms(expiry=600))
    lose_timers(h)
    at_minute_of_hour(h, 8)
    tiered.sweep()
    before = marks.swept_to()
    at_minute_of_hour(h, 16)
    real_check = h.service.run_check

    def broken(dispatch_uuid, step_index):
        raise RuntimeError("DynamoDB throttled")

    monkeypatch.setattr(h.service, "run_check", broken)
    assert tiered.sweep().failed == 1
    assert marks.swept_to() == before

    monkeypatch.setattr(h.service, "run_check", real_check)
    at_minute_of_hour(h, 20)  # a mark moved to :14:30 would start this run after :10
    assert tiered.sweep().redriven == 1
    assert h.dispatch(uuid).current == 1


def test_before_any_run_finished_a_run_looks_back_the_whole_way(h, tiered):
    h.service.create(h.app, whatsapp_then_sms(expiry=600))
    lose_timers(h)
    at_minute_of_hour(h, 52)

    assert tiered.sweep().redriven == 1


def test_a_full_run_finds_what_short_runs_after_a_clean_mark_cannot(h, tiered, marks):
    h.service.create(h.app, whatsapp_then_sms(expiry=600))
    lose_timers(h)
    at_minute_of_hour(h, 20)
    marks.mark_swept(cutoff(h) - timedelta(seconds=30))  # a run that missed it: the index lagged

    assert tiered.sweep() == NOTHING
    at_minute_of_hour(h, 30)
    assert tiered.sweep().redriven == 1


def test_a_look_back_given_by_hand_neither_reads_nor_moves_the_mark(h, tiered, marks):
    h.service.create(h.app, whatsapp_then_sms(expiry=600))
    lose_timers(h)
    h.clock.advance(600 + GRACE + 30 * 60)
    at_minute_of_hour(h, 7)
    marks.mark_swept(cutoff(h))

    assert tiered.sweep(lookback_minutes=LOOKBACK_MINUTES).redriven == 1
    assert marks.swept_to() == cutoff(h)


# --- a failed index read costs only its own list (found by the fault campaign's moto mode) ---------


class Unreadable:
    """Wraps a repository or callback store: the named reads raise, as a Query throttled past
    botocore's retries does."""

    def __init__(self, inner, *broken: str) -> None:
        self._inner = inner
        self._broken = set(broken)

    def __getattr__(self, name):
        if name in self._broken:
            def refuse(*args, **kwargs):
                raise RuntimeError("ProvisionedThroughputExceededException")

            return refuse
        return getattr(self._inner, name)


class Nudges:
    def __init__(self) -> None:
        self.nudged: list[str] = []

    def nudge(self, dispatch_uuid, at=None) -> None:
        self.nudged.append(dispatch_uuid)


class Stalled:
    """A callback store whose retry messages for `uuids` were lost."""

    def __init__(self, *uuids: str) -> None:
        self._uuids = list(uuids)

    def stalled(self, cutoff, since) -> list[str]:
        return self._uuids


def test_an_unreadable_overdue_list_still_lets_the_callbacks_be_recovered(h, marks):
    uuid = h.service.create(h.app, whatsapp_then_sms())
    lose_timers(h)
    queue = Nudges()
    sweeper = Sweeper(
        Unreadable(h.repo, "overdue"), h.service, h.clock, grace_seconds=GRACE,
        lookback_minutes=LOOKBACK_MINUTES, callback_store=Stalled(uuid), callback_queue=queue,
        marks=marks, recent_minutes=3, full_every_minutes=15,
    )
    h.clock.advance(600 + GRACE + 1)

    result = sweeper.sweep()

    assert (result.unread, result.found) == (1, 0)
    assert queue.nudged == [uuid] and result.callbacks_recovered == 1
    assert marks.swept_to() is None  # the next run reads these minutes again


def test_an_unreadable_callback_list_still_lets_the_overdue_checks_run(h, marks):
    uuid = h.service.create(h.app, whatsapp_then_sms())
    lose_timers(h)
    sweeper = Sweeper(
        h.repo, h.service, h.clock, grace_seconds=GRACE, lookback_minutes=LOOKBACK_MINUTES,
        callback_store=Unreadable(h.store, "stalled"), callback_queue=Nudges(), marks=marks,
        recent_minutes=3, full_every_minutes=15,
    )
    h.clock.advance(600 + GRACE + 1)

    result = sweeper.sweep()

    assert (result.unread, result.redriven) == (1, 1)
    assert h.dispatch(uuid).current == 1
    assert marks.swept_to() is None
