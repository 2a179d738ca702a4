"""Whole dispatches on each AWS stage's timer backend, under moto, with every AWS call the
Lambdas make recorded: the calls must be exactly what the stage's IAM policy grants (nothing
missing, which would fail in AWS with AccessDenied; nothing granted that is never used).

Callbacks go as on AWS: the functions queue them on the stack's SQS queue, and the
`deliver_callbacks` function is invoked with the event Lambda's event source mapping builds from
what it receives there."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb_applications import DynamoApplicationRepository
from chalicelib.adapters.dynamodb_callbacks import DynamoCallbackStore
from chalicelib.adapters.dynamodb_dispatches import DynamoDispatchRepository
from chalicelib.adapters.secrets import SecretsManagerStore
from chalicelib.adapters.timer_checks import check_input
from chalicelib.config import load_settings
from chalicelib.domain.callbacks import DeliveryState
from chalicelib.domain.model import MessageStatus, StatusEvent
from chalicelib.service.applications import create_application
from scripts.sqs_event_source import poll_once, queue_arn
from tests.e2e.conftest import CapturingSession, Stack
from tests.e2e.test_api import MESSENGER_TO_SMS, create, view, with_expiry
from tests.fakes import FakeClock
from tests.infra.test_policies import GRANTS

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ACCOUNT = "123456789012"
#: CloudWatch Logs is written by the Lambda runtime, not by our code.
RUNTIME_ONLY = {"logs:CreateLogStream", "logs:PutLogEvents"}
#: Granted to the function's role but called by Lambda's SQS event source mapping on its behalf:
#: it reads the queue's attributes when the mapping is created, polls, and deletes a batch once
#: the function returned. Here the test plays the mapping, with its own (unrecorded) client.
EVENT_SOURCE_ONLY = {"sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage"}
#: Permissions IAM checks inside a call rather than as a call of their own.
IMPLIED = {"scheduler:CreateSchedule": {"iam:PassRole"}}
#: Calls that are no IAM action: IAM checks the actions of their parts instead (a transaction's
#: Puts need dynamodb:PutItem; the service's transactions hold only Puts).
PARTS_ONLY = {"dynamodb:TransactWriteItems": {"dynamodb:PutItem"}}


def _state_machine(setup: boto3.Session) -> str:
    template = json.loads((ROOT / "infra" / "dispatch.json").read_text())
    definition = json.dumps(template["Resources"]["FailoverTimer"]["Properties"]["Definition"])
    check = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:dispatch-prod-failover-check"
    role = setup.client("iam").create_role(RoleName="timer", AssumeRolePolicyDocument="{}")
    return setup.client("stepfunctions").create_state_machine(
        name="dispatch-prod-FailoverTimer",
        definition=definition.replace("${FailoverCheckArn}", check),
        roleArn=role["Role"]["Arn"],
    )["stateMachineArn"]


def _backend_environment(stage: str, setup: boto3.Session) -> dict[str, str]:
    if stage == "prod":
        return {"DISPATCH_TIMER_BACKEND": "stepfunctions", "DISPATCH_STATE_MACHINE_ARN": _state_machine(setup)}
    setup.client("scheduler").create_schedule_group(Name="dispatch-dev-checks")
    return {
        "DISPATCH_TIMER_BACKEND": "scheduler",
        "DISPATCH_SCHEDULE_GROUP": "dispatch-dev-checks",
        "DISPATCH_SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/dispatch-dev-SchedulerInvokeRole",
        "DISPATCH_CHECK_FUNCTION_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:dispatch-dev-failover-check",
    }


def _callback_queue(stage: str, setup: boto3.Session) -> str:
    """The stack's callback queue and its dead letters, with the merge template's settings."""
    resources = json.loads((ROOT / "infra" / "dispatch.json").read_text())["Resources"]
    declared = resources["CallbackQueue"]["Properties"]
    sqs = setup.client("sqs")
    dead_letters = sqs.create_queue(QueueName=f"dispatch-{stage}-callbacks-dlq")["QueueUrl"]
    redrive = {
        "deadLetterTargetArn": queue_arn(sqs, dead_letters),
        "maxReceiveCount": declared["RedrivePolicy"]["maxReceiveCount"],
    }
    attributes = {"VisibilityTimeout": str(declared["VisibilityTimeout"]), "RedrivePolicy": json.dumps(redrive)}
    return sqs.create_queue(QueueName=f"dispatch-{stage}-callbacks", Attributes=attributes)["QueueUrl"]


@dataclass
class CallbackEventSource:
    """The SQS event source mapping of `deliver_callbacks`, polling with the test's own client."""

    client: Client
    sqs: Any
    url: str
    #: What each invocation of deliver_callbacks returned.
    results: list[dict[str, Any]] = field(default_factory=list)

    def deliver(self) -> int:
        """Receive, invoke, delete, until the queue is empty; returns how many messages came."""
        arn = queue_arn(self.sqs, self.url)

        def invoke(event: dict[str, Any]) -> Any:
            # Through the Chalice test client: Chalice wraps the event in its SQSEvent, as on AWS.
            self.results.append(self.client.lambda_.invoke("deliver_callbacks", event).payload)

        received = 0
        while batch := poll_once(self.sqs, self.url, arn, invoke):
            received += batch
        return received

    def depth(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        return sum(int(value) for value in attributes.values())


@pytest.fixture(params=["prod", "dev"])
def aws_stack(request, table_name):
    """The app as a stage runs it on AWS, plus the set of IAM actions its calls needed."""
    from app import app

    stage = request.param
    setup = boto3.Session(region_name=REGION)  # the test's own calls, not recorded
    environ = {"DISPATCH_TABLE": table_name, "DISPATCH_SECRET_PREFIX": f"dispatch-{stage}"}
    environ.update(_backend_environment(stage, setup))
    queue_url = _callback_queue(stage, setup)
    environ.update({"DISPATCH_CALLBACK_DELIVERY": "sqs", "DISPATCH_CALLBACK_QUEUE_URL": queue_url})
    settings = load_settings(environ)

    called: set[str] = set()

    def record(model: Any, **_: Any) -> None:
        called.add(f"{model.service_model.signing_name}:{model.name}")

    boto3.setup_default_session(region_name=REGION)
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call", record)
    session, clock = CapturingSession(), FakeClock(datetime.now(timezone.utc))
    # Applications are the operator's job (their own credentials), not the Lambdas'.
    operator = (
        DynamoApplicationRepository(setup.client("dynamodb"), table_name),
        SecretsManagerStore(setup.client("secretsmanager")),
    )
    make = lambda name: create_application(
        *operator, name, "https://app.example/status", None, clock.now(), settings.secret_prefix
    )
    demo, other = make("demo"), make("other")
    services = bootstrap.build_services(settings, http_session=session, clock=clock)
    bootstrap.override(services)
    with Client(app, stage_name=stage) as client:
        stack = Stack(client, services, None, session, clock, demo, other)  # type: ignore[arg-type]
        yield stage, stack, called, CallbackEventSource(client, setup.client("sqs"), queue_url)
    bootstrap.override(None)
    boto3.DEFAULT_SESSION = None


def _posted(stack: Stack, dispatch_uuid: str) -> list[str]:
    """What the application received about the dispatch: each status, or the final report's."""
    bodies = [json.loads(data) for _url, data, _headers in stack.session.posts]
    about = [b for b in bodies if dispatch_uuid in (b.get("dispatch_uuid"), b["_links"].get("workflow", {}).get("dispatch_uuid"))]
    return [("report:" if "template" in b else "") + b["status"] for b in about]


def test_a_stage_calls_exactly_what_its_policy_grants(aws_stack):
    stage, stack, called, event_source = aws_stack
    # The test's own view of the table, with unrecorded clients.
    ddb = boto3.Session(region_name=REGION).client("dynamodb")
    table = stack.services.settings.table_name
    records, dispatches = DynamoCallbackStore(ddb, table), DynamoDispatchRepository(ddb, table)

    # 1. Read in time: created, the deadline armed, then cancelled when the condition is met.
    completed = create(stack)
    assert event_source.deliver() >= 1
    messenger = view(stack, completed)["messages"][0]
    stack.services.dispatches.apply_status(
        "sandbox", messenger["message_uuid"], StatusEvent(MessageStatus.READ)
    )
    assert view(stack, completed)["status"] == "completed"
    assert event_source.deliver() >= 1
    # Every callback posted, recorded as delivered, and pruned from the dispatch's outbox.
    assert _posted(stack, completed) == ["submitted", "read", "report:completed"]
    assert [r.state for r in records.records(completed)] == [DeliveryState.DELIVERED] * 3
    assert dispatches.get(completed).outbox == ()  # type: ignore[union-attr]

    # 2. Nothing in time: the timer's check fails over to SMS.
    failed_over = create(stack, with_expiry(MESSENGER_TO_SMS, 15))
    deadline = datetime.fromisoformat(view(stack, failed_over)["messages"][0]["deadline"])
    stack.clock.current = deadline + timedelta(seconds=1)
    event = check_input(failed_over, 0, deadline)
    assert stack.client.lambda_.invoke("failover_check", event).payload["ok"] is True
    assert [m["phase"] for m in view(stack, failed_over)["messages"]] == ["failed", "waiting"]
    event_source.deliver()
    assert _posted(stack, failed_over) == ["submitted", "submitted"]  # Messenger, then SMS

    # 3. A receiver that answers 410 Gone: the callback is dead at once, and on the dead list.
    stack.session.answers = [410]
    gone = create(stack, headers=stack.basic(stack.other))
    event_source.deliver()
    assert [r.state for r in records.records(gone)] == [DeliveryState.DEAD]
    listed = stack.get("/v0.1/callbacks?state=dead", headers=stack.basic(stack.other))
    assert listed.status_code == 200, listed.body
    assert [c["dispatch_uuid"] for c in listed.json_body["callbacks"]] == [gone]

    # 4. The sweeper's minute: checks, outboxes and callback retries left behind (none here).
    tick = stack.client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    assert stack.client.lambda_.invoke("sweep_overdue", tick).payload["failed"] == 0

    # Every message was handled and deleted: nothing would be redelivered or dead-lettered.
    assert all(r["failed"] == r["invalid"] == 0 for r in event_source.results)
    assert event_source.depth() == 0

    needed = (called - set(PARTS_ONLY)) | {
        implied for call in called for implied in {**IMPLIED, **PARTS_ONLY}.get(call, ())
    }
    assert EVENT_SOURCE_ONLY.issubset(GRANTS[stage])
    assert needed == GRANTS[stage] - RUNTIME_ONLY - EVENT_SOURCE_ONLY
