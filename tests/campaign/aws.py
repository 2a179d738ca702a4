"""`--backend moto`: the service over the real AWS adapters, under moto, with faults on the wire.

The repository, callback store and sweep marks are the DynamoDB adapters; the timer is the Step
Functions one or the Scheduler one (half the dispatches each); the callback queue is the SQS one.
They are built as `chalicelib.bootstrap` builds them, over clients built as it builds them:
`boto3.client(name)` with no config of its own, so botocore's default retry mode, attempt counts
and retry quota apply, as they do on Lambda (the campaign clears `AWS_RETRY_MODE`,
`AWS_MAX_ATTEMPTS` and any config file, which Lambda does not set either).

Faults are injected per attempt, inside botocore's retry loop: moto answers through a
`before-send` handler, and `FaultWire` takes its place on the service's clients. For each API
call it draws, from the dispatch's own generator, a fault and how many attempts it lasts:

- throttling and 500/503 answers, in each service's own words (`ERRORS`), never reaching moto;
- a connection that could not be made (`EndpointConnectionError`), never reaching moto;
- on writes, an ambiguous outcome: moto applies the write, then the caller sees a
  `ReadTimeoutError` or a `ConnectionClosedError`, and botocore's retry meets its own write.

A fault that lasts fewer attempts than botocore makes is absorbed by its retries; one that lasts
them all reaches the adapter. Retry back-offs do not sleep (`no_backoff_sleep`); their total is
counted. What moto committed is read off the wire too (`_committed`): which dispatch saves and
message index items were written, which timers were set or cancelled, which nudges were queued.
The simulation fires those timers and drains on its own clock, with the same faults as the
memory mode (lost, late, twice...).

moto does not honour TransactWriteItems' `ClientRequestToken`, which DynamoDB does for ten
minutes (a retry of a committed transaction succeeds without writing again); `FaultWire` does it
in moto's place, since botocore sends one token for every attempt of a call.

moto's slowest paths are made cheaper by `scripts/moto_shims.py` (the local stack's: same
answers, less work), installed for the campaign only and removed after it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import types
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from chalicelib.adapters.dynamodb_callbacks import DynamoCallbackStore
from chalicelib.adapters.dynamodb_dispatches import DynamoDispatchRepository
from chalicelib.adapters.dynamodb_sweep_marks import DynamoSweepMarks
from chalicelib.adapters.dynamodb_table import create_table
from chalicelib.adapters.scheduler_timer import SchedulerTimer
from chalicelib.adapters.sqs_callback_queue import SqsCallbackQueue
from chalicelib.adapters.stepfunctions_timer import StepFunctionsTimer
from chalicelib.domain.callbacks import DeliveryState
from tests.campaign.faults import SimulatedCrash
from tests.campaign.records import S

if TYPE_CHECKING:
    from tests.campaign.world import World

REGION = "eu-west-1"
ACCOUNT = "123456789012"
TABLE = "campaign"
CHECK_FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:failover_check"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/campaign"
SCHEDULE_GROUP = "campaign-checks"
QUEUE = "campaign-callbacks"
#: A stand-in for the FailoverTimer machine: moto records executions, it does not run them.
MACHINE = {"StartAt": "Check", "States": {"Check": {"Type": "Pass", "End": True}}}
#: How long DynamoDB honours a TransactWriteItems ClientRequestToken.
TOKEN_SECONDS = 600

#: Every write the adapters can make (the ones the campaign's inputs make are a subset).
WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "TransactWriteItems",
        "BatchWriteItem",
        "StartExecution",
        "StopExecution",
        "CreateSchedule",
        "DeleteSchedule",
        "SendMessage",
        "SendMessageBatch",
        "DeleteMessage",
        "DeleteMessageBatch",
    }
)

#: service -> fault -> (HTTP status, error code): what each service answers, in its own words.
ERRORS = {
    "dynamodb": {
        "throttle": (400, "ProvisionedThroughputExceededException"),
        "server_error": (500, "InternalServerError"),
    },
    "sfn": {"throttle": (400, "ThrottlingException"), "server_error": (503, "ServiceUnavailable")},
    "scheduler": {
        "throttle": (429, "ThrottlingException"),
        "server_error": (500, "InternalServerException"),
    },
    "sqs": {"throttle": (400, "RequestThrottled"), "server_error": (503, "ServiceUnavailable")},
}
#: The JSON protocols' error type prefixes (rest-json Scheduler names it in a header instead).
_TYPE_PREFIX = {"dynamodb": "com.amazonaws.dynamodb.v20120810#", "sfn": "", "sqs": "com.amazonaws.sqs#"}
_JSON_CONTENT = {"dynamodb": "application/x-amz-json-1.0", "sfn": "application/x-amz-json-1.0"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_PMID = re.compile(r"sim-[0-9a-f-]{36}-\d+")
_ATTEMPT = re.compile(r"attempt=(\d+)(?:; max=(\d+))?")
#: A fault lasts this many attempts of its call (weights); 99 means every attempt botocore makes.
BURSTS = ((1, 50), (2, 20), (99, 30))


@contextmanager
def moto_backend() -> Iterator[types.SimpleNamespace]:
    """moto for one campaign: AWS settings as on Lambda, the shims in, back-offs not slept.

    Yields the counters the wire keeps across the campaign (`backoff_seconds`)."""
    from moto import mock_aws

    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    stats = types.SimpleNamespace(backoff_seconds=0.0)

    def sleep(seconds: float) -> None:
        stats.backoff_seconds += seconds

    with ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, env))
        for name in ("AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
            os.environ.pop(name, None)
        stack.enter_context(_shims())
        stack.enter_context(mock.patch("botocore.endpoint.time", types.SimpleNamespace(sleep=sleep)))
        stack.enter_context(mock_aws())
        yield stats


def build(world: World) -> None:
    """Create the resources and set the world's repository, store, marks, timer and queue."""
    import boto3
    from moto.core.models import botocore_stubber

    plain = boto3.client("dynamodb")
    create_table(plain, TABLE)
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(name="FailoverTimer", definition=json.dumps(MACHINE), roleArn=ROLE_ARN)
    scheduler = boto3.client("scheduler")
    scheduler.create_schedule_group(Name=SCHEDULE_GROUP)
    plain_sqs = boto3.client("sqs")
    queue_url = plain_sqs.create_queue(QueueName=QUEUE)["QueueUrl"]

    def empty_queue() -> None:
        # moto allows one purge a (wall clock) minute, as AWS does: soon enough.
        with contextlib.suppress(plain_sqs.exceptions.PurgeQueueInProgress):
            plain_sqs.purge_queue(QueueUrl=queue_url)

    world.empty_queue = empty_queue

    wire = FaultWire(world, botocore_stubber)
    clients = {}
    for name in ("dynamodb", "stepfunctions", "scheduler", "sqs"):
        client = boto3.client(name)
        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register("before-send", wire)
        clients[name] = client
    world.wire = wire
    world.retries = {name: dict(c.meta.config.retries or {}) for name, c in clients.items()}
    dynamodb = clients["dynamodb"]
    # As bootstrap.build_services builds them (settings' retention, table name).
    world.base_repo = DynamoDispatchRepository(plain, TABLE)
    world.service_repo = DynamoDispatchRepository(dynamodb, TABLE)
    world.store = DynamoCallbackStore(dynamodb, TABLE)
    world.sweep_marks = DynamoSweepMarks(dynamodb, TABLE)
    world.queue = SqsCallbackQueue(clients["sqs"], queue_url, world.clock.now)
    world.timer = TimerByDispatch(
        world,
        {
            "stepfunctions": StepFunctionsTimer(clients["stepfunctions"], machine["stateMachineArn"]),
            # bootstrap gives it the system clock; here the world's is the system's.
            "scheduler": SchedulerTimer(
                clients["scheduler"], SCHEDULE_GROUP, CHECK_FUNCTION_ARN, ROLE_ARN, world.clock.now
            ),
        },
    )
    world.plain_dynamodb = plain


def callbacks_pending(world: World) -> bool:
    """Any callback record still pending, read from the table (not through the faulty wire)."""
    paginator = world.plain_dynamodb.get_paginator("scan")
    pages = paginator.paginate(
        TableName=TABLE,
        FilterExpression="begins_with(sk, :seq) AND #s = :pending",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":seq": {"S": "SEQ#"}, ":pending": {"S": DeliveryState.PENDING.value}},
        Select="COUNT",
    )
    return any(page["Count"] for page in pages)


class TimerByDispatch:
    """Each dispatch's own AWS timer backend, after the simulated death in `schedule` the memory
    mode has. Which checks really got set or cancelled is read off the wire, not from here."""

    def __init__(self, world: World, timers: dict[str, Any]) -> None:
        self._world = world
        self._timers = timers

    def schedule(self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False) -> None:
        world = self._world
        rec = world.record_of(dispatch_uuid)
        if rec.rng.random() < world.rates.crash_in_schedule:
            world.note(rec, "crash_in_schedule", f"step {step_index}")
            raise SimulatedCrash("crash_in_schedule")
        if backstop:
            world.count("backstops left to the sweeper")
        self._timers[rec.timer_backend].schedule(dispatch_uuid, step_index, at, backstop=backstop)

    def cancel(self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False) -> None:
        rec = self._world.record_of(dispatch_uuid)
        self._timers[rec.timer_backend].cancel(dispatch_uuid, step_index, at, backstop=backstop)


class FaultWire:
    """moto's `before-send` handler on the service's clients, with faults, and the record of
    what moto committed."""

    def __init__(self, world: World, stubber: Any) -> None:
        self._world = world
        self._moto = stubber
        #: invocation id (one per API call, the same for its retries) -> (fault, attempts it lasts)
        self._plans: dict[str, tuple[str | None, int]] = {}
        #: TransactWriteItems ClientRequestToken -> when it committed (µs)
        self._tokens: dict[str, int] = {}
        #: Provider message ids a committed dispatch item records as its step's accepted send.
        self.recorded: set[str] = set()
        #: Provider message ids a webhook for the message itself recorded first (its status
        #: proved a send whose own save failed): the send's acceptance was never saved.
        self.proved: set[str] = set()
        #: Every attempt, by operation.
        self.calls: dict[str, int] = {}

    def __call__(self, request: Any, event_name: str, **_: Any) -> Any:
        _, service, operation = event_name.split(".")[:3]
        self.calls[operation] = self.calls.get(operation, 0) + 1
        body = _text(request.body)
        attempt, most = _attempts(request.headers)
        invocation = str(request.headers.get("amz-sdk-invocation-id", ""))
        if attempt == 1:
            self._plans[invocation] = self._draw(service, operation, body, request.url, most)
        fault, lasts = self._plans.get(invocation, (None, 0))
        if attempt >= most or attempt >= lasts:
            self._plans.pop(invocation, None)
        if fault is not None and attempt <= lasts:
            if fault in ("throttle", "server_error"):
                return _error(service, request.url, *ERRORS[service][fault])
            if fault == "connect_error":
                raise _connect_error(request.url)
        token = _transaction_token(operation, body)
        committed = self._tokens.get(token) if token is not None else None
        if committed is not None and self._world.now_us - committed <= TOKEN_SECONDS * S:
            response = _ok(service, request.url)  # DynamoDB's idempotent answer
            return self._after(fault, attempt, lasts, request.url, response)
        response = self._moto(event_name=event_name, request=request)
        if response is not None and response.status_code < 300 and operation in WRITES:
            if token is not None:
                self._tokens[token] = self._world.now_us
            self._committed(service, operation, body, request)
        return self._after(fault, attempt, lasts, request.url, response)

    def _after(self, fault: str | None, attempt: int, lasts: int, url: str, response: Any) -> Any:
        if fault in ("timeout", "connection_closed") and attempt <= lasts:
            raise ReadTimeoutError(endpoint_url=url) if fault == "timeout" else ConnectionClosedError(endpoint_url=url)
        return response

    def _draw(self, service: str, operation: str, body: str, url: str, most: int) -> tuple[str | None, int]:
        world, rates = self._world, self._world.rates
        rec = self._owner(body + " " + url)
        rng = rec.rng if rec is not None else world.wire_rng
        write = operation in WRITES
        share = 1.0 if write else rates.aws_read_share
        choices = [
            ("throttle", rates.aws_throttle * share),
            ("server_error", rates.aws_server_error * share),
            ("connect_error", rates.aws_connect_error * share),
        ]
        if write:
            ambiguous = rates.aws_ambiguous / 2
            choices += [("timeout", ambiguous), ("connection_closed", ambiguous)]
        draw = rng.random()
        for fault, rate in choices:
            if draw < rate:
                lasts = _burst(rng)
                reached = lasts >= most
                kind = f"aws_{fault}" + ("" if not reached else "_reached_adapter")
                detail = f"{operation}, {'every' if reached else lasts} of {most} attempts"
                if rec is not None:
                    world.note(rec, kind, detail)
                else:
                    world.faults[kind] += 1
                world.count(f"aws calls faulted: {service} {operation}")
                return fault, lasts
            draw -= rate
        return None, 0

    def _owner(self, text: str) -> Any:
        for found in _UUID.finditer(text):
            rec = self._world.find_record(found.group())
            if rec is not None:
                return rec
        return None

    def _committed(self, service: str, operation: str, body: str, request: Any) -> None:
        """moto applied a write: tell the world what it means for the simulation."""
        world = self._world
        if service == "dynamodb":
            self._dynamodb_commit(operation, json.loads(body))
        elif service == "sfn":
            params = json.loads(body)
            if operation == "StartExecution":
                # The machine's Wait proceeds at once past a timestamp already gone.
                due = world.us(_parse_due(json.loads(params["input"])["due_at"]))
                self._arm(params["name"], max(due, world.now_us))
            elif operation == "StopExecution":
                self._disarm(params["executionArn"].rsplit(":", 1)[1])
        elif service == "scheduler":
            name = request.url.split("?")[0].rstrip("/").rsplit("/", 1)[1]
            if operation == "CreateSchedule":
                fire = datetime.strptime(json.loads(body)["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)")
                self._arm(name, world.us(fire.replace(tzinfo=timezone.utc)))
            elif operation == "DeleteSchedule":
                self._disarm(name)
        elif service == "sqs" and operation == "SendMessage":
            params = json.loads(body)
            dispatch_uuid = json.loads(params["MessageBody"])["dispatch_uuid"]
            world.queued(dispatch_uuid, world.now_us + int(params.get("DelaySeconds", 0)) * S)

    def _arm(self, name: str, fire: int) -> None:
        """A check named `<dispatch>-<step>-<due epoch second>` was set to fire at `fire` (µs)."""
        dispatch_uuid, step, due = self._check(name)
        self._world.arm(dispatch_uuid, step, due, fire)

    def _disarm(self, name: str) -> None:
        """The check named `name` was stopped or deleted."""
        self._world.disarm(*self._check(name))

    def _check(self, name: str) -> tuple[str, int, int]:
        step, epoch = name[37:].split("-")
        return name[:36], int(step), self._world.us(datetime.fromtimestamp(int(epoch), timezone.utc))

    def _dynamodb_commit(self, operation: str, params: dict[str, Any]) -> None:
        world = self._world
        if operation == "TransactWriteItems":
            puts = [w["Put"] for w in params["TransactItems"] if "Put" in w]
        elif operation == "PutItem":
            puts = [params]
        else:
            return  # UpdateItem (callback streams, prunes) and the rest change no dispatch state
        for put in puts:
            item = put["Item"]
            pk = item["pk"]["S"]
            if pk.startswith("MSG#"):
                world.routed.add(item["provider_message_id"]["S"])
            elif pk.startswith("DSP#"):
                found = set(_PMID.findall(json.dumps(item.get("steps", {})))) - self.proved
                applying = world.applying()
                if applying in found and applying not in self.recorded:
                    self.proved.add(applying)
                    found.discard(applying)
                self.recorded |= found
                if "attribute_not_exists" not in put.get("ConditionExpression", ""):
                    world.dispatch_saved(pk.removeprefix("DSP#"))


def _burst(rng: Any) -> int:
    total = sum(weight for _, weight in BURSTS)
    draw = rng.uniform(0, total)
    for lasts, weight in BURSTS:
        draw -= weight
        if draw <= 0:
            return lasts
    return BURSTS[-1][0]


def _attempts(headers: Any) -> tuple[int, int]:
    found = _ATTEMPT.search(str(headers.get("amz-sdk-request", "")))
    if found is None:
        return 1, 1
    return int(found.group(1)), int(found.group(2) or 1)


def _text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return str(body)


def _transaction_token(operation: str, body: str) -> str | None:
    if operation != "TransactWriteItems":
        return None
    token = json.loads(body).get("ClientRequestToken")
    return str(token) if token else None


def _parse_due(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _error(service: str, url: str, status: int, code: str) -> Any:
    """An error answer as the service sends it, for botocore to parse and judge."""
    from botocore.awsrequest import AWSResponse
    from moto.core.botocore_stubber import MockRawResponse

    message = "injected by the fault campaign"
    headers = {"x-amzn-RequestId": "campaign"}
    if service == "scheduler":
        headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": code})
        body = {"Message": message}
    else:
        headers["Content-Type"] = _JSON_CONTENT.get(service, "application/x-amz-json-1.0")
        body = {"__type": _TYPE_PREFIX[service] + code, "message": message}
        if service == "sqs":
            headers["x-amzn-query-error"] = f"{code};{'Sender' if status < 500 else 'Receiver'}"
    return AWSResponse(url, status, headers, MockRawResponse(json.dumps(body)))


def _ok(service: str, url: str) -> Any:
    from botocore.awsrequest import AWSResponse
    from moto.core.botocore_stubber import MockRawResponse

    headers = {"x-amzn-RequestId": "campaign", "Content-Type": _JSON_CONTENT.get(service, "application/json")}
    return AWSResponse(url, 200, headers, MockRawResponse("{}"))


def _connect_error(url: str) -> Exception:
    return EndpointConnectionError(endpoint_url=url)


@contextmanager
def _shims() -> Iterator[None]:
    """The local stack's moto shims for the campaign's duration, then moto as it was."""
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.sqs.models import Queue, SQSBackend

    path = Path(__file__).resolve().parents[2] / "scripts" / "moto_shims.py"
    spec = importlib.util.spec_from_file_location("campaign_moto_shims", path)
    assert spec is not None and spec.loader is not None
    shims = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shims)
    wrapped = [
        (DynamoDBBackend, "transact_write_items"),
        (Table, "query"),
        (SQSBackend, "is_message_valid_based_on_retention_period"),
        (BaseJSONSerializer, "_serialize_type_structure"),
    ]
    before = {(owner, name): owner.__dict__[name] for owner, name in wrapped}
    counts = {name: Queue.__dict__[name] for name in ("messages", "approximate_number_of_messages_delayed",
                                                       "approximate_number_of_messages_not_visible")}
    shims.install_item_backups()
    shims.install_partition_queries()
    shims.install_direct_retention()
    shims.install_plain_attribute_values()
    shims.install_queue_counts()
    try:
        yield
    finally:
        for (owner, name), value in before.items():
            setattr(owner, name, value)
        for name, value in counts.items():
            setattr(Queue, name, value)
