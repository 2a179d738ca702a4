"""Whole dispatches on each AWS stage's timer backend, under moto, with every AWS call the
Lambdas make recorded: the calls must be exactly what the stage's IAM policy grants (nothing
missing, which would fail in AWS with AccessDenied; nothing granted that is never used)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb_applications import DynamoApplicationRepository
from chalicelib.adapters.secrets import SecretsManagerStore
from chalicelib.adapters.timer_checks import check_input
from chalicelib.config import load_settings
from chalicelib.domain.model import MessageStatus, StatusEvent
from chalicelib.service.applications import create_application
from tests.e2e.conftest import CapturingSession, Stack
from tests.e2e.test_api import MESSENGER_TO_SMS, create, view, with_expiry
from tests.fakes import FakeClock
from tests.infra.test_policies import GRANTS

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ACCOUNT = "123456789012"
#: CloudWatch Logs is written by the Lambda runtime, not by our code.
RUNTIME_ONLY = {"logs:CreateLogStream", "logs:PutLogEvents"}
#: Permissions IAM checks inside a call rather than as a call of their own.
IMPLIED = {"scheduler:CreateSchedule": {"iam:PassRole"}}


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


@pytest.fixture(params=["prod", "dev"])
def aws_stack(request, table_name):
    """The app as a stage runs it on AWS, plus the set of IAM actions its calls needed."""
    from app import app

    stage = request.param
    setup = boto3.Session(region_name=REGION)  # the test's own calls, not recorded
    environ = {"DISPATCH_TABLE": table_name, "DISPATCH_SECRET_PREFIX": f"dispatch-{stage}"}
    environ.update(_backend_environment(stage, setup))
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
        yield stage, Stack(client, services, None, session, clock, demo, other), called  # type: ignore[arg-type]
    bootstrap.override(None)
    boto3.DEFAULT_SESSION = None


def test_a_stage_calls_exactly_what_its_policy_grants(aws_stack):
    stage, stack, called = aws_stack

    # 1. Read in time: created, the deadline armed, then cancelled when the condition is met.
    completed = create(stack)
    messenger = view(stack, completed)["messages"][0]
    stack.services.dispatches.apply_status(
        "sandbox", messenger["message_uuid"], StatusEvent(MessageStatus.READ)
    )
    assert view(stack, completed)["status"] == "completed"

    # 2. Nothing in time: the timer's check fails over to SMS.
    failed_over = create(stack, with_expiry(MESSENGER_TO_SMS, 15))
    deadline = datetime.fromisoformat(view(stack, failed_over)["messages"][0]["deadline"])
    stack.clock.current = deadline + timedelta(seconds=1)
    event = check_input(failed_over, 0, deadline)
    assert stack.client.lambda_.invoke("failover_check", event).payload["ok"] is True
    assert [m["phase"] for m in view(stack, failed_over)["messages"]] == ["failed", "waiting"]

    # 3. The sweeper's minute.
    tick = stack.client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    assert stack.client.lambda_.invoke("sweep_overdue", tick).payload["failed"] == 0

    needed = called | {implied for call in called for implied in IMPLIED.get(call, ())}
    assert needed == GRANTS[stage] - RUNTIME_ONLY
