"""The real `FailoverTimer` definition from infra/dispatch.json, run by moto's ASL interpreter.

Started through StepFunctionsTimer, so this checks that the timer's input and the machine agree:
the machine waits for `due_at` and hands the whole input to `failover_check`. Runs in real time
(a check due about 2 s ahead). moto's Lambda runs no code without Docker: it echoes the payload,
which is enough, because the payload is what is asserted.

moto's Wait is coarser than AWS's: it sleeps `int(due_at - now)` seconds, truncating, so it ends
up to 1 s *before* `due_at` (moto/stepfunctions/parser/asl/component/state/wait/wait_function/
timestamp.py). AWS waits until the timestamp. "Not before the due second" can therefore only be
asserted here as "less than 1 s before it", which still fails if the timer rounded down.
"""
from __future__ import annotations

import io
import json
import os
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from chalicelib.adapters.stepfunctions_timer import StepFunctionsTimer
from chalicelib.adapters.timer_checks import check_input, check_name, due_second

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "dispatch.json"
REGION = "eu-west-1"
UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
LEAD = timedelta(seconds=2)
FINISH_TIMEOUT_SECONDS = 15.0
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture
def utc_local_time() -> Iterator[None]:
    """moto compares `due_at` (UTC) with naive local `datetime.now()`: make local time UTC."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.fixture
def executing_aws(utc_local_time) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def sfn(executing_aws):
    return boto3.client("stepfunctions", region_name=REGION)


@pytest.fixture
def timer(sfn) -> StepFunctionsTimer:
    role_arn = boto3.client("iam").create_role(
        RoleName="failover-timer", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]["Arn"]
    check_function_arn = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="dispatch-failover-check",
        Runtime="python3.11",
        Role=role_arn,
        Handler="app.handler",
        Code={"ZipFile": _zip({"app.py": "def handler(event, context):\n    return event\n"})},
    )["FunctionArn"]
    definition = _definition({"Partition": "aws", "FailoverCheckArn": check_function_arn})
    machine_arn = sfn.create_state_machine(name="failover-timer", definition=definition, roleArn=role_arn)[
        "stateMachineArn"
    ]
    return StepFunctionsTimer(sfn, machine_arn)


def _definition(values: dict[str, str]) -> str:
    """The template's Definition with its DefinitionSubstitutions filled in, as CloudFormation would."""
    machine = json.loads(TEMPLATE.read_text())["Resources"]["FailoverTimer"]["Properties"]
    text = json.dumps(machine["Definition"])
    for key in machine.get("DefinitionSubstitutions", {}):
        text = text.replace("${" + key + "}", values[key])  # KeyError: a substitution this test lacks
    for key, value in values.items():  # also the ones a template might write without declaring
        text = text.replace("${" + key + "}", value)
    assert "${" not in text, "the definition uses a substitution this test does not know"
    return text


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def _finished(sfn, execution_arn: str) -> dict:
    deadline = time.monotonic() + FINISH_TIMEOUT_SECONDS
    while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish in time"
        time.sleep(0.05)
    return described


def _events(sfn, execution_arn: str) -> list[dict]:
    return sfn.get_execution_history(executionArn=execution_arn)["events"]


def _wait_for(sfn, execution_arn: str, event_type: str) -> None:
    deadline = time.monotonic() + FINISH_TIMEOUT_SECONDS
    while event_type not in {e["type"] for e in _events(sfn, execution_arn)}:
        assert time.monotonic() < deadline, f"no {event_type} event in time"
        time.sleep(0.01)


def test_the_check_runs_at_its_due_second_with_the_timers_input(sfn, timer):
    at = datetime.now(timezone.utc) + LEAD
    due = due_second(at)
    execution_arn = timer.execution_arn(check_name(UUID, 1, at))

    timer.schedule(UUID, 1, at)
    described = _finished(sfn, execution_arn)

    assert described["status"] == "SUCCEEDED"
    [task] = [e for e in _events(sfn, execution_arn) if e["type"] == "TaskScheduled"]
    parameters = json.loads(task["taskScheduledEventDetails"]["parameters"])
    assert parameters["Payload"] == check_input(UUID, 1, at)
    assert parameters["FunctionName"].endswith(":function:dispatch-failover-check")
    # See the module docstring: moto ends the wait up to 1 s early; rounding down would end it
    # at least 1 s early.
    assert task["timestamp"] >= due - timedelta(seconds=1)
    assert described["stopDate"] >= due - timedelta(seconds=1)

    # Cancelling once the check has run does not raise and leaves the execution as it ended.
    timer.cancel(UUID, 1, at)
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "SUCCEEDED"


def test_a_check_cancelled_while_waiting_never_runs(sfn, timer):
    at = datetime.now(timezone.utc) + LEAD
    execution_arn = timer.execution_arn(check_name(UUID, 0, at))

    timer.schedule(UUID, 0, at)
    # moto stops nothing (AttributeError) before its worker thread has set the execution up.
    _wait_for(sfn, execution_arn, "WaitStateEntered")
    timer.cancel(UUID, 0, at)
    assert _finished(sfn, execution_arn)["status"] == "ABORTED"

    # Wait until the check would have run, then make sure it did not.
    time.sleep(max(0.0, (due_second(at) - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    events = _events(sfn, execution_arn)
    assert [e["type"] for e in events if e["type"].startswith("Task")] == []
    assert events[-1]["type"] == "ExecutionAborted"
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "ABORTED"
