"""SchedulerTimer against moto's EventBridge Scheduler.

moto's Scheduler stores schedules but never fires them (nor validates `at()`, nor applies
ActionAfterCompletion), so the stored schedule is what these tests assert; the failover check
it would invoke is tested on its own.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.scheduler_timer import SchedulerTimer
from chalicelib.adapters.timer_checks import check_input, check_name

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
GROUP = "dispatch-checks"
TARGET_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:dispatch-failover-check"
ROLE_ARN = "arn:aws:iam::123456789012:role/dispatch-scheduler-invoke"
NOW = datetime(2026, 11, 24, 8, 15, 0, 600_000, tzinfo=timezone.utc)
AT = datetime(2026, 11, 24, 8, 15, 30, 250_000, tzinfo=timezone.utc)


@pytest.fixture
def scheduler(aws):
    client = boto3.client("scheduler", region_name="eu-west-1")
    client.create_schedule_group(Name=GROUP)
    return client


@pytest.fixture
def timer(scheduler) -> SchedulerTimer:
    return SchedulerTimer(scheduler, GROUP, TARGET_ARN, ROLE_ARN, clock=lambda: NOW)


@pytest.fixture
def calls(scheduler) -> list[str]:
    """Every API operation the client makes from now on."""
    made: list[str] = []
    scheduler.meta.events.register("before-call", lambda model, **_: made.append(model.name))
    return made


def schedules(scheduler) -> list[str]:
    return [s["Name"] for s in scheduler.list_schedules(GroupName=GROUP)["Schedules"]]


def stored(scheduler, at=AT, step=0) -> dict:
    return scheduler.get_schedule(Name=check_name(UUID, step, at), GroupName=GROUP)


def test_schedule_creates_a_one_time_schedule_for_the_due_second(scheduler, timer):
    timer.schedule(UUID, 2, AT)

    schedule = stored(scheduler, step=2)
    assert schedule["Name"] == f"{UUID}-2-{int(AT.timestamp()) + 1}"
    assert schedule["GroupName"] == GROUP
    assert schedule["ScheduleExpression"] == "at(2026-11-24T08:15:31)"  # rounded up
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    target = schedule["Target"]
    assert (target["Arn"], target["RoleArn"]) == (TARGET_ARN, ROLE_ARN)
    assert json.loads(target["Input"]) == {"dispatch_uuid": UUID, "step_index": 2, "due_at": "2026-11-24T08:15:31Z"}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10}


def test_the_expression_is_in_utc_whatever_the_zone_of_at(scheduler, timer):
    local = AT.astimezone(timezone(timedelta(hours=-5)))
    timer.schedule(UUID, 0, local)
    assert stored(scheduler)["ScheduleExpression"] == "at(2026-11-24T08:15:31)"


def test_scheduling_the_same_check_twice_creates_it_once(scheduler, timer):
    timer.schedule(UUID, 0, AT)
    timer.schedule(UUID, 0, AT + timedelta(milliseconds=500))  # the same due second

    assert schedules(scheduler) == [check_name(UUID, 0, AT)]


def test_checks_at_different_times_or_steps_are_separate_schedules(scheduler, timer):
    timer.schedule(UUID, 0, AT)
    timer.schedule(UUID, 0, AT + timedelta(seconds=1))
    timer.schedule(UUID, 1, AT)

    assert len(schedules(scheduler)) == 3


def test_cancel_deletes_the_schedule(scheduler, timer):
    timer.schedule(UUID, 0, AT)
    timer.schedule(UUID, 0, AT + timedelta(seconds=5))

    timer.cancel(UUID, 0, AT)

    assert schedules(scheduler) == [check_name(UUID, 0, AT + timedelta(seconds=5))]


def test_cancel_of_a_missing_schedule_does_not_raise(scheduler, timer, calls):
    timer.cancel(UUID, 0, AT)  # never created, or already fired and deleted itself
    assert calls == ["DeleteSchedule"]


@pytest.mark.parametrize(
    "at",
    [
        NOW - timedelta(hours=1),  # long past
        NOW - timedelta(milliseconds=100),  # this very second, already past
        NOW + timedelta(milliseconds=100),  # this very second, still ahead
        NOW.replace(microsecond=0) + timedelta(seconds=1),  # exactly the next second
    ],
)
def test_a_due_time_not_after_the_current_second_fires_the_next_second(scheduler, timer, at):
    timer.schedule(UUID, 0, at)

    schedule = stored(scheduler, at=at)
    assert schedule["ScheduleExpression"] == "at(2026-11-24T08:15:01)"
    # The input still says when the check was due, so the check logs its real lateness.
    assert json.loads(schedule["Target"]["Input"]) == check_input(UUID, 0, at)


def test_a_clamped_check_is_still_cancelled_by_its_own_time(scheduler, timer):
    past = NOW - timedelta(minutes=5)
    timer.schedule(UUID, 0, past)
    timer.cancel(UUID, 0, past)
    assert schedules(scheduler) == []


def test_backstops_make_no_call(scheduler, timer, calls):
    timer.schedule(UUID, 0, AT, backstop=True)
    timer.cancel(UUID, 0, AT, backstop=True)

    assert calls == []
    assert schedules(scheduler) == []


def test_cancelling_a_backstop_leaves_a_regular_check_of_the_same_time(scheduler, timer):
    timer.schedule(UUID, 0, AT)
    timer.cancel(UUID, 0, AT, backstop=True)
    assert schedules(scheduler) == [check_name(UUID, 0, AT)]


def test_other_errors_propagate(scheduler, timer):
    def throttle(**_):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "CreateSchedule")

    scheduler.meta.events.register("before-call.scheduler.CreateSchedule", throttle)
    with pytest.raises(ClientError) as raised:
        timer.schedule(UUID, 0, AT)
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"


def test_a_clock_without_a_zone_is_refused(scheduler):
    timer = SchedulerTimer(scheduler, GROUP, TARGET_ARN, ROLE_ARN, clock=lambda: NOW.replace(tzinfo=None))
    with pytest.raises(ValueError):
        timer.schedule(UUID, 0, AT)
