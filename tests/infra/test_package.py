"""`make package` end to end: Chalice packages each AWS stage with the merge template, and the
result is one SAM template that cfn-lint passes with no findings and that holds every resource
the service needs, wired to the Lambdas by reference."""
from __future__ import annotations

import fcntl
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.template.transforms._sam_globals import merge_globals

from scripts import package as packaging

STAGES = ("prod", "dev")
FUNCTIONS = {
    "APIHandler": "api",
    "FailoverCheck": "failover-check",
    "SweepOverdue": "sweep",
    "DeliverCallbacks": "deliver-callbacks",
}
#: Every setting a Lambda reads from the stack rather than from config.json.
WIRED = (
    "DISPATCH_TABLE",
    "DISPATCH_SECRET_PREFIX",
    "DISPATCH_STATE_MACHINE_ARN",
    "DISPATCH_SCHEDULE_GROUP",
    "DISPATCH_SCHEDULER_ROLE_ARN",
    "DISPATCH_CHECK_FUNCTION_ARN",
    "DISPATCH_CALLBACK_QUEUE_URL",
)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> dict[str, Path]:
    # Chalice keeps a package cache in .chalice/deployments; two test workers must not build
    # into it at once.
    lock_path = Path(tempfile.gettempdir()) / "dispatch-chalice-package.lock"
    templates = {}
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stage in STAGES:
            templates[stage] = packaging.package(stage, tmp_path_factory.mktemp(stage))
    return templates


def resources(template: Path) -> dict[str, Any]:
    document = json.loads(template.read_text())
    merge_globals(document)  # as SAM does at deploy time: Globals into each function
    return document["Resources"]


def of_type(found: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in found.items() if r["Type"] == kind}


@pytest.mark.parametrize("stage", STAGES)
def test_cfn_lint_finds_nothing(packaged, stage):
    findings = lint_file(packaged[stage])
    assert [f"{m.rule.id} {m.message} ({m.linenumber})" for m in findings] == []


@pytest.mark.parametrize("stage", STAGES)
def test_the_template_holds_the_table_with_its_index_ttl_and_backups(packaged, stage):
    (table,) = of_type(resources(packaged[stage]), "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert table["DeletionPolicy"] == "Retain"  # deleting the stack never deletes dispatches
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # The sweeper's, the callback relay's and the dead list's.
    assert [index["IndexName"] for index in props["GlobalSecondaryIndexes"]] == ["due", "relay", "dead"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_template_holds_both_timers_and_their_roles(packaged, stage):
    found = resources(packaged[stage])
    (machine,) = of_type(found, "AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["StateMachineType"] == "STANDARD"
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    assert found[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "states.amazonaws.com"
    }
    assert len(of_type(found, "AWS::Scheduler::ScheduleGroup")) == 1
    invoke = found["SchedulerInvokeRole"]["Properties"]
    assert invoke["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "scheduler.amazonaws.com"
    }
    # Both roles may invoke the failover check and nothing else.
    for props in (found[role]["Properties"], invoke):
        (statement,) = props["Policies"][0]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "lambda:InvokeFunction"
        assert statement["Resource"]["Fn::Sub"].endswith(":function:${AWS::StackName}-failover-check")


@pytest.mark.parametrize("stage", STAGES)
def test_every_function_is_named_logged_with_retention_and_wired_by_reference(packaged, stage):
    found = resources(packaged[stage])
    log_groups = {
        r["Properties"]["LogGroupName"]["Fn::Sub"]: r["Properties"]
        for r in of_type(found, "AWS::Logs::LogGroup").values()
    }
    for logical_id, suffix in FUNCTIONS.items():
        props = found[logical_id]["Properties"]
        assert props["FunctionName"] == {"Fn::Sub": f"${{AWS::StackName}}-{suffix}"}
        assert log_groups[f"/aws/lambda/${{AWS::StackName}}-{suffix}"]["RetentionInDays"] > 0
        variables = props["Environment"]["Variables"]
        for name in WIRED:
            # A reference CloudFormation resolves, never a name typed into config.json.
            assert isinstance(variables[name], dict), (logical_id, name)
        # Every function may decide or retry a callback, so every one queues on SQS.
        assert variables["DISPATCH_CALLBACK_DELIVERY"] == "sqs"
        assert variables["DISPATCH_CALLBACK_QUEUE_URL"] == {"Ref": "CallbackQueue"}
    assert found["SweepOverdue"]["Properties"]["Events"]["SweepOverdueEvent"] == {
        "Type": "Schedule",
        "Properties": {"Schedule": "rate(1 minute)"},
    }


@pytest.mark.parametrize("stage", STAGES)
def test_callbacks_flow_through_the_stacks_queue_into_deliver_callbacks(packaged, stage):
    found = resources(packaged[stage])
    function = found["DeliverCallbacks"]["Properties"]
    assert function["Handler"] == "app.deliver_callbacks"
    # The relay's lease is 120 s and its posting budget 60 s: a drain ends within its timeout.
    assert function["Timeout"] == 120
    assert function["MemorySize"] == found["FailoverCheck"]["Properties"]["MemorySize"]
    assert function["Events"]["DeliverCallbacksSqsEventSource"] == {
        "Type": "SQS",
        "Properties": {
            # The stack's own queue, whole: not deep-merged into Chalice's name-based ARN.
            "Queue": {"Fn::GetAtt": ["CallbackQueue", "Arn"]},
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 0,
        },
    }
    queue = found["CallbackQueue"]["Properties"]
    assert found["CallbackQueue"]["Type"] == "AWS::SQS::Queue"
    assert queue["SqsManagedSseEnabled"] is True
    # AWS's advice for an SQS-triggered function: at least six times its timeout, so a batch
    # being retried by the poller is not handed to a second invocation meanwhile.
    assert queue["VisibilityTimeout"] == 6 * function["Timeout"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["CallbackDeadLetters", "Arn"]},
        "maxReceiveCount": 5,
    }
    dead_letters = found["CallbackDeadLetters"]["Properties"]
    assert found["CallbackDeadLetters"]["Type"] == "AWS::SQS::Queue"
    assert dead_letters["SqsManagedSseEnabled"] is True
    assert dead_letters["MessageRetentionPeriod"] == 14 * 86_400
    # Longer than the queue's own (default 4 days): a dead letter keeps its first enqueue time.
    assert dead_letters["MessageRetentionPeriod"] > queue.get("MessageRetentionPeriod", 4 * 86_400)


@pytest.mark.parametrize("stage", STAGES)
def test_a_message_on_the_dead_letter_queue_raises_an_alarm(packaged, stage):
    (alarm,) = of_type(resources(packaged[stage]), "AWS::CloudWatch::Alarm").values()
    props = alarm["Properties"]
    assert (props["Namespace"], props["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert props["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["CallbackDeadLetters", "QueueName"]}}
    ]
    assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)
    assert props["TreatMissingData"] == "notBreaching"  # an idle, empty queue reports nothing
    assert "AlarmActions" not in props  # the operator subscribes what suits them
    assert props["AlarmDescription"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_outputs_name_both_queues(packaged, stage):
    outputs = json.loads(packaged[stage].read_text())["Outputs"]
    assert outputs["CallbackQueueUrl"] == {"Value": {"Ref": "CallbackQueue"}}
    assert outputs["CallbackDeadLetterQueueUrl"] == {"Value": {"Ref": "CallbackDeadLetters"}}


def test_the_stage_picks_its_timer_backend(packaged):
    for stage, backend in (("prod", "stepfunctions"), ("dev", "scheduler")):
        variables = resources(packaged[stage])["FailoverCheck"]["Properties"]["Environment"]["Variables"]
        assert variables["DISPATCH_TIMER_BACKEND"] == backend


def test_make_package_prints_the_template_path(packaged, tmp_path, capsys):
    assert packaging.main(["--stage", "prod", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str((tmp_path / "sam.json").resolve())
    assert json.loads(Path(printed).read_text())["Resources"]["DispatchTable"]
