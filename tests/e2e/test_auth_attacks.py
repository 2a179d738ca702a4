"""Every authentication attack against every authenticated client route, over HTTP.

The routes come from the app itself (`served_routes(app)`): a route that is not listed as public is
attacked, so a new client route is covered the day it is added (and this test fails until it
says how to fill the route's path parameters). Each attack must get a 401 problem+json with a
`WWW-Authenticate` challenge, repeat no credential, and change nothing: the app's AWS clients
make no write call (DynamoDB, Secrets Manager), and no callback goes out, no timer is set and no
sink outage is staged. Each route also serves the same request with good credentials (Basic
and JWT), so the 401s come from the credentials alone.

The tokens are built by the helpers of the unit tests (`tests/unit/test_auth.py`), which attack
`authenticate()` itself; here the same attacks go through the routes.
"""
from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb_table import create_table
from chalicelib.config import load_settings
from chalicelib.service.applications import create_application, generate_key_pair
from tests.conftest import TABLE_NAME
from tests.e2e.conftest import CapturingSession, Stack
from tests.e2e.test_api import MESSENGER_TO_SMS, create, view
from tests.fakes import FakeClock, RecordingTimer
from tests.unit.test_auth import b64url, basic, claims_for, hand_built, rs256

#: Routes that take no client credentials, and why.
PUBLIC = {
    ("/v0.1/openapi.json", "GET"): "the API description is public",
    ("/webhooks/{provider}/{kind}", "POST"): "signed by the provider (tests/webhooks/test_signatures.py)",
    ("/webhooks/{provider}/{kind}", "GET"): "Meta's verify-token handshake",
    ("/sandbox/callbacks", "POST"): "the callback sink: callbacks are signed, not client-authenticated",
}
#: A request each client route would accept with good credentials: a query, and a body for POSTs.
QUERIES = {"/v0.1/callbacks": "?state=dead", "/sandbox/callbacks": "?dispatch_uuid={dispatch_uuid}"}
BODIES: dict[str, Any] = {
    "/v0.1/dispatch": MESSENGER_TO_SMS,
    "/beta/workflows": MESSENGER_TO_SMS,
    "/sandbox/messages/{message_uuid}/status": {"status": "delivered"},
    "/sandbox/callbacks/outage": {"seconds": 60},
}
UNAUTHORIZED = "urn:dispatch:problem:unauthorized"
CHALLENGE = 'Basic realm="dispatch", Bearer'


def _app_routes() -> list[tuple[str, str]]:
    """The routes the app's own views serve; every other method of a path answers 405 before
    credentials are looked at (tests/e2e/test_edges.py)."""
    from app import app
    from chalicelib.api.edges import served_routes

    return sorted((path, method) for path, methods in served_routes(app).items() for method in methods)


CLIENT_ROUTES = [route for route in _app_routes() if route not in PUBLIC]


@dataclass
class AwsCalls:
    """Every AWS call the app's own clients make, as (service, operation), in order."""

    made: list[tuple[str, str]] = field(default_factory=list)

    def record(self, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".")
        self.made.append((service, operation))

    def writes_since(self, mark: int) -> list[tuple[str, str]]:
        return [call for call in self.made[mark:] if not call[1].startswith(READ_OPERATIONS)]


READ_OPERATIONS = ("Get", "Query", "Scan", "BatchGet", "Describe", "List")


@dataclass
class WholeApp(Stack):
    aws_calls: AwsCalls = field(default_factory=AwsCalls)


@contextmanager
def whole_app(environ: Mapping[str, str] | None = None) -> Iterator[WholeApp]:
    """The `stack` fixture of tests/e2e/conftest.py, built once for a module (its tests share
    the moto table, the two applications and the clock), with every AWS call recorded; `environ`
    adds settings."""
    from moto import mock_aws

    from app import app

    with mock_aws():
        create_table(boto3.client("dynamodb", region_name="eu-west-1"), TABLE_NAME)
        settings = load_settings(
            {"DISPATCH_TABLE": TABLE_NAME, "DISPATCH_SANDBOX_ROUTES": "enabled", **(environ or {})}
        )
        timer, session, clock = RecordingTimer(), CapturingSession(), FakeClock(datetime.now(timezone.utc))
        calls = AwsCalls()
        # A client copies its session's event handlers when it is made: the app's clients keep
        # the recorder, and no client made later (in other tests) gets it.
        events = boto3._get_default_session().events
        events.register("before-call", calls.record)
        try:
            services = bootstrap.build_services(settings, timer=timer, http_session=session, clock=clock)
        finally:
            events.unregister("before-call", calls.record)
        sink_url = "http://127.0.0.1:8000/sandbox/callbacks"
        demo, other = (
            create_application(services.applications, services.secrets, name, sink_url, None, clock.now(), "test")
            for name in ("demo", "other")
        )
        bootstrap.override(services)
        try:
            with Client(app, stage_name="local") as client:
                yield WholeApp(client, services, timer, session, clock, demo, other, calls)
        finally:
            bootstrap.override(None)


@pytest.fixture(scope="module")
def stack() -> Iterator[WholeApp]:
    with whole_app() as built:
        yield built


@contextmanager
def nothing_changes(stack: WholeApp) -> Iterator[None]:
    """Fails unless the block leaves everything as it found it: no AWS write (DynamoDB, Secrets
    Manager), no callback posted, no timer set, no sink outage staged."""
    now = stack.clock.now()

    def observable() -> list[Any]:
        return [
            list(stack.session.posts),
            list(stack.session.refused),
            list(stack.timer.scheduled),
            [stack.services.sink.outage_status(c.application_id, now) for c in (stack.demo, stack.other)],
        ]

    mark, before = len(stack.aws_calls.made), observable()
    yield
    assert stack.aws_calls.writes_since(mark) == []
    assert observable() == before


# --- the attacks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    name: str
    #: The Authorization header (None: sent without one), given the stack.
    header: Callable[[Stack], str | None]


def _now(stack: Stack) -> datetime:
    return stack.clock.now()


def _ts(stack: Stack, seconds: float = 0) -> int:
    return int((_now(stack) + timedelta(seconds=seconds)).timestamp())


def _signed(**changes: Any) -> Callable[[Stack], str]:
    """A token signed with the demo application's own key, its claims changed by `changes`."""
    return lambda s: rs256(claims_for(s.demo, _now(s), **changes), s.demo.private_key_pem)


def _public_key(stack: Stack) -> bytes:
    application = stack.services.applications.get(stack.demo.application_id)
    assert application is not None
    return application.public_key_pem.encode()


def _tampered(stack: Stack) -> str:
    """The demo's valid token with the other application's claims pasted over its own."""
    head, _, signature = rs256(claims_for(stack.demo, _now(stack)), stack.demo.private_key_pem).split()[1].split(".")
    return f"Bearer {head}.{b64url(json.dumps(claims_for(stack.other, _now(stack))).encode())}.{signature}"


STRANGER_KEY, _ = generate_key_pair()

ATTACKS = [
    Attack("no-header", lambda s: None),
    Attack("empty-header", lambda s: ""),
    Attack("unsupported-scheme", lambda s: "Digest username=demo"),
    Attack("basic-wrong-secret", lambda s: basic(s.demo.api_key, s.other.api_secret)),
    Attack("basic-unknown-key", lambda s: basic(uuid.uuid4().hex, s.demo.api_secret)),
    Attack("basic-other-apps-key", lambda s: basic(s.other.api_key, s.demo.api_secret)),
    Attack("basic-malformed", lambda s: "Basic " + base64.b64encode(s.demo.api_key.encode()).decode()),
    Attack("jwt-alg-none", lambda s: hand_built({"alg": "none", "typ": "JWT"}, claims_for(s.demo, _now(s)), None)),
    Attack(
        "jwt-hs256-keyed-with-public-key",
        lambda s: hand_built({"alg": "HS256", "typ": "JWT"}, claims_for(s.demo, _now(s)), _public_key(s)),
    ),
    Attack("jwt-rs512", lambda s: rs256(claims_for(s.demo, _now(s)), s.demo.private_key_pem, "RS512")),
    Attack("jwt-expired", lambda s: _signed(iat=_ts(s, -600), exp=_ts(s, -31))(s)),
    Attack("jwt-not-yet-valid", lambda s: _signed(nbf=_ts(s, 31))(s)),
    Attack("jwt-issued-over-24h-ago", lambda s: _signed(iat=_ts(s, -86401), exp=_ts(s, 3600))(s)),
    Attack("jwt-issued-in-the-future", lambda s: _signed(iat=_ts(s, 31))(s)),
    Attack("jwt-without-iat", _signed(iat=None)),
    Attack("jwt-without-jti", _signed(jti=None)),
    Attack("jwt-without-application-id", _signed(application_id=None)),
    Attack("jwt-wrong-key", lambda s: rs256(claims_for(s.demo, _now(s)), STRANGER_KEY)),
    Attack("jwt-other-apps-id", lambda s: _signed(application_id=s.other.application_id)(s)),
    Attack("jwt-unknown-application", _signed(application_id=str(uuid.uuid4()))),
    Attack("jwt-tampered-claims", _tampered),
    Attack("jwt-with-audience", _signed(aud="another-service")),
    Attack("jwt-malformed", lambda s: "Bearer not.a.jwt"),
    # Hostile headers (issue 14, finding 1): refused before any decoding, never a 500.
    Attack("basic-non-ascii", lambda s: "Basic é"),
    Attack("scheme-non-ascii", lambda s: "Bäsic " + basic(s.demo.api_key, s.demo.api_secret).split()[1]),
    Attack("bearer-non-ascii", lambda s: "Bearer é"),
    Attack("bearer-lone-surrogate", lambda s: "Bearer \ud800"),
    Attack("basic-latin1-decoded", lambda s: "Basic " + base64.b64encode(s.demo.api_key.encode() + b":\xe9").decode()),
    Attack("basic-nul", lambda s: basic(s.demo.api_key, s.demo.api_secret) + "\x00"),
    Attack("basic-nul-decoded", lambda s: basic(s.demo.api_key, s.demo.api_secret + "\x00")),
    Attack("header-control-char", lambda s: basic(s.demo.api_key, s.demo.api_secret).replace(" ", "\x0b")),
    Attack("header-crlf", lambda s: basic(s.demo.api_key, s.demo.api_secret) + "\r\nX-Api-Key: demo"),
    Attack("header-enormous", lambda s: "Basic " + "A" * 100_000),
    Attack("bearer-enormous", lambda s: "Bearer " + "A" * 100_000 + ".e30.c2ln"),
    Attack("basic-no-credentials", lambda s: "Basic"),
    Attack("basic-two-tokens", lambda s: basic(s.demo.api_key, s.demo.api_secret) + " YTpi"),
    # Validly signed tokens with hostile times (finding 3) and claims outside the policy (finding 9).
    Attack("jwt-iat-10e400", _signed(iat=10**400)),
    Attack("jwt-exp-10e400", _signed(exp=10**400)),
    Attack("jwt-nbf-10e400", _signed(nbf=10**400)),
    Attack("jwt-exp-minus-10e400", _signed(exp=-(10**400))),
    Attack("jwt-iat-huge-float", _signed(iat=1.5e308)),
    Attack("jwt-exp-bool", _signed(exp=True)),
    Attack("jwt-nbf-string", _signed(nbf="0")),
    Attack("jwt-jti-empty", _signed(jti="")),
    Attack("jwt-jti-blank", _signed(jti="   ")),
    Attack("jwt-jti-256-chars", _signed(jti="j" * 256)),
    Attack("jwt-jti-control-char", _signed(jti="a\x00b")),
    Attack("jwt-without-exp-after-15-minutes", lambda s: _signed(iat=_ts(s, -931), exp=None)(s)),
    Attack("jwt-lifetime-over-24h", lambda s: _signed(iat=_ts(s, -60), exp=_ts(s, -60 + 86401))(s)),
    Attack("jwt-exp-before-iat", lambda s: _signed(iat=_ts(s, -60), exp=_ts(s, -61))(s)),
]


# --- requests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def targets(stack: Stack) -> dict[str, str]:
    """Path parameter values naming real resources of the demo application (the identity the
    attacks claim), so a route could only answer 401 because of the credentials."""
    dispatch_uuid = create(stack)
    message_uuid = view(stack, dispatch_uuid)["messages"][0]["message_uuid"]
    return {"dispatch_uuid": dispatch_uuid, "message_uuid": message_uuid}


def request(stack: Stack, route: tuple[str, str], values: dict[str, str], authorization: str | None):
    path, method = route
    url = (path + QUERIES.get(path, "")).format(**values)
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = json.dumps(BODIES[path]) if path in BODIES else ""
    return stack.client.http.request(method, url, headers=headers, body=body.encode())


def route_id(route: tuple[str, str]) -> str:
    return f"{route[1]} {route[0]}"


# --- tests ---------------------------------------------------------------------------------------


def test_every_route_is_public_or_attacked():
    assert CLIENT_ROUTES, "no client route found: the enumeration is broken"
    assert set(PUBLIC) <= set(_app_routes()), "a public route listed here no longer exists"
    assert set(CLIENT_ROUTES) | set(PUBLIC) == set(_app_routes())


@pytest.mark.parametrize("route", CLIENT_ROUTES, ids=route_id)
def test_each_route_serves_good_credentials(stack, targets, route):
    """The control: the same request with the demo's own credentials is not a 401, so the
    attacks' 401s come from their credentials, not from a request this test built badly."""
    for header in (stack.basic()["Authorization"], stack.bearer()["Authorization"]):
        mark = len(stack.aws_calls.made)
        response = request(stack, route, targets, header)
        assert 200 <= response.status_code < 300, (route, response.status_code, response.body)
        # The recorder sees the app's calls (each route reads its caller's application), so
        # the attacks' "no write" is not the silence of a recorder that hears nothing.
        assert ("dynamodb", "GetItem") in stack.aws_calls.made[mark:]


@pytest.fixture(scope="module")
def attack_headers(stack: WholeApp) -> dict[str, str | None]:
    """Each attack's header, built once: signing loads an RSA key, which costs tens of ms."""
    return {attack.name: attack.header(stack) for attack in ATTACKS}


@pytest.mark.parametrize("route", CLIENT_ROUTES, ids=route_id)
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_the_attack_is_refused_and_changes_nothing(stack, targets, attack_headers, route, attack, caplog):
    header = attack_headers[attack.name]
    caplog.set_level(logging.DEBUG)
    with nothing_changes(stack):
        response = request(stack, route, targets, header)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert response.status_code == 401, response.body
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    problem = json.loads(response.body)
    assert set(problem) == {"type", "title", "detail", "instance"}
    assert problem["type"] == UNAUTHORIZED
    for part in (header or "").replace(".", " ").split() + [stack.demo.api_secret, stack.other.api_secret]:
        assert len(part) < 12 or part not in response.body.decode()


@pytest.mark.parametrize("route", CLIENT_ROUTES, ids=route_id)
def test_a_token_is_accepted_again_until_it_expires_by_default(stack, targets, route):
    """Single use is a deployment's choice (DISPATCH_JWT_SINGLE_USE, tests/e2e/test_single_use_tokens.py):
    by default a client may reuse a token, as Vonage lets it, until the token expires."""
    header = stack.bearer()["Authorization"]
    for _ in range(2):
        assert 200 <= request(stack, route, targets, header).status_code < 300
    assert token_uses_recorded() == 0


def token_uses_recorded() -> int:
    """How many token uses the table holds (items `JTI#...`), read by a client of the test's own."""
    client = boto3.client("dynamodb", region_name="eu-west-1")
    items = client.scan(
        TableName=TABLE_NAME,
        FilterExpression="begins_with(pk, :p)",
        ExpressionAttributeValues={":p": {"S": "JTI#"}},
    )["Items"]
    return len(items)


@pytest.mark.parametrize(
    "unknown, known",
    [("basic-unknown-key", "basic-wrong-secret"), ("jwt-unknown-application", "jwt-wrong-key")],
)
def test_an_unknown_identity_gets_the_same_answer_as_a_wrong_credential(stack, targets, unknown, known):
    by_name = {a.name: a for a in ATTACKS}
    route = ("/v0.1/dispatch/{dispatch_uuid}", "GET")
    answers = [request(stack, route, targets, by_name[name].header(stack)) for name in (unknown, known)]
    bodies = [{k: v for k, v in json.loads(a.body).items() if k != "instance"} for a in answers]
    assert bodies[0] == bodies[1]
    assert answers[0].headers == answers[1].headers
