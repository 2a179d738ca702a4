"""`make package` end to end: Chalice packages each AWS stage with the merge template, and the
result is one SAM template that cfn-lint passes with no findings and that holds every resource
the service needs, wired to the Lambdas by reference."""
from __future__ import annotations

import fcntl
import json
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from cfnlint.api import lint_file
from cfnlint.template.transforms._sam_globals import merge_globals

from chalicelib.api import edges
from chalicelib.api.response_models import Problem
from scripts import package as packaging

STAGES = ("prod", "dev")
FUNCTIONS = {
    "APIHandler": "api",
    "FailoverCheck": "failover-check",
    "SweepOverdue": "sweep",
    "DeliverCallbacks": "deliver-callbacks",
    "ApplyWebhooks": "apply-webhooks",
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
    "DISPATCH_WEBHOOK_QUEUE_URL",
)

#: What API Gateway answers instead of each of its own responses: (status, problem type). None
#: keeps the status API Gateway chose; the `DEFAULT_*` types catch those of every kind not named.
GATEWAY_ANSWERS = {
    "MISSING_AUTHENTICATION_TOKEN": ("404", "not-found"),  # an unknown path, or TRACE
    "INVALID_SIGNATURE": ("404", "not-found"),  # the same, with an Authorization header
    "EXPIRED_TOKEN": ("404", "not-found"),
    "RESOURCE_NOT_FOUND": ("404", "not-found"),
    "UNAUTHORIZED": ("401", "unauthorized"),
    "ACCESS_DENIED": ("403", "forbidden"),
    "INVALID_API_KEY": ("403", "forbidden"),
    "WAF_FILTERED": ("403", "forbidden"),
    "BAD_REQUEST_PARAMETERS": ("400", "malformed-request"),
    "BAD_REQUEST_BODY": ("400", "malformed-request"),
    "REQUEST_TOO_LARGE": ("413", "payload-too-large"),
    "UNSUPPORTED_MEDIA_TYPE": ("415", "content-type-header"),
    "THROTTLED": ("429", "too-many-requests"),
    "QUOTA_EXCEEDED": ("429", "too-many-requests"),
    "DEFAULT_4XX": (None, "invalid-request"),
    "INTEGRATION_FAILURE": ("502", "bad-gateway"),
    "INTEGRATION_TIMEOUT": ("504", "gateway-timeout"),
    "API_CONFIGURATION_ERROR": ("500", "internal-error"),
    "AUTHORIZER_CONFIGURATION_ERROR": ("500", "internal-error"),
    "AUTHORIZER_FAILURE": ("500", "internal-error"),
    "DEFAULT_5XX": (None, "internal-error"),
}
#: What API Gateway substitutes into a gateway response's template, as it would for one request.
GATEWAY_VARIABLES = {"$context.requestId": str(uuid.uuid4())}
ERRORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


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
def test_large_webhook_batches_flow_through_the_stacks_queue_into_apply_webhooks(packaged, stage):
    found = resources(packaged[stage])
    function = found["ApplyWebhooks"]["Properties"]
    assert function["Handler"] == "app.apply_webhooks"
    assert function["Timeout"] == 120  # a chunk of 100 events takes seconds
    assert function["Events"]["ApplyWebhooksSqsEventSource"] == {
        "Type": "SQS",
        "Properties": {
            "Queue": {"Fn::GetAtt": ["WebhookQueue", "Arn"]},
            # One chunk per invocation: a failed one is redelivered alone.
            "BatchSize": 1,
            "MaximumBatchingWindowInSeconds": 0,
        },
    }
    queue = found["WebhookQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True  # chunks hold inbound message text
    assert queue["VisibilityTimeout"] == 6 * function["Timeout"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["WebhookDeadLetters", "Arn"]},
        "maxReceiveCount": 5,
    }
    dead_letters = found["WebhookDeadLetters"]["Properties"]
    assert dead_letters["SqsManagedSseEnabled"] is True
    assert dead_letters["MessageRetentionPeriod"] == 14 * 86_400


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("dead_letters", ["CallbackDeadLetters", "WebhookDeadLetters"])
def test_a_message_on_the_dead_letter_queue_raises_an_alarm(packaged, stage, dead_letters):
    (alarm,) = [
        alarm
        for alarm in of_type(resources(packaged[stage]), "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dead_letters, "QueueName"]}
    ]
    props = alarm["Properties"]
    assert (props["Namespace"], props["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert props["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letters, "QueueName"]}}
    ]
    assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)
    assert props["TreatMissingData"] == "notBreaching"  # an idle, empty queue reports nothing
    assert "AlarmActions" not in props  # the operator subscribes what suits them
    assert props["AlarmDescription"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_outputs_name_every_queue(packaged, stage):
    outputs = json.loads(packaged[stage].read_text())["Outputs"]
    assert outputs["CallbackQueueUrl"] == {"Value": {"Ref": "CallbackQueue"}}
    assert outputs["CallbackDeadLetterQueueUrl"] == {"Value": {"Ref": "CallbackDeadLetters"}}
    assert outputs["WebhookQueueUrl"] == {"Value": {"Ref": "WebhookQueue"}}
    assert outputs["WebhookDeadLetterQueueUrl"] == {"Value": {"Ref": "WebhookDeadLetters"}}


def test_the_stage_picks_its_timer_backend(packaged):
    for stage, backend in (("prod", "stepfunctions"), ("dev", "scheduler")):
        variables = resources(packaged[stage])["FailoverCheck"]["Properties"]["Environment"]["Variables"]
        assert variables["DISPATCH_TIMER_BACKEND"] == backend


def test_make_package_prints_the_template_path(packaged, tmp_path, capsys):
    assert packaging.main(["--stage", "prod", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str((tmp_path / "sam.json").resolve())
    assert json.loads(Path(printed).read_text())["Resources"]["DispatchTable"]


def rest_api(template: Path) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(template.read_text())["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    return definition


def substituted(template: str) -> str:
    """The body API Gateway would send: its variables replaced, any other one left to fail."""
    body = re.sub(r"\$context\.[A-Za-z.]+", lambda m: GATEWAY_VARIABLES.get(m.group(0), m.group(0)), template)
    assert "$" not in body, body
    return body


def documented_types() -> set[str]:
    return set(re.findall(r"`urn:dispatch:problem:([a-z-]+)`", ERRORS_DOC.read_text()))


@pytest.mark.parametrize("stage", STAGES)
def test_every_answer_api_gateway_makes_itself_is_a_problem(packaged, stage):
    responses = rest_api(packaged[stage])["x-amazon-apigateway-gateway-responses"]
    every_type = botocore.session.get_session().get_service_model("apigateway").shape_for("GatewayResponseType").enum
    assert set(responses) == set(every_type) == set(GATEWAY_ANSWERS)
    for response_type, response in responses.items():
        status, slug = GATEWAY_ANSWERS[response_type]
        assert response.get("statusCode") == status, response_type
        headers = response["responseParameters"]
        assert headers["gatewayresponse.header.Content-Type"] == "'application/problem+json'", response_type
        assert all(value.startswith("'") and value.endswith("'") for value in headers.values())
        (template,) = response["responseTemplates"].values()
        body = json.loads(substituted(template))
        Problem.model_validate(body)
        assert set(body) == {"type", "title", "detail", "instance"}, response_type
        assert body["type"] == f"urn:dispatch:problem:{slug}", response_type
        assert body["instance"] == GATEWAY_VARIABLES["$context.requestId"]
        assert slug in documented_types(), f"docs/errors.md has no row for {slug}"
    unauthorized = responses["UNAUTHORIZED"]["responseParameters"]
    assert unauthorized["gatewayresponse.header.WWW-Authenticate"] == """'Basic realm="dispatch", Bearer'"""


@pytest.mark.parametrize("stage", STAGES)
def test_an_unknown_path_is_the_same_404_as_the_local_stacks_and_never_echoes_the_path(packaged, stage):
    responses = rest_api(packaged[stage])["x-amazon-apigateway-gateway-responses"]
    template = responses["MISSING_AUTHENTICATION_TOKEN"]["responseTemplates"]["application/json"]
    assert json.loads(substituted(template))["detail"] == edges.UNKNOWN_PATH_DETAIL
    assert set(re.findall(r"\$[A-Za-z.]+", template)) == {"$context.requestId"}


@pytest.mark.parametrize("stage", STAGES)
def test_every_method_api_gateway_routes_reaches_the_function_on_every_path(packaged, stage):
    """A method a path does not declare never reaches the Lambda: API Gateway would answer it
    itself (MISSING_AUTHENTICATION_TOKEN), without the path's `Allow`. So every path declares all
    seven, and the app answers those it does not serve with its 405 (tests/e2e/test_edges.py)."""
    from app import app

    paths = rest_api(packaged[stage])["paths"]
    assert set(paths) == set(edges.served_routes(app))
    routable = {method.lower() for method in edges.ROUTABLE_METHODS}
    assert {path: set(methods) for path, methods in paths.items()} == {path: routable for path in paths}
