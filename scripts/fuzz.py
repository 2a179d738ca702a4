"""Fuzz the API against local stacks, and hold every answer to the document and to issue 14's rules.

    .venv/bin/python scripts/fuzz.py --requests 1000 [--seed N] [--only document,webhooks,edges]
    make fuzz REQUESTS=10000 SEED=N

It starts two local stacks (`scripts/local_stack_process.py`) in a temporary folder: the stack
`make run` serves, and one whose channels go to the five real providers with webhook secrets made
for the run (scripts/fuzz_webhooks.py). `--requests` is shared out (`SHARES`) over three parts:

- document: schemathesis generates requests for every operation of the served document but the
  webhooks, until its share was sent. Each answer goes through the checks in `CHECKS`; a 5xx, or
  a status, content type, header or body the document does not give for that operation, is a
  failure. Requests come in variants (`VARIANTS`): most carry the demo application's valid
  credentials (Basic, some Bearer JWT), positive (schema-valid) or negative (schema-violating);
  some carry no or garbage credentials and must get a 401; and on the routes that take an id,
  some name real dispatches and messages (made before fuzzing, and every one a fuzzed create
  made) and must succeed.
- webhooks: the same for `/webhooks/{provider}/{kind}` on the webhook stack (`WEBHOOK_VARIANTS`):
  generated bodies validly signed (never a 401), unsigned or signed with another secret (always
  401), and Meta's handshake; then hostile bodies (deep nesting, duplicate keys, NaN, long
  numbers, bad UTF-8, 2 MiB, a 5,000-status batch, mutated real payloads), signed or not.
- edges: raw requests at the framework's edges (scripts/fuzz_edges.py): every method on every
  path, unknown paths, header sizes and bytes, bad framing; checked by `fuzz_edges.check`.

The report gives status counts per part and operation, then every kind of failure with the
first request that showed it (a curl, or the raw bytes for nc; credentials are filtered: put
`-u "$AUTH"` in place of that header). The exit code is 1 on any failure.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import signal
import string
import sys
import tempfile
import time
import uuid
import zlib
from base64 import b64encode
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a plain script: the repository (chalicelib) and this folder (a sibling) go on the path.
for folder in (ROOT, ROOT / "scripts"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import hypothesis  # noqa: E402
import jwt  # noqa: E402
import requests  # noqa: E402
import schemathesis  # noqa: E402
from fuzz_edges import EdgeCases, Target, check, routes_of, send  # noqa: E402
from fuzz_webhooks import (  # noqa: E402
    KINDS,
    PROVIDERS,
    SIGNABLE,
    TIME_IN_BODY,
    WEBHOOK_PATH,
    Signer,
    WebhookSecrets,
    hostile_bodies,
)
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from local_stack_process import running_local_stack  # noqa: E402
from schemathesis import Case, CheckFunction, GenerationMode, Response  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.core.result import Ok  # noqa: E402
from schemathesis.schemas import APIOperation, BaseSchema  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

DOCUMENT_PATH = "/v0.1/openapi.json"
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
)
#: schemathesis checks left out, and why; printed with every run.
EXCLUDED_CHECKS = {
    "positive_data_acceptance": "schema-valid is not valid: numbers must be possible E.164 numbers, "
    "content types depend on the channel, from.type must equal to.type, cursors must be issued; "
    "these rules are in the document's prose and refused with its 400. The known-ids variant "
    "asserts acceptance instead, where the request is known to be good",
    "ignored_auth": "its probes would be uncounted requests; the no-credentials and "
    "bad-credentials variants assert the 401 for every operation instead",
    "negative_data_rejection on POST /sandbox/callbacks": "the sink records any JSON about a "
    "known dispatch and drops the rest with 204, by design, so tests can see malformed callbacks",
    "not_a_server_error on POST /sandbox/callbacks, during an outage this run staged": "answering "
    "the staged status (a documented problem, 503 by default) is what the sink is asked to do",
    "missing_required_header, unsupported_method": "they judge only schemathesis' coverage-phase "
    "cases, which this runner does not generate (no header parameters are declared)",
    "use_after_free, ensure_resource_availability": "no delete operation, and no links: every "
    "dispatch a fuzzed create makes is read back at its Location here instead",
    "max_response_time": "no time limit is part of the document; benchmarks measure speed",
}
#: What the front answers on any route before the route reads anything: 431 (documented on every
#: operation) and 413 (on those that take a body).
FRONT_REFUSALS = ("413", "431")
SINK = "POST /sandbox/callbacks"
OUTAGE = "POST /sandbox/callbacks/outage"
OUTAGE_PROBLEM = "urn:dispatch:problem:sandbox-outage"
CREATES = ("POST /v0.1/dispatch", "POST /beta/workflows")
MAX_KNOWN = 8
MAX_FAILURES_SHOWN = 10
REQUEST_TIMEOUT = 30
MAX_ROUNDS = 25


@dataclass(frozen=True)
class Variant:
    name: str
    mode: GenerationMode
    credentials: str  #: "basic", "bearer", "none" or "garbage"
    weight: float
    known: bool = False  #: ids in the path or query name resources that exist
    examples: bool = False  #: the document's own request examples
    wrong_media_type: bool = False  #: the body is sent under a Content-Type other than JSON
    #: Webhook variants only: how the body is signed ("valid", "wrong" or "none"; see
    #: fuzz_webhooks.WebhookSecrets.sign) on POST; on GET, "handshake" for Meta's handshake with
    #: our verify token, "guess" for one with whatever was generated.
    signature: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.credentials in ("basic", "bearer")


POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
VARIANTS = (
    Variant("valid", POSITIVE, "basic", 4),
    Variant("invalid-data", NEGATIVE, "basic", 3),
    Variant("bearer", POSITIVE, "bearer", 1),
    Variant("known-ids", POSITIVE, "basic", 3, known=True),
    Variant("examples", POSITIVE, "basic", 0.5, examples=True),
    Variant("wrong-media-type", POSITIVE, "basic", 0.5, wrong_media_type=True),
    Variant("no-credentials", POSITIVE, "none", 0.5),
    Variant("bad-credentials", POSITIVE, "garbage", 0.5),
)
#: For the webhook routes, on the webhook stack: the provider's signature instead of ours.
WEBHOOK_VARIANTS = (
    Variant("signed", POSITIVE, "none", 3, signature="valid"),
    Variant("signed-invalid-data", NEGATIVE, "none", 2, signature="valid"),
    Variant("unsigned", POSITIVE, "none", 1, signature="none"),
    Variant("wrong-signature", POSITIVE, "none", 1, signature="wrong"),
    Variant("handshake", POSITIVE, "none", 0.5, signature="handshake"),
    Variant("handshake-guess", POSITIVE, "none", 0.5, signature="guess"),
)

#: Authorization values that prove nothing: wrong Basic pairs, unsigned or self-signed tokens,
#: other schemes, bytes that are not base64.
_TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "+/=._-", min_size=1, max_size=60)
GARBAGE_AUTHORIZATION = st.one_of(
    _TOKEN.map(lambda text: "Basic " + _b64(f"{text}:{text[::-1]}")),
    _TOKEN.map(lambda text: "Basic " + text),
    _TOKEN.map(lambda text: "Bearer " + text),
    _TOKEN.map(lambda text: "Bearer " + jwt.encode({"application_id": text, "iat": 0}, "k" * 32)),
    _TOKEN.map(lambda text: "Digest " + text),
    st.just("Basic"),
    st.just("Bearer "),
)

#: Content-Type values a JSON body must be refused under (415).
WRONG_MEDIA_TYPES = st.sampled_from(
    [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/jsonp",
        "json",
    ]
)


def _b64(text: str) -> str:
    return b64encode(text.encode()).decode()


@dataclass
class Caller:
    """The demo application's credentials, as each variant sends them."""

    basic: tuple[str, str]
    application_id: str
    private_key: str

    def authorization(self, kind: str, garbage: str) -> str | None:
        if kind == "basic":
            return "Basic " + _b64(":".join(self.basic))
        if kind == "bearer":
            now, jti = int(time.time()), str(uuid.uuid4())
            claims = {"application_id": self.application_id, "iat": now, "jti": jti}
            return "Bearer " + jwt.encode(claims, self.private_key, algorithm="RS256")
        return garbage if kind == "garbage" else None


@dataclass
class Known:
    """Resources that exist: requests naming them (with valid credentials) must succeed."""

    dispatches: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def add_dispatch(self, dispatch_uuid: str) -> None:
        if dispatch_uuid not in self.dispatches and len(self.dispatches) < MAX_KNOWN:
            self.dispatches.append(dispatch_uuid)


@dataclass
class Report:
    seed: int
    per_operation: Counter[str] = field(default_factory=Counter)
    per_variant: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    statuses_by_operation: dict[str, Counter[int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    #: Failures by kind (a check's title, or what a variant promised), and the first of each.
    failure_kinds: Counter[str] = field(default_factory=Counter)
    first_failure: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Requests generated from the document; read-backs of created dispatches are extra."""
        return sum(n for variant, n in self.per_variant.items() if variant != READ_BACK.name)

    def record(self, label: str, variant: str, status: int) -> None:
        self.per_operation[label] += 1
        self.per_variant[variant] += 1
        self.statuses[status] += 1
        self.statuses_by_operation.setdefault(label, Counter())[status] += 1

    def fail(self, kind: str, message: str) -> None:
        self.failures.append(message)
        self.failure_kinds[kind] += 1
        self.first_failure.setdefault(kind, message)

    def merge(self, other: Report) -> None:
        self.per_operation.update(other.per_operation)
        self.per_variant.update(other.per_variant)
        self.statuses.update(other.statuses)
        for label, statuses in other.statuses_by_operation.items():
            self.statuses_by_operation.setdefault(label, Counter()).update(statuses)
        self.failures += other.failures
        self.failure_kinds.update(other.failure_kinds)
        for kind, message in other.first_failure.items():
            self.first_failure.setdefault(kind, message)


class Fuzzer:
    """Runs the variants over every operation of `schema` until `target` requests were sent."""

    def __init__(
        self,
        schema: BaseSchema,
        base_url: str,
        caller: Caller,
        known: Known,
        seed: int,
        webhook_secrets: WebhookSecrets | None = None,
    ):
        self.schema = schema
        # Invalid data the front refuses before any route (a request line or headers over the
        # limit, a body past it) is refused as surely as by the route's own 400.
        rejection = schema.config.checks.negative_data_rejection
        rejection.expected_statuses = [*rejection.expected_statuses, *FRONT_REFUSALS]
        #: With secrets, the webhook routes are fuzzed (WEBHOOK_VARIANTS); without, the others.
        self.webhook_secrets = webhook_secrets
        self.variants = WEBHOOK_VARIANTS if webhook_secrets is not None else VARIANTS
        self.base_url = base_url
        self.caller = caller
        self.known = known
        self.report = Report(seed)
        self.session = requests.Session()
        self.operations = _operations(schema)
        self.outage_status: int | None = None  #: what the sink answers while the staged outage lasts

    def run(self, target: int) -> Report:
        suites = [(op, v) for op in self.operations for v in self.variants if self._applies(op, v)]
        weights = sum(v.weight for _, v in suites)
        for round_ in range(MAX_ROUNDS):
            missing = target - self.report.total
            if missing <= 0:
                break
            for operation, variant in suites:
                budget = max(1, round(missing * variant.weight / weights))
                self._run_suite(operation, variant, budget, round_)
        return self.report

    def _applies(self, operation: APIOperation, variant: Variant) -> bool:
        if _is_webhook(operation) != (variant.signature is not None):
            return False
        if variant.signature is not None:
            return (variant.signature in ("handshake", "guess")) == (operation.method.upper() == "GET")
        secured = _secured(operation)
        if not variant.authenticated:
            return secured
        if variant.credentials == "bearer" and not secured:
            return False
        if variant.known:
            return _names_a_resource(operation)
        if variant.examples:
            return operation.label in CREATES
        if variant.wrong_media_type:
            return operation.body is not None and len(operation.body) > 0
        return True

    def _run_suite(self, operation: APIOperation, variant: Variant, budget: int, round_: int) -> None:
        strategy = self._strategy(operation, variant)
        if strategy is None:
            return
        suite_seed = zlib.crc32(f"{self.report.seed}:{round_}:{operation.label}:{variant.name}".encode())
        # Drawn only where it is sent, so an operation with few distinct cases runs out of them
        # instead of repeating one with a different unused value.
        extra = st.just("")
        if variant.credentials == "garbage":
            extra = GARBAGE_AUTHORIZATION
        elif variant.wrong_media_type:
            extra = WRONG_MEDIA_TYPES

        @hypothesis.seed(suite_seed)
        @settings(
            max_examples=budget,
            database=None,
            deadline=None,
            derandomize=False,
            phases=[Phase.generate],  # nothing is raised, so there is nothing to shrink
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, extra=extra)
        def exchange(case: Case, extra: str) -> None:
            self._exchange(operation, variant, case, extra)

        # Unsatisfiable: no case of this kind exists, e.g. schema-violating input to a route taking none.
        with contextlib.suppress(hypothesis.errors.Unsatisfiable):
            exchange()

    def _strategy(self, operation: APIOperation, variant: Variant) -> st.SearchStrategy[Case] | None:
        if variant.signature == "handshake":
            assert self.webhook_secrets is not None
            mode = {"hub.mode": "subscribe", "hub.verify_token": self.webhook_secrets.verify_token}
            return operation.as_strategy(generation_mode=variant.mode, query=mode)
        if variant.examples:
            examples = operation.get_strategies_from_examples()
            return st.one_of(examples) if examples else None
        if not variant.known:
            return operation.as_strategy(generation_mode=variant.mode)
        pinned = [_pin(operation, variant.mode, resource) for resource in self._known_for(operation)]
        return st.one_of(pinned) if pinned else None

    def _known_for(self, operation: APIOperation) -> list[str]:
        return self.known.messages if "{message_uuid}" in operation.path else self.known.dispatches

    def _exchange(self, operation: APIOperation, variant: Variant, case: Case, extra: str) -> None:
        """Sends `case` as `variant` says, with `extra` as its garbage credentials or media type."""
        for name in [name for name in case.headers or {} if name.lower() == "authorization"]:
            del case.headers[name]  # only the variant decides what credentials go
        authorization = self.caller.authorization(variant.credentials, extra)
        headers = {"Authorization": authorization} if authorization is not None else {}
        if variant.wrong_media_type:
            headers["Content-Type"] = extra
        signer: dict[str, Any] = {}
        if self.webhook_secrets is not None and variant.signature in ("valid", "wrong", "none"):
            provider = str((case.path_parameters or {}).get("provider", ""))
            signer["auth"] = Signer(self.webhook_secrets, provider, variant.signature)
        try:
            response = case.call(
                base_url=self.base_url,
                session=self.session,
                headers=headers,
                timeout=REQUEST_TIMEOUT,
                **signer,
            )
        except requests.RequestException as exc:
            self._fail(
                variant,
                f"{operation.label}: no answer ({type(exc).__name__})\n{_curl(case, None)}",
                "no answer",
            )
            return
        self.report.record(operation.label, variant.name, response.status_code)
        staged = self._staged_outage(operation, response)
        try:
            case.validate_response(response, checks=_checks(operation, staged), headers=headers)
        except FailureGroup as group:
            kind = "; ".join(sorted({failure.title for failure in group.exceptions}))
            self._fail(variant, str(group), f"{kind} ({operation.label})")
        for problem in _expectations(operation, variant, case, response, staged):
            self._fail(
                variant,
                f"{operation.label}: {problem}\n{_curl(case, response)}",
                f"{problem} ({operation.label})",
            )
        if operation.label == OUTAGE and response.status_code == 202:
            self.outage_status = response.json()["status"]
        if operation.label in CREATES and response.status_code == 202:
            self._read_back(response)

    def _staged_outage(self, operation: APIOperation, response: Response) -> bool:
        """Whether the sink answered as the outage this run staged last: refusing is its job then.
        An outage problem with another status is left to the checks and fails them."""
        if operation.label != SINK or response.status_code != self.outage_status:
            return False
        try:
            return bool(response.json().get("type") == OUTAGE_PROBLEM)
        except ValueError:
            return False

    def _read_back(self, created: Response) -> None:
        """A dispatch a fuzzed create made is readable at its Location, and joins the known ones."""
        body = created.json()
        dispatch_uuid = body.get("dispatch_uuid") or body.get("workflow_uuid")
        operation = self.schema["/v0.1/dispatch/{dispatch_uuid}"]["GET"]
        case = operation.Case(path_parameters={"dispatch_uuid": dispatch_uuid})
        self._exchange(operation, READ_BACK, case, "")
        self.known.add_dispatch(dispatch_uuid)

    def _fail(self, variant: Variant, message: str, kind: str) -> None:
        self.report.fail(kind, f"[variant {variant.name}] {message}")


#: How a created dispatch is read back: valid credentials, and it must be found.
READ_BACK = Variant("read-back", POSITIVE, "basic", 0, known=True)


def _checks(operation: APIOperation, staged_outage: bool) -> list[CheckFunction]:
    if operation.label != SINK:
        return list(CHECKS)
    # The sink keeps any JSON; a 5xx is its job while an outage this run staged lasts.
    left_out = {negative_data_rejection, not_a_server_error} if staged_outage else {negative_data_rejection}
    return [check for check in CHECKS if check not in left_out]


def _expectations(
    operation: APIOperation, variant: Variant, case: Case, response: Response, staged_outage: bool
) -> Iterator[str]:
    """What the variant promises beyond the document's own checks."""
    status = response.status_code
    if staged_outage:
        return
    if variant.signature is not None:
        yield from _webhook_expectations(variant, case, response)
        return
    if not variant.authenticated and _secured(operation) and status != 401:
        yield f"{variant.credentials} credentials answered {status}, not 401"
    if variant.authenticated and status == 401:
        yield "valid credentials answered 401"
    if variant.known and variant.mode is POSITIVE and not 200 <= status < 300:
        yield f"a request naming an existing resource answered {status}, not 2xx"
    # A path naming no resource may be refused for that first (the ids here are generated).
    refusals = (415, 404) if "{" in operation.path else (415,)
    if variant.wrong_media_type and status not in refusals:
        yield f"a body that is not declared JSON answered {status}, not {'/'.join(map(str, refusals))}"


def _webhook_expectations(variant: Variant, case: Case, response: Response) -> Iterator[str]:
    status = response.status_code
    provider = str((case.path_parameters or {}).get("provider", ""))
    known = provider in PROVIDERS and (case.path_parameters or {}).get("kind") in KINDS
    if variant.signature in ("none", "wrong") and known and status not in (401, 413):
        yield f"a body signed {variant.signature} answered {status}, not 401"
    # Viber's freshness check reads the body's own time: a signed stale body is refused too.
    signable = provider in SIGNABLE and provider not in TIME_IN_BODY
    if variant.signature == "valid" and known and status == 401 and signable:
        yield "a validly signed body answered 401"
    if variant.signature == "handshake" and known and variant.mode is POSITIVE:
        challenge = (case.query or {}).get("hub.challenge")
        # The document's pattern for the challenge: anything else is never echoed.
        echoed = isinstance(challenge, str) and CHALLENGE.fullmatch(challenge) is not None
        if provider in ("whatsapp", "messenger") and echoed:
            if status != 200 or response.text != challenge:
                yield f"Meta's handshake with our verify token answered {status}, not 200 and the challenge"
        elif status != 403:
            yield f"a handshake that cannot be answered answered {status}, not 403"


CHALLENGE = re.compile(r"[0-9A-Za-z_-]{1,128}")


def _is_webhook(operation: APIOperation) -> bool:
    return operation.path == WEBHOOK_PATH


def _operations(schema: BaseSchema) -> list[APIOperation]:
    found = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise RuntimeError(f"the document has an operation schemathesis cannot read: {result.err()}")
        found.append(result.ok())
    return found


def _secured(operation: APIOperation) -> bool:
    return operation.definition.raw.get("security") != []


def _names_a_resource(operation: APIOperation) -> bool:
    return "{" in operation.path or operation.label in ("GET /sandbox/callbacks", SINK)


def _pin(operation: APIOperation, mode: GenerationMode, resource: str) -> st.SearchStrategy[Case]:
    """Cases of `operation` naming `resource` where it takes an id (path, query or sink body)."""
    if "{message_uuid}" in operation.path:
        return operation.as_strategy(generation_mode=mode, path_parameters={"message_uuid": resource})
    if "{dispatch_uuid}" in operation.path:
        return operation.as_strategy(generation_mode=mode, path_parameters={"dispatch_uuid": resource})
    if operation.label == SINK:
        return operation.as_strategy(generation_mode=mode).map(_about(resource))
    return operation.as_strategy(generation_mode=mode, query={"dispatch_uuid": resource})


def _about(dispatch_uuid: str) -> Callable[[Case], Case]:
    """Points a generated callback body at a known dispatch, in whichever shape it has."""

    def point(case: Case) -> Case:
        body = case.body
        if isinstance(body, dict):
            links = body.get("_links")
            workflow = links.get("workflow") if isinstance(links, dict) else None
            if isinstance(workflow, dict):
                workflow["dispatch_uuid"] = dispatch_uuid
            else:
                body["dispatch_uuid"] = dispatch_uuid
        return case

    return point


def _curl(case: Case, response: Response | None) -> str:
    headers = dict(response.request.headers) if response is not None else None
    return "Reproduce with (credentials filtered):\n    " + case.as_curl_command(headers=headers)


def seed_known(base_url: str, caller: Caller, schema: BaseSchema) -> Known:
    """Dispatches made from the document's examples, with one failed over by a `rejected`, so
    the id-taking routes have real dispatches, messages and callbacks to answer about."""
    auth = caller.basic
    known = Known()
    body = schema.raw_schema["components"]["requestBodies"]["CreateDispatch"]["content"]["application/json"]
    for example in body["examples"].values():
        created = requests.post(f"{base_url}/v0.1/dispatch", json=example["value"], auth=auth, timeout=30)
        created.raise_for_status()
        known.add_dispatch(created.json()["dispatch_uuid"])
    first = known.dispatches[0]
    message = _messages(base_url, auth, first)[0]
    requests.post(
        f"{base_url}/sandbox/messages/{message}/status", json={"status": "rejected"}, auth=auth, timeout=30
    ).raise_for_status()
    for dispatch_uuid in known.dispatches:
        known.messages.extend(_messages(base_url, auth, dispatch_uuid))
    return known


def _messages(base_url: str, auth: tuple[str, str], dispatch_uuid: str) -> list[str]:
    found = requests.get(f"{base_url}/v0.1/dispatch/{dispatch_uuid}", auth=auth, timeout=30)
    found.raise_for_status()
    # A message not sent yet has its id already, but no channel could report on it.
    return [m["message_uuid"] for m in found.json()["messages"] if m["sent_at"] is not None]


def fuzz(base_url: str, demo: dict[str, Any], target: int, seed: int) -> Report:
    """Fuzz a running stack whose demo application is `demo` (as in demo-app.json)."""
    served = requests.get(base_url + DOCUMENT_PATH, timeout=30)
    served.raise_for_status()
    # Loaded from its content rather than its URL: schemathesis leaves out the operation a
    # schema was fetched from, and the document's own route is fuzzed like the others.
    schema = schemathesis.openapi.from_dict(served.json())
    caller = Caller(
        basic=(demo["api_key"], demo["api_secret"]),
        application_id=demo["application_id"],
        private_key=Path(demo["private_key_path"]).read_text(),
    )
    known = seed_known(base_url, caller, schema)
    return Fuzzer(schema, base_url, caller, known, seed).run(target)


def fuzz_webhooks(base_url: str, webhook_secrets: WebhookSecrets, target: int, seed: int) -> Report:
    """Fuzz the webhook routes of a stack configured with `webhook_secrets` (`webhook_stack`):
    half the requests generated from the document, signed or not, half hostile bodies."""
    served = requests.get(base_url + DOCUMENT_PATH, timeout=30)
    served.raise_for_status()
    schema = schemathesis.openapi.from_dict(served.json())
    nobody = Caller(basic=("", ""), application_id="", private_key="")
    fuzzer = Fuzzer(schema, base_url, nobody, Known(), seed, webhook_secrets)
    report = fuzzer.run(max(1, target - target // 2))
    operation = schema[WEBHOOK_PATH]["POST"]
    rng = random.Random(seed)
    session = requests.Session()
    for hostile in hostile_bodies(rng, target // 2):
        url = f"{base_url}/webhooks/{hostile.provider}/{hostile.hook}"
        headers = webhook_secrets.sign(hostile.provider, hostile.body, hostile.mode)
        label = f"hostile {hostile.kind} to {hostile.provider}, {hostile.mode} signature"
        reproduce = f"{label}: POST {url} with {len(hostile.body)} bytes, starting {hostile.body[:60]!r}"
        started = time.monotonic()
        try:
            answer = session.post(url, data=hostile.body, headers=headers, timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            report.fail(
                f"no answer to a hostile {hostile.kind} body", f"[hostile] {reproduce}: {type(exc).__name__}"
            )
            continue
        seconds = time.monotonic() - started
        report.record(operation.label, "hostile", answer.status_code)
        if answer.status_code not in hostile.expected():
            allowed = "/".join(map(str, hostile.expected()))
            kind = f"hostile {hostile.kind}, {hostile.mode} signature: {answer.status_code}, not {allowed}"
            report.fail(kind, f"[hostile] {reproduce}\nanswered {answer.status_code}: {answer.text[:300]}")
        if hostile.time_limit is not None and seconds > hostile.time_limit:
            report.fail(
                f"hostile {hostile.kind}: slower than {hostile.time_limit} s",
                f"[hostile] {reproduce}: {seconds:.1f} s",
            )
        case = operation.Case(
            path_parameters={"provider": hostile.provider, "kind": hostile.hook},
            media_type="application/json",
        )
        try:
            case.validate_response(answer, checks=[c for c in CHECKS if c is not negative_data_rejection])
        except FailureGroup as group:
            kind = "; ".join(sorted({failure.title for failure in group.exceptions}))
            report.fail(f"{kind} (hostile {hostile.kind})", f"[hostile] {reproduce}\n{group}")
    return report


def fuzz_edges(targets: list[Target], count: int, seed: int) -> Report:
    """`count` raw requests at the framework's edges (scripts/fuzz_edges.py) over `targets`."""
    report = Report(seed)
    for case in EdgeCases(targets, seed).cases(count):
        answer = send(case)
        family = next(k for k in (*EdgeCases.KINDS, EdgeCases.INCOMPLETE) if case.kind.startswith(k))
        report.record(family, "edge", answer.status if answer.status is not None else 0)  # 0: no answer
        for kind, detail in check(case, answer):
            label = f"{case.kind}: {kind}"
            if case.kind == "method":
                label = (
                    f"{case.method} on a path not serving it: {kind}"
                    if case.expected
                    else f"{case.method}: {kind}"
                )
            report.fail(
                label,
                f"[edge {case.kind}] {kind} {detail}\n    {case.describe()}\n    got: {answer.status} "
                f"{answer.headers.get('content-type', '')} {answer.body[:200]!r}",
            )
    return report


@contextlib.contextmanager
def webhook_stack(state: Path, webhook_secrets: WebhookSecrets) -> Iterator[Any]:
    """A local stack with every provider configured with `webhook_secrets`, whose outbound HTTP
    goes nowhere (its proxy is a closed loopback port)."""
    with running_local_stack(state, None, **webhook_secrets.environ(_closed_port())) as stack:
        yield stack


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: How `--requests` is shared: the document's operations, the webhooks, the framework's edges.
SHARES = {"document": 0.6, "webhooks": 0.2, "edges": 0.2}


def split(total: int, parts: list[str]) -> dict[str, int]:
    weight = sum(SHARES[part] for part in parts)
    return {part: max(1, round(total * SHARES[part] / weight)) for part in parts}


def run(total: int, seed: int, parts: list[str], state: Path) -> dict[str, Report]:
    """Start the stacks the parts need, fuzz them, stop them; a report per part."""
    budget = split(total, parts)
    reports: dict[str, Report] = {}
    webhook_secrets = WebhookSecrets.fresh()
    with contextlib.ExitStack() as stacks:
        main_stack = stacks.enter_context(running_local_stack(state / "main"))
        print(f"local stack at {main_stack.base_url}; fuzzing the document at {DOCUMENT_PATH}", flush=True)
        hooks = None
        if "webhooks" in parts or "edges" in parts:
            hooks = stacks.enter_context(webhook_stack(state / "webhooks", webhook_secrets))
            print(f"webhook stack (every provider configured) at {hooks.base_url}", flush=True)
        if "document" in parts:
            reports["document"] = fuzz(main_stack.base_url, main_stack.demo, budget["document"], seed)
        if "webhooks" in parts:
            assert hooks is not None
            reports["webhooks"] = fuzz_webhooks(hooks.base_url, webhook_secrets, budget["webhooks"], seed)
        if "edges" in parts:
            assert hooks is not None
            reports["edges"] = fuzz_edges(edge_targets(main_stack, hooks), budget["edges"], seed)
    return reports


def edge_targets(main_stack: Any, hooks: Any) -> list[Target]:
    """The API's paths on the main stack (with the demo's Basic credentials on some requests),
    the webhook path on the webhook stack."""
    document = requests.get(main_stack.base_url + DOCUMENT_PATH, timeout=30).json()
    basic = "Basic " + _b64(":".join(main_stack.basic_auth))
    api = {path: methods for path, methods in routes_of(document).items() if path != WEBHOOK_PATH}
    return [
        Target(main_stack.base_url, api, basic),
        Target(hooks.base_url, routes_of(document, [WEBHOOK_PATH])),
    ]


def print_report(reports: dict[str, Report], elapsed: float) -> None:
    """The run's figures, one section per part, then every kind of failure with its first
    reproducer; the same layout at any size, so two runs compare line by line."""
    seed = next(iter(reports.values())).seed
    total = sum(report.total for report in reports.values())
    print(f"\nseed {seed}: {total} requests in {elapsed:.1f} s (the stacks' start and stop included)")
    print("checks: " + ", ".join(check.__name__ for check in CHECKS) + "; fuzz_edges.check for the edges")
    print("not run:")
    for name, why in EXCLUDED_CHECKS.items():
        print(f"  {name}: {why}")
    everything = Report(seed)
    for part, report in reports.items():
        everything.merge(report)
        read_back = report.per_variant[READ_BACK.name]
        extra = f" (and {read_back} reads of the dispatches they created)" if read_back else ""
        print(f"\n== {part}: {report.total} requests{extra}, {len(report.failures)} failures")
        print("requests per operation (status: count; 0 is no answer):")
        width = max((len(label) for label in report.per_operation), default=0)
        for label, count in sorted(report.per_operation.items()):
            statuses = " ".join(f"{s}:{n}" for s, n in sorted(report.statuses_by_operation[label].items()))
            print(f"  {label:<{width}} {count:>5}   {statuses}")
        print("requests per variant: " + ", ".join(f"{v} {n}" for v, n in sorted(report.per_variant.items())))
        print("status codes: " + ", ".join(f"{s}: {n}" for s, n in sorted(report.statuses.items())))
    print("\n== all parts")
    print("status codes: " + ", ".join(f"{s}: {n}" for s, n in sorted(everything.statuses.items())))
    server_errors = sum(n for status, n in everything.statuses.items() if status >= 500)
    print(f"server errors: {server_errors}")
    print(f"failures: {len(everything.failures)} of {len(everything.failure_kinds)} kinds")
    for kind, count in sorted(everything.failure_kinds.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {count:>5}  {kind}")
    for kind, count in sorted(everything.failure_kinds.items(), key=lambda item: (-item[1], item[0])):
        print(f"\n--- {kind} ({count}), first:\n{everything.first_failure[kind]}")


PARTS = tuple(SHARES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="at least this many requests, all parts")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run (its seed is printed)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    args = parser.parse_args(argv)
    parts = [part for part in args.only.split(",") if part]
    if not parts or any(part not in PARTS for part in parts):
        parser.error(f"--only takes some of {','.join(PARTS)}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    # Stopped (SIGTERM) mid-run, the stacks are still stopped on the way out, not left orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(
        f"seed {seed}, {args.requests} requests: "
        + ", ".join(f"{p} {n}" for p, n in split(args.requests, parts).items())
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as state:
        (Path(state) / "main").mkdir()
        (Path(state) / "webhooks").mkdir()
        reports = run(max(1, args.requests), seed, parts, Path(state))
    print_report(reports, time.monotonic() - started)
    return 1 if any(report.failures for report in reports.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
