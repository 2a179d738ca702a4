"""The hostile-input table of issue 14: every case a finding names, and its neighbours, as data.

A `Case` says which routes it applies to, how to build its request for one of them, and what
the answer must be. `test_hostile_inputs.py` sends every (case, route) pair to the whole app and
checks what is common to all of them (status, problem+json shape, no runtime internals, nothing
applied, nothing logged at ERROR). Adding a case is adding one `Case(...)` to a list below.

Routes come from the app (`app.routes`); the sets below only say which of them take a JSON body,
so a new route is attacked the day it is added (and `test_every_post_route_is_classified` fails
until it is put in one of them).
"""
from __future__ import annotations

import base64
import functools
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from chalicelib.adapters.providers.aws_sms.certificates import PROCESS_CACHE
from chalicelib.api import body as body_module
from chalicelib.service.applications import Credentials
from tests.e2e.test_api import MESSENGER_TO_SMS
from tests.e2e.test_auth_attacks import PUBLIC
from tests.webhooks.meta_signing import meta_signed
from tests.webhooks.signature_cases import aws_sms, messenger, viber, vonage, whatsapp

PROBLEM = "urn:dispatch:problem:"
UNAUTHORIZED = PROBLEM + "unauthorized"
INVALID_JSON = PROBLEM + "invalid-json"
INVALID_PARAMS = PROBLEM + "invalid-params"
NOT_FOUND = PROBLEM + "not-found"
METHOD_NOT_ALLOWED = PROBLEM + "method-not-allowed"
TOO_LARGE = PROBLEM + "payload-too-large"
SIGNATURE = PROBLEM + "webhook-signature"
PAYLOAD = PROBLEM + "webhook-payload"

# --- routes ----------------------------------------------------------------------------------


def app_routes() -> list[tuple[str, str]]:
    """The (path, method) pairs the app's own views serve: not the 405 views it generates for
    the other methods of each path (chalicelib/api/edges.py)."""
    from app import app

    try:
        from chalicelib.api.edges import served_routes
    except ImportError:  # before the edges land, every route is served
        return sorted((path, method) for path, methods in app.routes.items() for method in methods)
    return sorted((path, method) for path, methods in served_routes(app).items() for method in methods)


WEBHOOK = ("/webhooks/{provider}/{kind}", "POST")
CREATE = {("/v0.1/dispatch", "POST"), ("/beta/workflows", "POST")}
#: Client routes whose body is JSON (parsed by chalicelib.api.body).
CLIENT_JSON = CREATE | {
    ("/sandbox/messages/{message_uuid}/status", "POST"),
    ("/sandbox/callbacks/outage", "POST"),
    ("/sandbox/callbacks", "POST"),
}
#: POST routes that read no body, and why.
BODYLESS = {("/v0.1/dispatch/{dispatch_uuid}/callbacks/replay", "POST"): "takes no body; ignores any"}
#: Every provider whose webhook the app serves, by the module that builds it.
PROVIDERS = {
    "aws_sms": aws_sms.CASE,
    "messenger": messenger.CASE,
    "viber": viber.CASE,
    "vonage": vonage.CASE,
    "whatsapp": whatsapp.CASE,
}
WEBHOOK_KINDS = ("status", "inbound")


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    #: Values for path parameters fixed by the route itself (a webhook's provider and kind);
    #: the others (dispatch_uuid, message_uuid) name the stack's own resources at run time.
    fixed: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return self.path, self.method

    @property
    def provider(self) -> str:
        return dict(self.fixed)["provider"]

    @property
    def kind(self) -> str:
        return dict(self.fixed)["kind"]

    @property
    def authenticated(self) -> bool:
        return self.key not in PUBLIC

    @property
    def validated(self) -> bool:
        """A client JSON route that refuses any body not of its shape (the callback sink drops
        one that names no dispatch, with a 204)."""
        return self.client_json and self.path != "/sandbox/callbacks"

    @property
    def webhook(self) -> bool:
        return self.key == WEBHOOK

    @property
    def client_json(self) -> bool:
        return self.key in CLIENT_JSON

    @property
    def create(self) -> bool:
        return self.key in CREATE

    def label(self) -> str:
        return f"{self.method} {self.path.format_map(_Keep(dict(self.fixed)))}"


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _routes() -> list[Route]:
    routes: list[Route] = []
    for path, method in app_routes():
        if path == WEBHOOK[0]:
            routes += [
                Route(path, method, (("provider", p), ("kind", k)))
                for p in sorted(PROVIDERS)
                for k in WEBHOOK_KINDS
            ]
        else:
            routes.append(Route(path, method))
    return routes


ROUTES = _routes()

# --- what a builder gets, and gives ----------------------------------------------------------


@dataclass
class Ctx:
    """The stack's identities and resources a request names."""

    demo: Credentials
    values: dict[str, str]  #: dispatch_uuid and message_uuid of a real dispatch of `demo`
    now: Callable[[], datetime]
    #: Sends a request before the case's own (outside what is checked) and gives its status.
    use: Callable[[Request], int]

    def basic(self) -> str:
        token = base64.b64encode(f"{self.demo.api_key}:{self.demo.api_secret}".encode()).decode()
        return f"Basic {token}"

    def timestamp(self, seconds: float = 0) -> str:
        return str(int(self.now().timestamp() + seconds))

    def jwt(self, claims: Mapping[str, str | None]) -> str:
        """A token validly signed (RS256) by the demo application, whose payload is the demo's
        usual claims with `claims` as raw JSON texts (so values `json.dumps` cannot write, such
        as 1e400 or a 5,001-digit integer, are sent as written)."""
        base = {
            "application_id": json.dumps(self.demo.application_id),
            "iat": str(int(self.now().timestamp())),
            "jti": json.dumps(str(uuid.uuid4())),
            **claims,
        }
        payload = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in base.items() if v is not None) + "}"
        head = _b64url(b'{"alg":"RS256","typ":"JWT"}') + "." + _b64url(payload.encode())
        signature = _private_key(self.demo.private_key_pem).sign(
            head.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"Bearer {head}.{_b64url(signature)}"


@functools.lru_cache(maxsize=4)
def _private_key(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


Builder = Callable[[Ctx, Route], Request]
Expect = tuple[int | tuple[int, ...], str | tuple[str, ...]]


@dataclass(frozen=True)
class Case:
    finding: int
    name: str
    applies: Callable[[Route], bool]
    build: Builder
    status: int | tuple[int, ...]
    problem: str | tuple[str, ...]
    #: Overrides (status, problem) for some routes (e.g. aws_sms, whose signature is in the body).
    expect_for: Callable[[Route], Expect | None] | None = None
    #: Further checks on the answer: (response headers, problem document) -> None.
    check: Callable[[Mapping[str, str], dict[str, Any]], None] | None = None
    #: Extra words the answer must not contain (besides runtime internals), e.g. the path sent.
    not_echoed: tuple[str, ...] = field(default=())

    def expected(self, route: Route, request: Request) -> Expect:
        # A body over the route's limit is refused for its size before anything else is read.
        limit = body_limit(route)
        if limit is not None and len(request.body) > limit and self.status not in (405, 413):
            return 413, TOO_LARGE
        if self.expect_for is not None:
            found = self.expect_for(route)
            if found is not None:
                return found
        return self.status, self.problem


def body_limit(route: Route) -> int | None:
    if route.webhook:
        return webhook_limit(route.provider)
    if route.client_json:
        return int(body_module.MAX_BODY_BYTES)
    return None


def send(method: str, route: Route, ctx: Ctx, headers: dict[str, str], body: bytes = b"", path: str | None = None) -> Request:
    values = {**ctx.values, **dict(route.fixed)}
    return Request(method, (path or route.path).format(**values), headers, body)


def client_headers(ctx: Ctx, route: Route) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if route.authenticated:
        headers["Authorization"] = ctx.basic()
    return headers


#: A body each client JSON route accepts (so a refusal comes from what a case changed in it).
GOOD_BODIES: dict[str, Any] = {
    "/v0.1/dispatch": MESSENGER_TO_SMS,
    "/beta/workflows": MESSENGER_TO_SMS,
    "/sandbox/messages/{message_uuid}/status": {"status": "delivered"},
    "/sandbox/callbacks/outage": {"seconds": 60},
    "/sandbox/callbacks": {"dispatch_uuid": "00000000-0000-4000-8000-000000000000", "status": "submitted"},
}


#: The query each GET route that needs one is served with.
GOOD_QUERIES = {"/v0.1/callbacks": "?state=dead", "/sandbox/callbacks": "?dispatch_uuid={dispatch_uuid}"}


def good_request(ctx: Ctx, route: Route, method: str | None = None) -> Request:
    """The request the route serves, with good credentials (what most cases alter)."""
    method = method or route.method
    body = json.dumps(GOOD_BODIES[route.path]).encode() if route.path in GOOD_BODIES else b""
    query = GOOD_QUERIES.get(route.path, "") if method == "GET" else ""
    return send(method, route, ctx, client_headers(ctx, route), body, path=route.path + query)


# --- webhook signing, as each provider signs --------------------------------------------------


def webhook_headers(route: Route, body: bytes, signed: bool) -> dict[str, str]:
    """The headers the provider posts `body` with; `signed=False` drops its signature. aws_sms
    (SNS) signs inside the body, so its headers are always SNS's (see `sns_envelope`)."""
    provider = route.provider
    if provider == "aws_sms":
        PROCESS_CACHE.put(aws_sms.CASE_CERT_URL, aws_sms.SNS_KEY.pem)
        return aws_sms.headers_for(
            {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": _topic(route)}
        )
    if not signed:
        return {"Content-Type": "application/json"}
    if provider in ("whatsapp", "messenger"):
        return meta_signed(body, PROVIDERS[provider].secret)
    if provider == "viber":
        return dict(viber.sign(body, viber.TOKEN))
    if provider == "vonage":
        return vonage.sign(body, vonage.SECRET)
    raise AssertionError(f"no signer for {provider}: add one for the new provider")


def _topic(route: Route) -> str:
    return aws_sms.INBOUND_TOPIC_ARN if route.kind == "inbound" else aws_sms.TOPIC_ARN


def sns_envelope(route: Route, message: str) -> bytes:
    """A Notification SNS signed, carrying `message` (the provider's payload, as text)."""
    PROCESS_CACHE.put(aws_sms.CASE_CERT_URL, aws_sms.SNS_KEY.pem)
    envelope = aws_sms.SNS_KEY.notification(
        message, timestamp=datetime.now(timezone.utc), url=aws_sms.CASE_CERT_URL, topic_arn=_topic(route)
    )
    return aws_sms.body_of(envelope)


def signed_webhook(route: Route, ctx: Ctx, payload: bytes) -> Request:
    """`payload` as the provider's own signed body (inside a signed SNS envelope for aws_sms)."""
    if route.provider == "aws_sms":
        body = sns_envelope(route, payload.decode("utf-8", "surrogatepass"))
    else:
        body = payload
    return send("POST", route, ctx, webhook_headers(route, body, signed=True), body)


def unsigned_webhook(route: Route, ctx: Ctx, body: bytes) -> Request:
    return send("POST", route, ctx, webhook_headers(route, body, signed=False), body)


# --- bodies ----------------------------------------------------------------------------------


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


DUP = "__duplicate_marker__"


def with_duplicate(value: Any, where: Callable[[Any], dict], key: str, second: Any) -> bytes:
    """`value` as JSON text in which the object `where(value)` holds `key` twice (its own value,
    then `second`)."""
    copy = json.loads(json.dumps(value))
    where(copy)[DUP] = None
    text = json.dumps(copy)
    return text.replace(f'"{DUP}": null', f"{json.dumps(key)}: {json.dumps(second)}").encode()


def create_body(change: Callable[[dict], None]) -> bytes:
    body = json.loads(json.dumps(MESSENGER_TO_SMS))
    change(body)
    return json.dumps(body).encode()


def raw_in(value: Any, where: Callable[[Any], dict], key: str, raw: str) -> bytes:
    """`value` as JSON text with `where(value)[key]` written as the raw JSON text `raw`."""
    copy = json.loads(json.dumps(value))
    where(copy)[key] = DUP
    return json.dumps(copy).replace(json.dumps(DUP), raw, 1).encode()


# --- checks ----------------------------------------------------------------------------------


def header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def challenges(headers: Mapping[str, str], _problem: dict[str, Any]) -> None:
    assert header(headers, "WWW-Authenticate"), "a 401 must carry a WWW-Authenticate challenge"


def names(*fields: str) -> Callable[[Mapping[str, str], dict[str, Any]], None]:
    """The problem names each of `fields`: in `invalid_parameters` or, failing that, its detail."""

    def check(_headers: Mapping[str, str], problem: dict[str, Any]) -> None:
        listed = {p.get("name") for p in problem.get("invalid_parameters", [])}
        for name in fields:
            assert name in listed or name in problem["detail"], (name, problem)

    return check


# === the table ===============================================================================

CASES: list[Case] = []


def authenticated(route: Route) -> bool:
    return route.authenticated


def client_json(route: Route) -> bool:
    return route.client_json


def webhook(route: Route) -> bool:
    return route.webhook


def create(route: Route) -> bool:
    return route.create


# --- finding 1: hostile Authorization headers on every authenticated route --------------------


def _with_authorization(value: Callable[[Ctx], str]) -> Builder:
    def build(ctx: Ctx, route: Route) -> Request:
        good = good_request(ctx, route)
        return Request(good.method, good.path, {**good.headers, "Authorization": value(ctx)}, good.body)

    return build


def _b64(text: bytes) -> str:
    return base64.b64encode(text).decode()


AUTHORIZATION_VALUES: dict[str, Callable[[Ctx], str]] = {
    "basic-e-acute": lambda c: "Basic é",
    "basic-non-ascii-in-base64": lambda c: "Basic " + _b64(b"key:secret")[:-2] + "é=",
    "basic-fullwidth-digits": lambda c: "Basic １２３４",
    "basic-emoji": lambda c: "Basic \U0001f600",
    "basic-nul": lambda c: "Basic \x00",
    "basic-nul-inside-base64": lambda c: "Basic " + _b64(c.demo.api_key.encode())[:4] + "\x00" + "AAAA",
    "basic-c1-control": lambda c: "Basic \x85abc",
    "basic-del": lambda c: "Basic abc\x7f",
    "basic-bidi-override": lambda c: "Basic \u202e" + _b64(f"{c.demo.api_key}:{c.demo.api_secret}".encode()),
    "basic-decodes-to-non-ascii-key": lambda c: "Basic " + _b64("é\u202e:secret".encode()),
    "basic-decodes-to-nul-key": lambda c: "Basic " + _b64(b"\x00\x00:\x00"),
    "basic-decodes-to-latin1": lambda c: "Basic " + _b64(b"\xe9\xff:\xfe"),
    "scheme-non-ascii": lambda c: "Bäsic " + _b64(b"a:b"),
    "scheme-only-control": lambda c: "\x01\x02",
    "bearer-e-acute": lambda c: "Bearer é.é.é",
    "bearer-non-ascii-segment": lambda c: "Bearer eyJhbGciOiJSUzI1NiJ9.é.abc",
    "bearer-nul": lambda c: "Bearer \x00.\x00.\x00",
    "basic-oversized-100k": lambda c: "Basic " + "QUFB" * 25_000,
    "basic-oversized-key-9k": lambda c: "Basic " + _b64(b"k" * 9_000 + b":" + c.demo.api_secret.encode()),
    "bearer-oversized-100k": lambda c: "Bearer " + "a" * 100_000,
    "bearer-oversized-payload": lambda c: c.jwt({"pad": json.dumps("x" * 60_000)}),
}

CASES += [
    Case(1, name, authenticated, _with_authorization(value), 401, UNAUTHORIZED, check=challenges)
    for name, value in AUTHORIZATION_VALUES.items()
]

# --- finding 3 (and 9): validly signed JWTs with hostile claims -------------------------------

HUGE = "1" + "0" * 400
TIME_VALUES = {
    "1e400-digits": HUGE,
    "minus-1e400-digits": "-" + HUGE,
    "1e400": "1e400",
    "minus-1e400": "-1e400",
    "1e309": "1e309",
    "5001-digits": "9" * 5001,
    "string": json.dumps("1700000000"),
    "true": "true",
    "false": "false",
    "array": "[]",
    "object": "{}",
    "NaN": "NaN",
    "Infinity": "Infinity",
}


def _jwt_claims(claims: Mapping[str, str]) -> Builder:
    return _with_authorization(lambda c: c.jwt(claims))


CASES += [
    Case(3, f"jwt-{claim}-{label}", authenticated, _jwt_claims({claim: raw}), 401, UNAUTHORIZED, check=challenges)
    for claim in ("iat", "exp", "nbf")
    for label, raw in TIME_VALUES.items()
]
CASES += [
    Case(9, f"jwt-jti-{label}", authenticated, _jwt_claims({"jti": raw}), 401, UNAUTHORIZED, check=challenges)
    for label, raw in {
        "empty": '""',
        "blank": '"   "',
        "number": "123",
        "null": "null",
        "array": '["a"]',
        "object": '{"a":1}',
    }.items()
]


def _lifetime(name: str, default: timedelta) -> float:
    from chalicelib.api import auth

    return float(getattr(auth, name, default).total_seconds())


def _replayed(ctx: Ctx, route: Route) -> Request:
    """A token the demo already used once on this route (accepted then): sent again."""
    good = good_request(ctx, route)
    used = Request(good.method, good.path, {**good.headers, "Authorization": ctx.jwt({})}, good.body)
    status = ctx.use(used)
    assert 200 <= status < 300, f"the first use of the token was refused ({status})"
    return used


CASES += [
    # Written policy (docs/security.md): a token without exp lives LIFETIME_WITHOUT_EXP...
    Case(9, "jwt-without-exp-past-its-lifetime", authenticated,
         lambda ctx, route: _with_authorization(
             lambda c: c.jwt({"iat": c.timestamp(-_lifetime("LIFETIME_WITHOUT_EXP", timedelta(hours=24)) - 60)})
         )(ctx, route),
         401, UNAUTHORIZED, check=challenges),
    # ...and no token lives longer than MAX_LIFETIME, whatever its exp says.
    Case(9, "jwt-lifetime-over-the-maximum", authenticated,
         _with_authorization(
             lambda c: c.jwt({"exp": c.timestamp(_lifetime("MAX_LIFETIME", timedelta(hours=24)) + 60)})
         ),
         401, UNAUTHORIZED, check=challenges),
    # Each token once (DISPATCH_JWT_SINGLE_USE, which the suite's stack turns on).
    Case(9, "jwt-replayed", authenticated, _replayed, 401, UNAUTHORIZED, check=challenges),
]
CASES += [
    Case(9, f"jwt-application-id-{label}", authenticated, _jwt_claims({"application_id": raw}), 401, UNAUTHORIZED,
         check=challenges)
    for label, raw in {"number": "1", "nul": '"\\u0000"', "huge": json.dumps("a" * 10_000)}.items()
]

# --- finding 2: deeply nested bodies to every JSON route --------------------------------------

DEPTHS = (1_000, 10_000, 100_000)

def _documented_depth() -> int | None:
    try:
        from chalicelib.strict_json import MAX_DEPTH
    except ImportError:
        return None
    return int(MAX_DEPTH)


#: One past the parser's documented depth: refused as JSON, though Python's json would parse
#: it. Without a documented depth, 65, and validation may refuse it instead.
DOCUMENTED_DEPTH = _documented_depth()
SHALLOW_DEPTH = 65 if DOCUMENTED_DEPTH is None else DOCUMENTED_DEPTH + 1
SHALLOW_TYPES = (INVALID_JSON, INVALID_PARAMS) if DOCUMENTED_DEPTH is None else INVALID_JSON


def _client_body(body: bytes) -> Builder:
    return lambda ctx, route: send(route.method, route, ctx, client_headers(ctx, route), body)


CASES += [
    Case(2, f"array-nested-{depth}", client_json, _client_body(deep_array(depth)), 400, INVALID_JSON)
    for depth in DEPTHS
]
# An object costs 6 bytes a level: 10,000 levels stay under the client body limit (256 KiB).
CASES += [
    Case(2, f"object-nested-{depth}", client_json, _client_body(deep_object(depth)), 400, INVALID_JSON)
    for depth in (1_000, 10_000)
]
CASES += [
    Case(
        2,
        f"nested-{SHALLOW_DEPTH}",
        # Without a depth limit the sink would parse it, and drop it (204) as naming no dispatch.
        client_json if DOCUMENTED_DEPTH is not None else (lambda r: r.validated),
        _client_body(deep_array(SHALLOW_DEPTH)),
        400,
        SHALLOW_TYPES,
    ),
    Case(
        2,
        "deep-value-inside-a-valid-create-body",
        create,
        _client_body(raw_in(MESSENGER_TO_SMS, lambda b: b, "template", deep_array(100_000).decode())),
        400,
        INVALID_JSON,
    ),
]


def _aws_sms_unsigned(route: Route) -> Expect | None:
    # SNS's signature is inside the body: a body that does not parse carries none.
    return (401, SIGNATURE) if route.provider == "aws_sms" else None


for depth in (SHALLOW_DEPTH, *DEPTHS):
    CASES += [
        Case(
            2,
            f"unsigned-webhook-nested-{depth}",
            webhook,
            lambda ctx, route, d=depth: unsigned_webhook(route, ctx, deep_array(d)),
            401,
            SIGNATURE,
        ),
        Case(
            2,
            f"signed-webhook-nested-{depth}",
            webhook,
            lambda ctx, route, d=depth: signed_webhook(route, ctx, deep_array(d)),
            400,
            PAYLOAD,
        ),
    ]
CASES += [
    Case(
        2,
        "signed-webhook-object-nested-10000",
        webhook,
        lambda ctx, route: signed_webhook(route, ctx, deep_object(10_000)),
        400,
        PAYLOAD,
    ),
    # aws_sms: the raw deep body with SNS's headers, as if SNS had sent it: still unsigned.
    Case(
        2,
        "sns-headers-raw-deep-body",
        lambda r: r.webhook and r.provider == "aws_sms",
        lambda ctx, route: send("POST", route, ctx, webhook_headers(route, b"", True), deep_array(100_000)),
        401,
        SIGNATURE,
    ),
]

# --- finding 4: methods a path does not serve --------------------------------------------------

#: Methods tried on every path: the usual ones, those a gateway answers itself, and a made-up one.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "FOO")


def served(path: str) -> set[str]:
    return {method for p, method in app_routes() if p == path}


def _allow_lists(path: str) -> Callable[[Mapping[str, str], dict[str, Any]], None]:
    def check(headers: Mapping[str, str], _problem: dict[str, Any]) -> None:
        allow = header(headers, "Allow")
        assert allow is not None, "a 405 must carry Allow"
        assert {m.strip() for m in allow.split(",")} == served(path), allow

    return check


def _one_provider(route: Route) -> bool:
    """The webhook path's 405s are one view for every provider: they are sent to one."""
    return not route.fixed or route.provider == sorted(PROVIDERS)[0]


def _other_method(method: str) -> Builder:
    def build(ctx: Ctx, route: Route) -> Request:
        if route.path == WEBHOOK[0]:
            # A signed body the route would apply, so a method routed to it by mistake shows.
            body = PROVIDERS[route.provider].body
            if route.provider == "aws_sms":
                body = sns_envelope(route, json.loads(body)["Message"])
            return send(method, route, ctx, webhook_headers(route, body, signed=True), body)
        return good_request(ctx, route, method)

    return build


for method in METHODS:
    for path in sorted({r.path for r in ROUTES}):
        if method in served(path):
            continue
        CASES.append(
            Case(
                4,
                f"method-{method}",
                lambda r, p=path: r.path == p and r.method == sorted(served(p))[0] and _one_provider(r),
                _other_method(method),
                405,
                METHOD_NOT_ALLOWED,
                check=_allow_lists(path),
            )
        )

# --- finding 5: bodies over the limit ----------------------------------------------------------

TWENTY_MIB = 20 * 1024 * 1024


def webhook_limit(provider: str) -> int | None:
    """The body limit the webhook routes declare for `provider`, if they declare one."""
    from chalicelib.api import webhook_routes

    limits = getattr(webhook_routes, "MAX_BODY_BYTES", None)
    if isinstance(limits, Mapping):
        return int(limits.get(provider, getattr(webhook_routes, "DEFAULT_MAX_BODY_BYTES", 0))) or None
    return None


def _padded(payload: bytes, size: int) -> bytes:
    """`payload` (a JSON object) grown to exactly `size` bytes with trailing whitespace, which
    JSON ignores: a body that would be accepted but for its size."""
    return payload + b" " * max(0, size - len(payload))


def _over_limit(signed: bool, size: Callable[[Route], int]) -> Builder:
    def build(ctx: Ctx, route: Route) -> Request:
        payload = PROVIDERS[route.provider].body
        if route.provider == "aws_sms":
            body = _padded(sns_envelope(route, payload.decode()), size(route))
            return send("POST", route, ctx, webhook_headers(route, body, True), body)
        body = _padded(payload, size(route))
        return send("POST", route, ctx, webhook_headers(route, body, signed), body)

    return build


def _limit_plus_one(route: Route) -> int:
    limit = webhook_limit(route.provider)
    return TWENTY_MIB if limit is None else limit + 1


CASES += [
    Case(5, "signed-webhook-20MiB", webhook, _over_limit(True, lambda r: TWENTY_MIB), 413, TOO_LARGE),
    Case(5, "signed-webhook-limit-plus-one", webhook, _over_limit(True, _limit_plus_one), 413, TOO_LARGE),
    # Size may be checked before or after the signature: either refusal is right.
    Case(5, "unsigned-webhook-20MiB", webhook, _over_limit(False, lambda r: TWENTY_MIB), (413, 401),
         (TOO_LARGE, SIGNATURE)),
    Case(5, "client-body-limit-plus-one", client_json,
         lambda ctx, route: send(route.method, route, ctx, client_headers(ctx, route),
                                 _padded(good_request(ctx, route).body, body_module.MAX_BODY_BYTES + 1)),
         413, TOO_LARGE),
    Case(5, "client-body-20MiB", client_json,
         lambda ctx, route: send(route.method, route, ctx, client_headers(ctx, route),
                                 _padded(good_request(ctx, route).body, TWENTY_MIB)),
         413, TOO_LARGE),
]

# --- finding 6: duplicate keys -----------------------------------------------------------------


def _dup_key_names(key: str) -> Callable[[Mapping[str, str], dict[str, Any]], None]:
    def check(_headers: Mapping[str, str], problem: dict[str, Any]) -> None:
        assert key in problem["detail"], problem

    return check


CREATE_DUPLICATES: dict[str, tuple[Callable[[Any], dict], str, Any]] = {
    "top-level-template": (lambda b: b, "template", "failover"),
    "top-level-workflow": (lambda b: b, "workflow", []),
    "workflow-item-to": (lambda b: b["workflow"][0], "to", {"type": "messenger", "id": "2222222222222222"}),
    "failover-expiry-time": (lambda b: b["workflow"][0]["failover"], "expiry_time", 15),
    "content-text": (lambda b: b["workflow"][0]["message"]["content"], "text", "other"),
    "second-item-from-number": (lambda b: b["workflow"][1]["from"], "number", "447700900009"),
}
CASES += [
    Case(6, f"duplicate-{name}", create,
         lambda ctx, route, w=where, k=key, s=second: send(route.method, route, ctx, client_headers(ctx, route),
                                                          with_duplicate(MESSENGER_TO_SMS, w, k, s)),
         400, INVALID_JSON, check=_dup_key_names(key))
    for name, (where, key, second) in CREATE_DUPLICATES.items()
]
CASES += [
    Case(6, "duplicate-same-value", create,
         lambda ctx, route: send(route.method, route, ctx, client_headers(ctx, route),
                                 with_duplicate(MESSENGER_TO_SMS, lambda b: b["workflow"][0]["failover"],
                                                "expiry_time", 600)),
         400, INVALID_JSON, check=_dup_key_names("expiry_time")),
    Case(6, "duplicate-in-other-json-routes", lambda r: r.client_json and not r.create,
         lambda ctx, route: send(route.method, route, ctx, client_headers(ctx, route),
                                 with_duplicate(GOOD_BODIES[route.path], lambda b: b,
                                                next(iter(GOOD_BODIES[route.path])),
                                                next(iter(GOOD_BODIES[route.path].values())))),
         400, INVALID_JSON),
]


def _webhook_duplicate(ctx: Ctx, route: Route, signed: bool) -> Request:
    payload = json.loads(PROVIDERS[route.provider].body)
    if route.provider == "aws_sms":
        inner = json.loads(payload["Message"])
        first = next(iter(inner))
        text = with_duplicate(inner, lambda b: b, first, inner[first])
        if signed:
            return signed_webhook(route, ctx, text)
        # The envelope itself with a key twice: it no longer parses, so it is unsigned.
        envelope = with_duplicate(payload, lambda b: b, "Message", payload["Message"])
        return unsigned_webhook(route, ctx, envelope)
    first = next(iter(payload))
    body = with_duplicate(payload, lambda b: b, first, payload[first])
    return signed_webhook(route, ctx, body) if signed else unsigned_webhook(route, ctx, body)


CASES += [
    Case(6, "signed-webhook-duplicate-key", webhook, lambda c, r: _webhook_duplicate(c, r, True), 400, PAYLOAD),
    Case(6, "unsigned-webhook-duplicate-key", webhook, lambda c, r: _webhook_duplicate(c, r, False), 401,
         SIGNATURE),
]

# --- finding 7: control characters in text and ids; hostile path ids ---------------------------

TEXT_CONTROLS = {
    "bidi-override": "\u202e",
    "bidi-embedding": "\u202b",
    "nul": "\x00",
    "soh": "\x01",
    "backspace": "\x08",
    "vertical-tab": "\x0b",
    "form-feed": "\x0c",
    "escape": "\x1b",
    "unit-separator": "\x1f",
    "del": "\x7f",
    "c1-pad": "\x80",
    "c1-nel": "\x85",
    "c1-csi": "\x9b",
    "c1-apc": "\x9f",
}


def _text(index: int, char: str) -> Callable[[dict], None]:
    def change(body: dict) -> None:
        body["workflow"][index]["message"]["content"]["text"] = f"Hello{char}world"

    return change


for label, char in TEXT_CONTROLS.items():
    for index in (0, 1):
        CASES.append(
            Case(7, f"text-{label}-item-{index}", create, _client_body(create_body(_text(index, char))), 400,
                 INVALID_PARAMS, check=names(f"workflow[{index}].message.content.text"))
        )

#: Ids no channel's id can be: blank, whitespace, controls, bidi overrides.
BAD_IDS = {
    "blank": "",
    "space": " ",
    "tab": "\t",
    "nbsp": "\u00a0",
    "inner-space": "1111 2222",
    "leading-space": " 11112222",
    "newline": "11112222\n",
    "nul": "1111\x002222",
    "del": "1111\x7f",
    "c1": "1111\x85",
    "bidi-override": "\u202e11112222",
    "bidi-isolate": "1111\u20662222",
}
#: Messenger's page-scoped ids are digits: no '/' either.
BAD_MESSENGER_IDS = {**BAD_IDS, "path-traversal": "../../x", "slash": "1111/2222"}


def _address(index: int, end: str, name: str, value: str) -> Callable[[dict], None]:
    def change(body: dict) -> None:
        body["workflow"][index][end][name] = value

    return change


for label, value in BAD_MESSENGER_IDS.items():
    for end in ("to", "from"):
        CASES.append(
            Case(7, f"messenger-{end}-id-{label}", create, _client_body(create_body(_address(0, end, "id", value))),
                 400, INVALID_PARAMS, check=names(f"workflow[0].{end}.id"))
        )
for label, value in {**BAD_IDS, "path-traversal": "../../x"}.items():
    for end in ("to", "from"):
        if end == "from" and label == "inner-space":
            continue  # an SMS sender may be an alphanumeric sender id, and those hold spaces
        CASES.append(
            Case(7, f"sms-{end}-number-{label}", create,
                 _client_body(create_body(_address(1, end, "number", value))),
                 400, INVALID_PARAMS, check=names(f"workflow[1].{end}.number"))
        )

PATH_IDS = {
    "nul": "%00",
    "space": "%20",
    "inner-space": "a%20b",
    "300-chars": "a" * 300,
    "bidi-override": "%E2%80%AE" + "0" * 32,
    "traversal": "..%2F..%2Fx",
    "invalid-utf8": "%FF%FE",
    "control": "%01%1B",
}
ID_PARAMETERS = ("{dispatch_uuid}", "{message_uuid}")


def _path_id(value: str) -> Builder:
    def build(ctx: Ctx, route: Route) -> Request:
        good = good_request(ctx, route)
        path = route.path
        for parameter in ID_PARAMETERS:
            path = path.replace(parameter, value)
        return Request(good.method, path, good.headers, good.body)

    return build


CASES += [
    Case(7, f"path-id-{label}", lambda r: any(p in r.path for p in ID_PARAMETERS) and r.authenticated,
         _path_id(value), (404, 400), (NOT_FOUND, INVALID_PARAMS))
    for label, value in PATH_IDS.items()
]

# --- finding 8: numbers too long or too large --------------------------------------------------

BIG_NUMBERS = {
    "5001-digits": "9" * 5001,
    "4301-digits": "9" * 4301,
    "minus-5001-digits": "-" + "9" * 5001,
    "1e400": "1e400",
    "minus-1e400": "-1e400",
    "10-to-the-400": HUGE,
}
#: Runtime internals no answer may show (finding 8), checked on every case.
INTERNALS = ("sys.", "set_int_max_str_digits", "Traceback", 'File "', "site-packages", "chalicelib")


def _big_in_create(where: Callable[[Any], dict], key: str, raw: str) -> Builder:
    return _client_body(raw_in(MESSENGER_TO_SMS, where, key, raw))


VIBER_ITEM = {
    "from": {"type": "viber_service_msg", "id": "1111"},
    "to": {"type": "viber_service_msg", "number": "447700900000"},
    "message": {"content": {"type": "text", "text": "hi"}, "viber_service_msg": {"ttl": 600}},
}
BIG_PLACES: dict[str, tuple[Callable[[Any], dict], str]] = {
    "expiry-time": (lambda b: b["workflow"][0]["failover"], "expiry_time"),
    "text": (lambda b: b["workflow"][0]["message"]["content"], "text"),
    "template": (lambda b: b, "template"),
    "to-number": (lambda b: b["workflow"][1]["to"], "number"),
}
for label, raw in BIG_NUMBERS.items():
    for place, (where, key) in BIG_PLACES.items():
        CASES.append(Case(8, f"{place}-{label}", create, _big_in_create(where, key, raw), 400,
                          (INVALID_JSON, INVALID_PARAMS)))
    CASES += [
        Case(8, f"whole-body-{label}", lambda r: r.validated, _client_body(raw.encode()), 400, (INVALID_JSON, INVALID_PARAMS)),
        Case(8, f"viber-ttl-{label}", create,
             _client_body(raw_in({"template": "failover", "workflow": [VIBER_ITEM]},
                                 lambda b: b["workflow"][0]["message"]["viber_service_msg"], "ttl", raw)),
             400, (INVALID_JSON, INVALID_PARAMS)),
        Case(8, f"outage-seconds-{label}", lambda r: r.path == "/sandbox/callbacks/outage",
             _client_body(raw_in({"seconds": 60}, lambda b: b, "seconds", raw)), 400, (INVALID_JSON, INVALID_PARAMS)),
        Case(8, f"query-limit-{label}", lambda r: r.key == ("/v0.1/callbacks", "GET"),
             lambda ctx, route, v=raw: send("GET", route, ctx, client_headers(ctx, route),
                                            path=f"/v0.1/callbacks?state=dead&limit={v}"),
             400, INVALID_PARAMS),
        Case(8, f"signed-webhook-number-{label}", webhook,
             lambda ctx, route, v=raw: signed_webhook(route, ctx, f'{{"timestamp": {v}}}'.encode()), 400, PAYLOAD),
    ]


def pairs() -> list[tuple[Case, Route]]:
    """Every case with every route it applies to."""
    return [(case, route) for case in CASES for route in ROUTES if case.applies(route)]
