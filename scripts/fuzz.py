"""Fuzz the API with schemathesis against a local stack, and hold every answer to the document.

    .venv/bin/python scripts/fuzz.py --requests 1000 [--seed N]     # or: make fuzz REQUESTS=1000

It starts the local stack (`scripts/local_stack_process.py`) in a temporary folder, loads the
OpenAPI document the stack serves at /v0.1/openapi.json, and has schemathesis generate requests
for every operation in it until at least `--requests` were sent. Each answer goes through the
checks in `CHECKS`; a 5xx, or a status, content type, header or body the document does not
give for that operation, is a failure, printed with a curl that reproduces it (its credentials
are filtered: put `-u "$AUTH"` in place of that header). The exit code is 1 on any failure.

Requests come in variants (`VARIANTS`): most carry the demo application's valid credentials
(Basic, some Bearer JWT), positive (schema-valid) or negative (schema-violating); some carry no
or garbage credentials and must get a 401; and on the routes that take an id, some name real
dispatches and messages (made before fuzzing, and every one a fuzzed create made) and must
succeed. The `/webhooks/*` routes are not in the document (each provider signs its own payload
shape, not described there), so nothing is generated for them; their signatures are tested in
tests/webhooks.
"""
from __future__ import annotations

import argparse
import contextlib
import random
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

    @property
    def total(self) -> int:
        """Requests generated from the document; read-backs of created dispatches are extra."""
        return sum(n for variant, n in self.per_variant.items() if variant != READ_BACK.name)

    def record(self, label: str, variant: str, status: int) -> None:
        self.per_operation[label] += 1
        self.per_variant[variant] += 1
        self.statuses[status] += 1
        self.statuses_by_operation.setdefault(label, Counter())[status] += 1


class Fuzzer:
    """Runs the variants over every operation of `schema` until `target` requests were sent."""

    def __init__(self, schema: BaseSchema, base_url: str, caller: Caller, known: Known, seed: int):
        self.schema = schema
        self.base_url = base_url
        self.caller = caller
        self.known = known
        self.report = Report(seed)
        self.session = requests.Session()
        self.operations = _operations(schema)
        self.outage_status: int | None = None  #: what the sink answers while the staged outage lasts

    def run(self, target: int) -> Report:
        suites = [(op, v) for op in self.operations for v in VARIANTS if self._applies(op, v)]
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
        try:
            response = case.call(
                base_url=self.base_url, session=self.session, headers=headers, timeout=REQUEST_TIMEOUT
            )
        except requests.RequestException as exc:
            self._fail(variant, f"{operation.label}: no answer ({type(exc).__name__})\n{_curl(case, None)}")
            return
        self.report.record(operation.label, variant.name, response.status_code)
        staged = self._staged_outage(operation, response)
        try:
            case.validate_response(response, checks=_checks(operation, staged), headers=headers)
        except FailureGroup as group:
            self._fail(variant, str(group))
        for problem in _expectations(operation, variant, response.status_code, staged):
            self._fail(variant, f"{operation.label}: {problem}\n{_curl(case, response)}")
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

    def _fail(self, variant: Variant, message: str) -> None:
        self.report.failures.append(f"[variant {variant.name}] {message}")


#: How a created dispatch is read back: valid credentials, and it must be found.
READ_BACK = Variant("read-back", POSITIVE, "basic", 0, known=True)


def _checks(operation: APIOperation, staged_outage: bool) -> list[CheckFunction]:
    if operation.label != SINK:
        return list(CHECKS)
    # The sink keeps any JSON; a 5xx is its job while an outage this run staged lasts.
    left_out = {negative_data_rejection, not_a_server_error} if staged_outage else {negative_data_rejection}
    return [check for check in CHECKS if check not in left_out]


def _expectations(
    operation: APIOperation, variant: Variant, status: int, staged_outage: bool
) -> Iterator[str]:
    """What the variant promises beyond the document's own checks."""
    if staged_outage:
        return
    if not variant.authenticated and _secured(operation) and status != 401:
        yield f"{variant.credentials} credentials answered {status}, not 401"
    if variant.authenticated and status == 401:
        yield "valid credentials answered 401"
    if variant.known and variant.mode is POSITIVE and not 200 <= status < 300:
        yield f"a request naming an existing resource answered {status}, not 2xx"
    if variant.wrong_media_type and status != 415:
        yield f"a body that is not declared JSON answered {status}, not 415"


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


def print_report(report: Report, elapsed: float) -> None:
    read_back = report.per_variant[READ_BACK.name]
    print(f"seed {report.seed}: {report.total} generated requests in {elapsed:.1f} s (stack start and stop")
    print(f"included), and {read_back} reads of the dispatches they created")
    print("checks: " + ", ".join(check.__name__ for check in CHECKS))
    print("not run:")
    for name, why in EXCLUDED_CHECKS.items():
        print(f"  {name}: {why}")
    print("requests per operation (status: count):")
    width = max(len(label) for label in report.per_operation)
    for label, count in sorted(report.per_operation.items()):
        statuses = " ".join(f"{s}:{n}" for s, n in sorted(report.statuses_by_operation[label].items()))
        print(f"  {label:<{width}} {count:>5}   {statuses}")
    print("requests per variant: " + ", ".join(f"{v} {n}" for v, n in sorted(report.per_variant.items())))
    print("status codes: " + ", ".join(f"{s}: {n}" for s, n in sorted(report.statuses.items())))
    print(f"failures: {len(report.failures)}")
    for failure in report.failures[:MAX_FAILURES_SHOWN]:
        print("\n" + failure)
    if len(report.failures) > MAX_FAILURES_SHOWN:
        print(f"\n... and {len(report.failures) - MAX_FAILURES_SHOWN} more")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="at least this many generated requests")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run (its seed is printed)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as state, running_local_stack(Path(state)) as stack:
        print(f"local stack at {stack.base_url}; fuzzing the document at {DOCUMENT_PATH}")
        report = fuzz(stack.base_url, stack.demo, max(1, args.requests), seed)
    print_report(report, time.monotonic() - started)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
