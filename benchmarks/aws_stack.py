"""The whole application as an AWS stage runs it, in this process, under moto, for counting calls.

What is real: the Chalice app (through `chalice.test.Client`), every service and adapter as
`chalicelib.bootstrap` wires them, the stage's timer backend (Step Functions with the state
machine of `infra/dispatch.json`, or EventBridge Scheduler), callbacks queued on SQS and drained
by the `deliver_callbacks` function, provider credentials and signature secrets in Secrets
Manager, and a real channel provider module (Vonage, as both AWS stages route every channel) or
the sandbox. What is not: the network. Vonage's Messages API and the applications' callback
receivers are a stand-in HTTP session that accepts everything, and the clock is set by hand.

Every AWS call the functions make goes through one boto3 session whose calls a `CallRecorder`
counts; the stack's own set-up and inspection use another session, never counted.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import jwt

from benchmarks.aws_counts import CallRecorder, OperationCalls
from benchmarks.bodies import TWO_STEPS
from chalicelib.service.message_hints import reference

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
TABLE = "dispatch-bench"
PREFIX = "dispatch-bench"
VONAGE_URL = "https://api.nexmo.com/v1/messages"
STATUS_URL = "https://app.example/dispatch/status"
VONAGE_SIGNATURE_SECRET = "bench-vonage-signature-secret-0123456789"
#: The Lambda functions of app.py, by the name cost.py prices them under.
API, CHECK, DELIVER, SWEEP = "api_handler", "failover_check", "deliver_callbacks", "sweep_overdue"


@dataclass
class _Response:
    status_code: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return json.dumps(self.body) if self.body is not None else ""

    @property
    def content(self) -> bytes:
        return self.text.encode()

    def json(self) -> Any:
        return self.body


@dataclass
class StandInHttp:
    """requests.Session for the providers and the callback transport: Vonage accepts every
    message (202 with a fresh message_uuid), every callback receiver answers 204."""

    #: The client_ref we sent (our dispatch and step) -> the message_uuid Vonage answered with.
    vonage_ids: dict[str, str] = field(default_factory=dict)
    sends: int = 0
    callbacks: int = 0

    def post(self, url: str, **kwargs: Any) -> _Response:
        if url.startswith(VONAGE_URL):
            self.sends += 1
            provider_id = str(uuid.uuid4())
            self.vonage_ids[kwargs["json"]["client_ref"]] = provider_id
            return _Response(202, {"message_uuid": provider_id})
        self.callbacks += 1
        return _Response(204)


class LogMeter:
    """Counts the bytes the service logs: it stands in for the stream of the JSON log handler
    that `chalicelib.logs` puts on the root logger (stdout, which Lambda ships to CloudWatch)."""

    def __init__(self) -> None:
        self.bytes = 0
        #: Everything written, kept to read the metrics the sweep emits.
        self.text: list[str] = []

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        self.text.append(text)
        return len(text)

    def flush(self) -> None:
        pass


@dataclass(frozen=True)
class Invocation:
    """One Lambda invocation of the stack: which function, and what it did."""

    function: str
    calls: OperationCalls
    provider_sends: int
    callback_posts: int


@dataclass
class BenchStack:
    client: Any
    services: Any
    recorder: CallRecorder
    http: StandInHttp
    clock: Any
    logs: LogMeter
    credentials: Any
    provider: str
    timer: str
    _setup: Any
    _queue_url: str
    invocations: list[Invocation] = field(default_factory=list)

    # --- what the AWS side does, each one Lambda invocation -------------------------------------

    @contextmanager
    def invocation(self, function: str, name: str | None = None) -> Iterator[OperationCalls]:
        sends, posts = self.http.sends, self.http.callbacks
        # Printed lines (the sweep's metrics, in Embedded Metric Format) are logs too.
        with self.recorder.measure(name or function, self.logs) as calls, redirect_stdout(self.logs):
            yield calls
        self.invocations.append(
            Invocation(function, calls, self.http.sends - sends, self.http.callbacks - posts)
        )

    def create(self, body: dict[str, Any] = TWO_STEPS, name: str = "create", cold: bool = False) -> str:
        """POST /v0.1/dispatch. `cold`: in a fresh process (a Lambda cold start), which builds
        the services, every cache empty, on first use: that build is counted too."""
        with self.invocation(API, name):
            if cold:
                self.rebuild()
            response = self.client.http.post("/v0.1/dispatch", headers=self.basic(), body=json.dumps(body))
        assert response.status_code == 202, response.body
        return str(response.json_body["dispatch_uuid"])

    def get(self, dispatch_uuid: str, name: str = "get") -> dict[str, Any]:
        with self.invocation(API, name):
            response = self.client.http.get(f"/v0.1/dispatch/{dispatch_uuid}", headers=self.basic())
        assert response.status_code == 200, response.body
        return dict(response.json_body)

    def status(self, dispatch_uuid: str, step_index: int, status: str, name: str = "status") -> None:
        """The message's provider reports `status` on its webhook, as it would in AWS."""
        step = self.dispatch(dispatch_uuid).steps[step_index]
        message_uuid = step.message_uuid
        if self.provider == "sandbox":
            path, headers = f"/sandbox/messages/{message_uuid}/status", self.basic()
            body = json.dumps({"status": status}).encode()
        else:
            payload = self._vonage_status(reference(dispatch_uuid, step_index), step.channel.value, status)
            body = json.dumps(payload, separators=(",", ":")).encode()
            path, headers = "/webhooks/vonage/status", self._vonage_signed(body)
        with self.invocation(API, name):
            response = self.client.http.post(path, headers=headers, body=body)
        assert response.status_code in (200, 202, 204), response.body

    def fire_deadline(self, dispatch_uuid: str, step_index: int, name: str = "deadline") -> None:
        """The timer's check of the step's deadline runs, a second after it is due."""
        from chalicelib.adapters.timer_checks import check_input

        deadline = self.dispatch(dispatch_uuid).steps[step_index].deadline
        assert deadline is not None, "the step has no deadline"
        self.clock.current = max(self.clock.current, deadline + timedelta(seconds=1))
        with self.invocation(CHECK, name):
            result = self.client.lambda_.invoke(CHECK, check_input(dispatch_uuid, step_index, deadline))
        assert result.payload["ok"] is True, result.payload

    def deliver_callbacks(self, name: str = "deliver") -> int:
        """Lambda's SQS event source: one invocation per queued message (a quiet queue's batch),
        received and deleted with an uncounted client. Returns the messages delivered."""
        sqs = self._setup.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])
        arn, delivered = attributes["Attributes"]["QueueArn"], 0
        while messages := sqs.receive_message(QueueUrl=self._queue_url).get("Messages", []):
            event = {"Records": [_sqs_record(m, arn) for m in messages]}
            with self.invocation(DELIVER, name):
                result = self.client.lambda_.invoke(DELIVER, event)
            assert result.payload["failed"] == result.payload["invalid"] == 0, result.payload
            for message in messages:
                sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
            delivered += len(messages)
        return delivered

    def sweep(self, name: str = "sweep") -> dict[str, Any]:
        tick = self.client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        with self.invocation(SWEEP, name):
            result = self.client.lambda_.invoke(SWEEP, tick)
        return dict(result.payload)

    # --- inspection, never counted -----------------------------------------------------------------

    def dispatch(self, dispatch_uuid: str) -> Any:
        from chalicelib.adapters.dynamodb_dispatches import DynamoDispatchRepository

        found = DynamoDispatchRepository(self._setup.client("dynamodb"), TABLE).get(dispatch_uuid)
        assert found is not None, dispatch_uuid
        return found

    def queue_depth(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        sqs = self._setup.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=names)
        return sum(int(v) for v in attributes["Attributes"].values())

    def basic(self) -> dict[str, str]:
        pair = f"{self.credentials.api_key}:{self.credentials.api_secret}".encode()
        token = base64.b64encode(pair).decode()
        return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def rebuild(self) -> None:
        from chalicelib import bootstrap

        settings = self.services.settings
        self.services = bootstrap.build_services(settings, http_session=self.http, clock=self.clock)
        bootstrap.override(self.services)

    def _vonage_status(self, client_ref: str, channel: str, status: str) -> dict[str, Any]:
        return {
            "message_uuid": self.http.vonage_ids[client_ref],
            "to": "447911123456",
            "from": "447700900001",
            "timestamp": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "status": status,
            "client_ref": client_ref,
            "channel": channel,
            "usage": {"currency": "EUR", "price": "0.0147"},
        }

    def _vonage_signed(self, body: bytes) -> dict[str, str]:
        """As Vonage signs a webhook: HS256 over the body's SHA-256 with the signature secret."""
        claims = {
            "iat": int(self.clock.now().timestamp()),
            "jti": str(uuid.uuid4()),
            "iss": "Vonage",
            "payload_hash": hashlib.sha256(body).hexdigest(),
            "application_id": "bench-vonage-application",
        }
        token = jwt.encode(claims, VONAGE_SIGNATURE_SECRET, algorithm="HS256")
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@contextmanager
def aws_stack(timer: str = "stepfunctions", provider: str = "vonage") -> Iterator[BenchStack]:
    """The app as the `prod` (stepfunctions) or `dev` (scheduler) stage runs it, with every
    channel routed to `provider` (`vonage`, or `sandbox` with the sandbox routes on)."""
    import boto3
    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib import bootstrap
    from chalicelib.adapters.dynamodb_applications import DynamoApplicationRepository
    from chalicelib.adapters.secrets import SecretsManagerStore
    from chalicelib.config import load_settings
    from chalicelib.logs import configure_logging
    from chalicelib.service.applications import create_application

    configure_logging()
    meter, handler = LogMeter(), _json_log_handler()
    previous = handler.setStream(meter)
    try:
        with mock.patch.dict(os.environ, FAKE_AWS), mock_aws():
            for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
                os.environ.pop(name, None)
            setup = boto3.Session(region_name=REGION)  # the stack's own calls, never counted
            environ = _provision(setup, timer, provider)
            settings = load_settings(environ)
            operator = (
                DynamoApplicationRepository(setup.client("dynamodb"), TABLE),
                SecretsManagerStore(setup.client("secretsmanager")),
            )
            clock = _SetClock(datetime.now(timezone.utc))
            credentials = create_application(*operator, "bench", STATUS_URL, None, clock.now(), PREFIX)

            boto3.setup_default_session(region_name=REGION)
            assert boto3.DEFAULT_SESSION is not None
            recorder = CallRecorder(boto3.DEFAULT_SESSION, setup.client("dynamodb"), TABLE)
            http = StandInHttp()
            services = bootstrap.build_services(settings, http_session=http, clock=clock)
            bootstrap.override(services)
            with Client(app, stage_name="prod" if timer == "stepfunctions" else "dev") as client:
                yield BenchStack(
                    client, services, recorder, http, clock, meter, credentials, provider, timer,
                    setup, environ["DISPATCH_CALLBACK_QUEUE_URL"],
                )
    finally:
        handler.setStream(previous)
        bootstrap.override(None)
        boto3.DEFAULT_SESSION = None


#: Credentials moto accepts; the real ones, if any, are never used.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
CHANNELS = ("sms", "mms", "whatsapp", "messenger", "viber_service_msg")


def _provision(setup: Any, timer: str, provider: str) -> dict[str, str]:
    """Create what the stack's template would (table, queue, timer, provider secret); returns
    the functions' environment."""
    from chalicelib.adapters.dynamodb_table import create_table
    from chalicelib.service.applications import generate_key_pair

    create_table(setup.client("dynamodb"), TABLE)
    environ = {
        "DISPATCH_TABLE": TABLE,
        "DISPATCH_SECRET_PREFIX": PREFIX,
        "DISPATCH_CHANNEL_PROVIDERS": json.dumps({channel: provider for channel in CHANNELS}),
        "DISPATCH_CALLBACK_DELIVERY": "sqs",
        "DISPATCH_CALLBACK_QUEUE_URL": _callback_queue(setup),
        **_timer_environment(timer, setup),
    }
    if provider == "sandbox":
        environ["DISPATCH_SANDBOX_ROUTES"] = "enabled"
    else:
        private_key, _ = generate_key_pair()
        vonage = {
            "application_id": "bench-vonage-application",
            "private_key": private_key,
            "signature_secret": VONAGE_SIGNATURE_SECRET,
        }
        setup.client("secretsmanager").create_secret(
            Name=f"{PREFIX}/providers/vonage", SecretString=json.dumps(vonage)
        )
    return environ


def _sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    """A received message as Lambda's event source hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }


class _SetClock:
    """The service's clock, moved by hand (a deadline is minutes away)."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current


def _json_log_handler() -> Any:
    import logging

    from chalicelib.logs import _HANDLER_NAME

    return next(h for h in logging.getLogger().handlers if h.get_name() == _HANDLER_NAME)


def _timer_environment(timer: str, setup: Any) -> dict[str, str]:
    """The stage's timer, as the merge template declares it."""
    if timer == "stepfunctions":
        template = json.loads((ROOT / "infra" / "dispatch.json").read_text())
        definition = json.dumps(template["Resources"]["FailoverTimer"]["Properties"]["Definition"])
        check = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PREFIX}-failover-check"
        role = setup.client("iam").create_role(RoleName="timer", AssumeRolePolicyDocument="{}")
        machine = setup.client("stepfunctions").create_state_machine(
            name=f"{PREFIX}-FailoverTimer",
            definition=definition.replace("${FailoverCheckArn}", check),
            roleArn=role["Role"]["Arn"],
        )
        return {
            "DISPATCH_TIMER_BACKEND": "stepfunctions",
            "DISPATCH_STATE_MACHINE_ARN": machine["stateMachineArn"],
        }
    if timer == "scheduler":
        setup.client("scheduler").create_schedule_group(Name=f"{PREFIX}-checks")
        check = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PREFIX}-failover-check"
        return {
            "DISPATCH_TIMER_BACKEND": "scheduler",
            "DISPATCH_SCHEDULE_GROUP": f"{PREFIX}-checks",
            "DISPATCH_SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-SchedulerInvokeRole",
            "DISPATCH_CHECK_FUNCTION_ARN": check,
        }
    raise ValueError(f"no AWS timer backend named {timer!r}")


def _callback_queue(setup: Any) -> str:
    declared = json.loads((ROOT / "infra" / "dispatch.json").read_text())["Resources"]["CallbackQueue"]
    timeout = str(declared["Properties"]["VisibilityTimeout"])
    queue = setup.client("sqs").create_queue(
        QueueName=f"{PREFIX}-callbacks", Attributes={"VisibilityTimeout": timeout}
    )
    return str(queue["QueueUrl"])
