"""Issue 14's hostile-input suite: every case of `hostile_cases.CASES` against every route it
applies to, through the whole app (chalice.test.Client over moto), then a few against the local
stack's real HTTP front (what only a server sees: unknown paths, OPTIONS, TRACE, header sizes,
broken framing).

Every answer must be the case's status with an `application/problem+json` body of its type
(type, title, detail, instance), showing no runtime internals; and the request must leave
everything as it was (not one table item, timer, callback, provider call or staged outage
differs, and the app's AWS clients made no write), with nothing logged at ERROR or above.

One stack serves the whole module: a client-side one (sandbox channels, sandbox routes on, as
`make run`) and, over the same table, one with every real provider configured for the webhook
routes, signed as each provider signs (`tests/webhooks/signature_cases`).
"""
from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb_table import create_table
from chalicelib.config import load_settings
from chalicelib.service.applications import Credentials, create_application
from scripts.local_stack_process import running_local_stack
from tests.conftest import TABLE_NAME
from tests.e2e import hostile_cases as hc
from tests.e2e.conftest import CapturingSession
from tests.e2e.test_api import MESSENGER_TO_SMS
from tests.fakes import FakeClock, RecordingTimer
from tests.webhooks.stack import ScriptedSession

#: Each webhook provider on a channel of its own, so every one is built.
WEBHOOK_ROUTING = {
    "sms": "aws_sms",
    "mms": "vonage",
    "whatsapp": "whatsapp",
    "messenger": "messenger",
    "viber_service_msg": "viber",
}
#: Exception class names, as a traceback or a leaked `str(exc)` would show them.
EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b")


READ_OPERATIONS = ("Get", "Query", "Scan", "BatchGet", "Describe", "List")


@dataclass
class AwsWrites:
    """Every write call the app's own AWS clients completed, as (service, operation). A write
    AWS refused (a conditional put that found the item, as a replayed token's does) changed
    nothing, so it is not kept."""

    made: list[tuple[str, str]] = field(default_factory=list)

    def record(self, event_name: str, http_response: Any = None, **_: Any) -> None:
        service, operation = event_name.split(".")[1:]
        if operation.startswith(READ_OPERATIONS):
            return
        if http_response is not None and http_response.status_code < 300:
            self.made.append((service, operation))


@dataclass
class Hostile:
    client: Client
    clients: bootstrap.Services  #: sandbox channels and routes: the client routes
    webhooks: bootstrap.Services  #: every real provider: the webhook routes
    timers: tuple[RecordingTimer, RecordingTimer]
    client_session: CapturingSession
    webhook_session: ScriptedSession
    clock: FakeClock
    demo: Credentials
    other: Credentials
    aws_calls: AwsWrites
    dynamodb: Any  #: a client of the tests' own, to read the table with
    values: dict[str, str] = field(default_factory=dict)

    def services_for(self, route: hc.Route) -> bootstrap.Services:
        return self.webhooks if route.path == hc.WEBHOOK[0] else self.clients


def _settings(**extra: str) -> Any:
    return load_settings({"DISPATCH_TABLE": TABLE_NAME, **extra})


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    from moto import mock_aws

    from app import app

    with mock_aws():
        create_table(boto3.client("dynamodb", region_name="eu-west-1"), TABLE_NAME)
        clock = FakeClock(datetime.now(timezone.utc))
        timers = (RecordingTimer(), RecordingTimer())
        client_session, webhook_session = CapturingSession(), ScriptedSession()
        credentials = {k: v for case in hc.PROVIDERS.values() for k, v in case.credentials.items()}
        calls = AwsWrites()
        # Clients copy their session's handlers when made: the app's record, later ones do not.
        events = boto3._get_default_session().events
        events.register("after-call", calls.record)
        try:
            clients = bootstrap.build_services(
                _settings(DISPATCH_SANDBOX_ROUTES="enabled", DISPATCH_JWT_SINGLE_USE="on"),
                timer=timers[0],
                http_session=client_session,
                clock=clock,
            )
            webhooks = bootstrap.build_services(
                _settings(
                    DISPATCH_CHANNEL_PROVIDERS=json.dumps(WEBHOOK_ROUTING), DISPATCH_PROVIDER_CREDENTIALS="env"
                ),
                timer=timers[1],
                http_session=webhook_session,
                clock=clock,
                environ=credentials,
            )
        finally:
            events.unregister("after-call", calls.record)
        sink = "http://127.0.0.1:8000/sandbox/callbacks"
        demo, other = (
            create_application(clients.applications, clients.secrets, name, sink, None, clock.now(), "test")
            for name in ("demo", "other")
        )
        bootstrap.override(clients)
        try:
            with Client(app, stage_name="local") as client:
                stack = Hostile(
                    client, clients, webhooks, timers, client_session, webhook_session, clock, demo, other, calls,
                    boto3.client("dynamodb", region_name="eu-west-1"),
                )
                stack.values = _target(stack)
                yield stack
        finally:
            bootstrap.override(None)


def _target(stack: Hostile) -> dict[str, str]:
    """A real dispatch of the demo application, for the path parameters: a route could then
    only refuse a request because of what the case changed."""
    headers = {"Content-Type": "application/json", "Authorization": _ctx(stack).basic()}
    created = stack.client.http.post("/v0.1/dispatch", headers=headers, body=json.dumps(MESSENGER_TO_SMS).encode())
    assert created.status_code == 202, created.body
    dispatch_uuid = json.loads(created.body)["dispatch_uuid"]
    read = stack.client.http.get(f"/v0.1/dispatch/{dispatch_uuid}", headers=headers)
    message_uuid = json.loads(read.body)["messages"][0]["message_uuid"]
    return {"dispatch_uuid": dispatch_uuid, "message_uuid": message_uuid}


def _ctx(stack: Hostile) -> hc.Ctx:
    def use(request: hc.Request) -> int:
        return stack.client.http.request(
            request.method, request.path, headers=request.headers, body=request.body
        ).status_code

    return hc.Ctx(stack.demo, stack.values, stack.clock.now, use)


# --- what must not change ------------------------------------------------------------------------


def _items(client: Any) -> int:
    """How many items the table holds, counted by a client of the tests' own. A count, not the
    items: moto takes tens of ms to serialise a scan's items, twice a case. Changes to existing
    items are writes, which the app's recorded clients would have made."""
    pages = client.get_paginator("scan").paginate(TableName=TABLE_NAME, ConsistentRead=True, Select="COUNT")
    return sum(page["Count"] for page in pages)


def _observable(stack: Hostile) -> dict[str, Any]:
    now = stack.clock.now()
    return {
        "callbacks posted": len(stack.client_session.posts) + len(stack.client_session.refused),
        "provider calls": len(stack.webhook_session.calls),
        "timers scheduled": [len(t.scheduled) for t in stack.timers],
        "timers cancelled": [len(t.cancelled) for t in stack.timers],
        "outages staged": [stack.clients.sink.outage_status(c.application_id, now) for c in (stack.demo, stack.other)],
    }


@contextmanager
def nothing_applied(stack: Hostile) -> Iterator[None]:
    """Fails unless the app's AWS clients made no write and the table, the timers, the outbound
    HTTP and the sink are as the block found them. Summarised, never diffed whole: pytest takes
    minutes to print a diff of large structures."""
    mark, items, before = len(stack.aws_calls.made), _items(stack.dynamodb), _observable(stack)
    yield
    writes = stack.aws_calls.made[mark:]
    added = _items(stack.dynamodb) - items
    after = _observable(stack)
    moved = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    if writes or added or moved:
        pytest.fail(f"the request applied something: AWS writes {writes[:6]}, {added} item(s) added, other state {moved}")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def errors_logged() -> Iterator[list[logging.LogRecord]]:
    """Every record at ERROR or above, from any logger: the root's and those that do not
    propagate to it (chalice's own app logger, for one)."""
    handler = _Collect()
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


# --- the checks every answer gets ----------------------------------------------------------------


def assert_problem(
    status: int, headers: Any, body: bytes, expected: hc.Expect, not_echoed: tuple[str, ...] = ()
) -> dict[str, Any]:
    statuses, types = expected
    statuses = statuses if isinstance(statuses, tuple) else (statuses,)
    types = types if isinstance(types, tuple) else (types,)
    text = body.decode("utf-8", "replace")
    assert status in statuses, (status, text[:500])
    content_type = hc.header(headers, "Content-Type") or ""
    assert content_type.split(";")[0].strip() == "application/problem+json", (content_type, text[:500])
    problem = json.loads(body)
    assert isinstance(problem, dict), text[:500]
    assert problem["type"].startswith(hc.PROBLEM), problem
    assert problem["type"] in types, problem
    for member in ("title", "detail", "instance"):
        assert isinstance(problem.get(member), str) and problem[member], (member, problem)
    for internal in hc.INTERNALS:
        assert internal not in text, (internal, text[:500])
    assert not EXCEPTION_NAME.search(text), text[:500]
    for word in not_echoed:
        assert word not in text, (word, text[:500])
    return problem


# --- the table -----------------------------------------------------------------------------------

PAIRS = hc.pairs()


def _pair_id(pair: tuple[hc.Case, hc.Route]) -> str:
    case, route = pair
    return f"F{case.finding}:{case.name}:{route.label()}"


@pytest.fixture
def current(hostile: Hostile) -> Iterator[Hostile]:
    """The stack at the wall clock's now (providers sign with it), the client routes' services in."""
    hostile.clock.current = datetime.now(timezone.utc)
    yield hostile
    bootstrap.override(hostile.clients)


@pytest.mark.parametrize("pair", PAIRS, ids=[_pair_id(p) for p in PAIRS])
def test_a_hostile_input_gets_its_problem_and_changes_nothing(current, pair):
    case, route = pair
    stack = current
    request = case.build(_ctx(stack), route)
    bootstrap.override(stack.services_for(route))
    with errors_logged() as errors, nothing_applied(stack):
        response = stack.client.http.request(request.method, request.path, headers=request.headers, body=request.body)
    assert [r.getMessage() for r in errors] == [], "a client's input was logged at ERROR"
    problem = assert_problem(response.status_code, response.headers, response.body, case.expected(route, request), case.not_echoed)
    if case.check is not None:
        case.check(response.headers, problem)


# --- the table itself --------------------------------------------------------------------------


def test_every_post_route_is_classified():
    """A new POST route must say whether it takes JSON (and is then attacked as such)."""
    posts = {(p, m) for p, m in hc.app_routes() if m == "POST"}
    assert posts == hc.CLIENT_JSON | set(hc.BODYLESS) | {hc.WEBHOOK}


def test_every_provider_is_attacked():
    assert sorted(hc.PROVIDERS) == sorted(bootstrap.PROVIDER_MODULES)
    assert set(WEBHOOK_ROUTING.values()) == set(hc.PROVIDERS)


def test_every_finding_reaches_every_route_it_applies_to():
    routes_by_finding: dict[int, set[str]] = {}
    for case, route in PAIRS:
        routes_by_finding.setdefault(case.finding, set()).add(route.label())
    authenticated = {r.label() for r in hc.ROUTES if r.authenticated}
    webhooks = {r.label() for r in hc.ROUTES if r.webhook}
    assert len(webhooks) == len(hc.PROVIDERS) * len(hc.WEBHOOK_KINDS)
    assert authenticated <= routes_by_finding[1] and authenticated <= routes_by_finding[3]
    assert webhooks <= routes_by_finding[2] and webhooks <= routes_by_finding[5]
    assert {r.label() for r in hc.ROUTES if r.client_json} <= routes_by_finding[2]
    assert {r.path for r in hc.ROUTES} == {
        path for case, route in PAIRS if case.finding == 4 for path in [route.path]
    }, "a path is never sent a method it does not serve"


# --- neighbours that must be accepted: the rules refuse no more than they say ------------------


def _create(stack: Hostile, body: dict[str, Any]) -> Any:
    headers = {"Content-Type": "application/json", "Authorization": _ctx(stack).basic()}
    return stack.client.http.post("/v0.1/dispatch", headers=headers, body=json.dumps(body).encode())


@pytest.mark.parametrize(
    "text", ["tab\there", "new\nline", "crlf\r\nline", "\u05e9\u05dc\u05d5\u05dd right to left", "emoji \U0001f600"]
)
def test_text_with_tab_newline_and_other_scripts_is_accepted(current, text):
    body = json.loads(json.dumps(MESSENGER_TO_SMS))
    body["workflow"][0]["message"]["content"]["text"] = text
    mark = len(current.aws_calls.made)
    with errors_logged() as errors:
        response = _create(current, body)
    assert response.status_code == 202, response.body
    assert errors == []
    # The recorder hears the app's writes, so the table's "no write" is not a deaf recorder's.
    assert current.aws_calls.made[mark:]


# --- the local stack's HTTP front --------------------------------------------------------------


@dataclass
class Local:
    stack: Any
    log: Path

    @contextmanager
    def no_error_logged(self) -> Iterator[None]:
        """Fails if the stack logs at ERROR (or prints a traceback) while the block runs."""
        start = self.log.stat().st_size
        yield
        # Its output is unbuffered; a moment lets the lines of the request just answered land.
        time.sleep(0.05)
        with self.log.open("rb") as file:
            file.seek(start)
            written = file.read().decode("utf-8", "replace")
        assert '"level":"ERROR"' not in written and "Traceback" not in written, written[-2000:]


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Iterator[Local]:
    folder = tmp_path_factory.mktemp("hostile-local")
    log = folder / "stack.log"
    with running_local_stack(folder / "state", output=log, PYTHONUNBUFFERED="1") as stack:
        yield Local(stack, log)


def _raw_http(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library would send them) and read the answer."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if _complete(b"".join(chunks)):
                break
    data = b"".join(chunks)
    assert data, "the server answered nothing"
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(status_line.split()[1]), {k.strip(): v.strip() for k, v in headers.items()}, body


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return match is not None and len(body) >= int(match.group(1))


@dataclass(frozen=True)
class WireCase:
    name: str
    method: str
    path: str
    status: int
    problem: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    allow: set[str] | None = None


WIRE_CASES = [
    WireCase("unknown-path", "GET", "/v0.1/nope", 404, hc.NOT_FOUND),
    WireCase("root", "GET", "/", 404, hc.NOT_FOUND),
    WireCase("unknown-path-post", "POST", "/v0.1/dispatches", 404, hc.NOT_FOUND, body=b"{}"),
    WireCase("options", "OPTIONS", "/v0.1/dispatch", 405, hc.METHOD_NOT_ALLOWED, allow={"POST"}),
    WireCase("trace", "TRACE", "/v0.1/dispatch", 405, hc.METHOD_NOT_ALLOWED, allow={"POST"}),
    WireCase("header-100k", "GET", "/v0.1/openapi.json", 431, hc.PROBLEM + "header-too-large",
             headers={"X-Big": "a" * 100_000}),
    WireCase("deep-json", "POST", "/v0.1/dispatch", 400, hc.INVALID_JSON, body=hc.deep_array(100_000)),
]


@pytest.mark.parametrize("case", WIRE_CASES, ids=[c.name for c in WIRE_CASES])
def test_the_local_front_answers_with_a_problem(local, case):
    headers = {"Content-Type": "application/json", **case.headers}
    with local.no_error_logged():
        response = requests.request(
            case.method,
            local.stack.base_url + case.path,
            headers=headers,
            data=case.body,
            auth=local.stack.basic_auth,
            timeout=10,
        )
    problem = assert_problem(response.status_code, response.headers, response.content, (case.status, case.problem),
                             not_echoed=("nope", "dispatches") if case.status == 404 else ())
    if case.allow is not None:
        assert {m.strip() for m in response.headers.get("Allow", "").split(",")} == case.allow
    assert problem


@pytest.mark.parametrize(
    "name, request_bytes, status, problem",
    FRAMING := [
        ("content-length-not-a-number",
         b"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}",
         400, hc.PROBLEM + "malformed-request"),
        ("content-length-negative",
         b"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}",
         400, hc.PROBLEM + "malformed-request"),
        ("content-length-a-gigabyte",
         b"POST /webhooks/viber/status HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         b"Content-Length: 1000000000\r\n\r\n{",
         413, hc.TOO_LARGE),
    ],
    ids=[case[0] for case in FRAMING],
)
def test_the_local_front_refuses_broken_framing(local, name, request_bytes, status, problem):
    with local.no_error_logged():
        got_status, headers, body = _raw_http(local.stack.base_url, request_bytes)
    assert_problem(got_status, headers, body, (status, problem))


def test_the_local_stacks_log_is_read(local):
    """The control: what the stack logs reaches the file the checks above read, so their "no
    ERROR" is not the silence of a log nobody writes."""
    start = local.log.stat().st_size
    created = requests.post(
        local.stack.base_url + "/v0.1/dispatch", json=MESSENGER_TO_SMS, auth=local.stack.basic_auth, timeout=10
    )
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and b"dispatch created" not in local.log.read_bytes()[start:]:
        time.sleep(0.05)
    assert b"dispatch created" in local.log.read_bytes()[start:]
