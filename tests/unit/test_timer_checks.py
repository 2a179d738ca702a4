"""What both AWS timers derive from a check: its due second, its name and its input."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from chalicelib import bootstrap
from chalicelib.adapters.timer_checks import check_input, check_name, due_second
from chalicelib.api.checks import CheckEvent, run_check

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
AT = datetime(2026, 11, 24, 8, 15, 30, tzinfo=timezone.utc)
#: What both Step Functions execution names and Scheduler schedule names accept.
NAME_RULE = re.compile(r"[0-9A-Za-z_-]{1,64}")


def test_an_exact_second_stays():
    assert due_second(AT) == AT


@pytest.mark.parametrize("late", [timedelta(microseconds=1), timedelta(milliseconds=1), timedelta(microseconds=999_999)])
def test_a_fraction_of_a_second_rounds_up(late):
    assert due_second(AT + late) == AT + timedelta(seconds=1)


def test_due_second_is_utc():
    cet = timezone(timedelta(hours=1))
    due = due_second(datetime(2026, 11, 24, 9, 15, 29, 500_000, tzinfo=cet))
    assert due == AT
    assert due.utcoffset() == timedelta(0)


@pytest.mark.parametrize("derive", [due_second, lambda at: check_name(UUID, 0, at), lambda at: check_input(UUID, 0, at)])
def test_naive_datetimes_are_refused(derive):
    with pytest.raises(ValueError):
        derive(datetime(2026, 11, 24, 8, 15, 30))


def test_name_is_dispatch_step_and_due_epoch_second():
    assert check_name(UUID, 3, AT + timedelta(milliseconds=1)) == f"{UUID}-3-{int(AT.timestamp()) + 1}"


def test_name_is_the_same_for_every_time_within_one_due_second():
    assert check_name(UUID, 0, AT + timedelta(milliseconds=1)) == check_name(UUID, 0, AT + timedelta(seconds=1))
    assert check_name(UUID, 0, AT) != check_name(UUID, 0, AT + timedelta(milliseconds=1))


def test_name_of_the_longest_allowed_step_fits_both_services():
    name = check_name(UUID, 99, datetime(2300, 1, 1, tzinfo=timezone.utc))  # an 11-digit epoch
    assert NAME_RULE.fullmatch(name), name


@pytest.mark.parametrize("bad", ["", "has space", "dot.ted", "slash/ed", "ünïcode", "x" * 60])
def test_a_dispatch_uuid_that_cannot_name_a_check_is_refused(bad):
    with pytest.raises(ValueError):
        check_name(bad, 0, AT)


def test_a_negative_step_is_refused():
    with pytest.raises(ValueError):
        check_name(UUID, -1, AT)


def test_input_carries_the_rounded_up_second_in_rfc3339():
    assert check_input(UUID, 2, AT + timedelta(microseconds=1)) == {
        "dispatch_uuid": UUID,
        "step_index": 2,
        "due_at": "2026-11-24T08:15:31Z",
    }


def test_the_check_reads_the_input_back_as_the_due_second():
    event = CheckEvent.model_validate(check_input(UUID, 2, AT + timedelta(milliseconds=400)))
    assert (event.dispatch_uuid, event.step_index, event.due_at) == (UUID, 2, AT + timedelta(seconds=1))


def test_a_check_without_due_at_still_validates():
    assert CheckEvent.model_validate({"dispatch_uuid": UUID, "step_index": 0}).due_at is None


@pytest.fixture
def checked() -> Iterator[list[tuple[str, int]]]:
    """Services whose clock reads 1.5 s after AT's due second, recording the checks run."""
    calls: list[tuple[str, int]] = []
    now = AT + timedelta(seconds=2.5)
    bootstrap.override(
        SimpleNamespace(  # type: ignore[arg-type]
            clock=SimpleNamespace(now=lambda: now),
            dispatches=SimpleNamespace(run_check=lambda uuid, step: calls.append((uuid, step))),
        )
    )
    yield calls
    bootstrap.override(None)


def test_the_check_logs_its_lateness_as_a_field(checked, caplog):
    caplog.set_level(logging.INFO, logger="chalicelib.api.checks")

    assert run_check(check_input(UUID, 1, AT + timedelta(milliseconds=1)))["ok"] is True

    assert checked == [(UUID, 1)]
    [record] = [r for r in caplog.records if hasattr(r, "lateness_ms")]
    assert record.lateness_ms == 1500
    assert "1500" not in record.getMessage()


def test_a_check_without_due_at_logs_no_lateness(checked, caplog):
    caplog.set_level(logging.INFO, logger="chalicelib.api.checks")
    assert run_check({"dispatch_uuid": UUID, "step_index": 0})["ok"] is True
    assert checked == [(UUID, 0)]
    assert not [r for r in caplog.records if hasattr(r, "lateness_ms")]


def test_a_naive_due_at_is_an_invalid_event(checked):
    event = {"dispatch_uuid": UUID, "step_index": 0, "due_at": "2026-11-24T08:15:31"}
    assert run_check(event) == {"ok": False, "error": "invalid check event"}
    assert checked == []
