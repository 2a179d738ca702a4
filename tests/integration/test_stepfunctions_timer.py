"""StepFunctionsTimer against moto's Step Functions in its default mode (executions never run).

In this mode an execution stays RUNNING until stopped, which is all scheduling and cancelling
need; what the machine does with the input is tested in test_failover_timer_definition.py.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.stepfunctions_timer import StepFunctionsTimer
from chalicelib.adapters.timer_checks import check_input, check_name

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
AT = datetime(2026, 11, 24, 8, 15, 30, 250_000, tzinfo=timezone.utc)
ROLE_ARN = "arn:aws:iam::123456789012:role/failover-timer"
#: Any valid machine will do here: default-mode moto never runs it.
DEFINITION = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}


@pytest.fixture
def sfn(aws):
    return boto3.client("stepfunctions", region_name="eu-west-1")


@pytest.fixture
def machine_arn(sfn) -> str:
    return sfn.create_state_machine(
        name="failover-timer", definition=json.dumps(DEFINITION), roleArn=ROLE_ARN
    )["stateMachineArn"]


@pytest.fixture
def timer(sfn, machine_arn) -> StepFunctionsTimer:
    return StepFunctionsTimer(sfn, machine_arn)


@pytest.fixture
def calls(sfn) -> list[str]:
    """Every API operation the client makes from now on."""
    made: list[str] = []
    sfn.meta.events.register("before-call", lambda model, **_: made.append(model.name))
    return made


def executions(sfn, machine_arn) -> list[dict]:
    return sfn.list_executions(stateMachineArn=machine_arn)["executions"]


def status(sfn, timer, at=AT, step=0) -> str:
    return sfn.describe_execution(executionArn=timer.execution_arn(check_name(UUID, step, at)))["status"]


def test_schedule_starts_one_execution_named_after_the_check_with_its_input(sfn, machine_arn, timer):
    timer.schedule(UUID, 1, AT)

    [execution] = executions(sfn, machine_arn)
    assert execution["name"] == f"{UUID}-1-{int(AT.timestamp()) + 1}"
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert described["status"] == "RUNNING"
    assert json.loads(described["input"]) == {"dispatch_uuid": UUID, "step_index": 1, "due_at": "2026-11-24T08:15:31Z"}
    assert json.loads(described["input"]) == check_input(UUID, 1, AT)


def test_execution_arn_is_derived_from_the_machine_arn(sfn, machine_arn, timer):
    timer.schedule(UUID, 0, AT)
    [execution] = executions(sfn, machine_arn)
    assert timer.execution_arn(check_name(UUID, 0, AT)) == execution["executionArn"]


def test_scheduling_the_same_check_twice_starts_it_once(sfn, machine_arn, timer):
    timer.schedule(UUID, 0, AT)
    timer.schedule(UUID, 0, AT + timedelta(milliseconds=500))  # the same due second

    assert len(executions(sfn, machine_arn)) == 1


def test_rescheduling_a_check_that_already_ended_is_a_no_op(sfn, machine_arn, timer):
    timer.schedule(UUID, 0, AT)
    timer.cancel(UUID, 0, AT)

    timer.schedule(UUID, 0, AT)  # ExecutionAlreadyExists: the name is taken by a finished execution

    assert len(executions(sfn, machine_arn)) == 1
    assert status(sfn, timer) == "ABORTED"


def test_checks_at_different_times_or_steps_are_separate_executions(sfn, machine_arn, timer):
    timer.schedule(UUID, 0, AT)
    timer.schedule(UUID, 0, AT + timedelta(seconds=1))
    timer.schedule(UUID, 1, AT)

    assert len(executions(sfn, machine_arn)) == 3


def test_cancel_stops_the_execution(sfn, timer):
    timer.schedule(UUID, 0, AT)
    timer.schedule(UUID, 0, AT + timedelta(seconds=5))

    timer.cancel(UUID, 0, AT)

    assert status(sfn, timer) == "ABORTED"
    assert status(sfn, timer, at=AT + timedelta(seconds=5)) == "RUNNING"


def test_cancel_of_a_check_never_scheduled_does_not_raise(sfn, timer, calls):
    timer.cancel(UUID, 4, AT)
    assert calls == ["StopExecution"]


def test_cancel_of_a_check_that_already_ended_does_not_raise(sfn, timer):
    timer.schedule(UUID, 0, AT)
    timer.cancel(UUID, 0, AT)

    timer.cancel(UUID, 0, AT)

    assert status(sfn, timer) == "ABORTED"


def test_backstops_make_no_call(sfn, machine_arn, timer, calls):
    timer.schedule(UUID, 0, AT, backstop=True)
    timer.cancel(UUID, 0, AT, backstop=True)

    assert calls == []
    assert executions(sfn, machine_arn) == []


def test_cancelling_a_backstop_leaves_a_regular_check_of_the_same_time_running(sfn, timer):
    timer.schedule(UUID, 0, AT)
    timer.cancel(UUID, 0, AT, backstop=True)
    assert status(sfn, timer) == "RUNNING"


def test_other_errors_propagate(sfn, machine_arn):
    missing = machine_arn.replace(":failover-timer", ":no-such-machine")
    with pytest.raises(ClientError) as raised:
        StepFunctionsTimer(sfn, missing).schedule(UUID, 0, AT)
    assert raised.value.response["Error"]["Code"] == "StateMachineDoesNotExist"


@pytest.mark.parametrize("arn", ["", "arn:aws:lambda:eu-west-1:123456789012:function:f", "not-an-arn"])
def test_a_value_that_is_no_state_machine_arn_is_refused(arn):
    with pytest.raises(ValueError):
        StepFunctionsTimer(object(), arn)
