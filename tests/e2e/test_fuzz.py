"""The fuzz run (`scripts/fuzz.py`) at a size CI can afford, in its three parts: schemathesis
over the served OpenAPI document against a real local stack; the webhook routes on a stack with
every provider configured, signed, unsigned and badly signed, with generated and hostile bodies;
and raw requests at the framework's edges (every method on every path, unknown paths, header
sizes and bytes, bad framing). Every answer must match the document (for the edges, the rules in
scripts/fuzz_edges.py) and none may be a 5xx. `make fuzz` runs the same with 1,000 requests
and a fresh seed.

The fuzzer itself is held to account too: against stubs that answer wrongly, it must fail.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scripts.fuzz import Caller, Fuzzer, Known, edge_targets, fuzz, fuzz_edges, fuzz_webhooks, webhook_stack
from scripts.fuzz_edges import EdgeCases, Target, routes_of
from scripts.fuzz_webhooks import RAW_BODIES, WebhookSecrets, hostile_bodies
from scripts.local_stack_process import running_local_stack

REQUESTS = 150
WEBHOOK_REQUESTS = 80
EDGE_REQUESTS = 150
SEED = 20261124
DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "chalicelib/api/openapi.json").read_text())
WEBHOOKS = "/webhooks/{provider}/{kind}"
OPERATIONS = {
    f"{method.upper()} {path}"
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if path != WEBHOOKS
}
#: Routes that take an id: the requests naming a real one must reach the handler and succeed.
BY_ID = (
    "GET /v0.1/dispatch/{dispatch_uuid}",
    "GET /v0.1/dispatch/{dispatch_uuid}/callbacks",
    "POST /v0.1/dispatch/{dispatch_uuid}/callbacks/replay",
    "POST /sandbox/messages/{message_uuid}/status",
    "GET /sandbox/callbacks",
)


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    with running_local_stack(tmp_path_factory.mktemp("fuzz")) as stack:
        yield stack


@pytest.fixture(scope="module")
def secrets() -> WebhookSecrets:
    return WebhookSecrets.fresh()


@pytest.fixture(scope="module")
def hooks_stack(tmp_path_factory, secrets):
    with webhook_stack(tmp_path_factory.mktemp("fuzz-webhooks"), secrets) as stack:
        yield stack


def test_generated_requests_get_only_documented_answers_and_no_server_error(local_stack):
    report = fuzz(local_stack.base_url, local_stack.demo, REQUESTS, SEED)

    assert report.failures == [], "\n\n".join(report.failures)
    assert report.total >= REQUESTS
    assert set(report.per_operation) == OPERATIONS
    assert not any(status >= 500 for status in report.statuses)
    assert report.per_variant["no-credentials"] > 0 and report.per_variant["bad-credentials"] > 0
    for label in BY_ID:
        assert any(200 <= status < 300 for status in report.statuses_by_operation[label]), label
    assert report.statuses_by_operation["POST /v0.1/dispatch"][202] > 0
    assert report.statuses_by_operation["POST /v0.1/dispatch"][415] > 0


class _Stub(BaseHTTPRequestHandler):
    """A service gone wrong, with documented problem+json bodies: the document's own route
    fails with a 500, the ids the fuzzer knows are not found, and valid credentials are refused."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/v0.1/openapi.json"):
            status = 500
        elif "/d-1" in self.path or "/m-1" in self.path or "dispatch_uuid=d-1" in self.path:
            status = 404
        else:
            status = 401
        body = json.dumps({"type": "urn:x", "title": "t", "detail": "d", "instance": "i"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_fuzzer_fails_a_service_that_answers_wrongly(stub):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    caller = Caller(basic=("key", "secret"), application_id="app", private_key=pem)
    known = Known(dispatches=["d-1"], messages=["m-1"])

    report = Fuzzer(schemathesis.openapi.from_dict(DOCUMENT), stub, caller, known, SEED).run(20)

    assert report.total >= 20
    assert any("Server error" in f for f in report.failures)  # documented on every route, still a failure
    assert any("valid credentials answered 401" in f for f in report.failures)
    assert any("naming an existing resource answered 404, not 2xx" in f for f in report.failures)
    assert not any(f.startswith("[variant no-credentials]") for f in report.failures)


def test_webhook_routes_of_every_provider_answer_as_documented_signed_or_not(hooks_stack, secrets):
    report = fuzz_webhooks(hooks_stack.base_url, secrets, WEBHOOK_REQUESTS, SEED)

    assert report.failures == [], "\n\n".join(report.failures)
    assert report.total >= WEBHOOK_REQUESTS
    assert {"signed", "unsigned", "wrong-signature", "handshake", "hostile"} <= set(report.per_variant)
    statuses = report.statuses_by_operation[f"POST {WEBHOOKS}"]
    assert statuses[200] > 0 and statuses[401] > 0 and statuses[400] > 0
    assert report.statuses_by_operation[f"GET {WEBHOOKS}"][200] > 0  # Meta's handshake, with our token
    assert not any(status >= 500 for status in report.statuses)


def test_the_framework_edges_answer_problems_and_never_5xx(local_stack, hooks_stack):
    report = fuzz_edges(edge_targets(local_stack, hooks_stack), EDGE_REQUESTS, SEED)

    assert report.failures == [], "\n\n".join(sorted(report.first_failure.values()))
    assert set(report.per_operation) == set(EdgeCases.KINDS)  # each kind sent at least once
    assert report.statuses_by_operation["method"][405] > 0
    assert report.statuses_by_operation["unknown-path"][404] > 0
    assert not any(status >= 500 for status in report.statuses)


def test_every_hostile_body_kind_is_sent_in_the_ci_run():
    sent = {body.kind for body in hostile_bodies(random.Random(SEED), WEBHOOK_REQUESTS // 2)}
    assert set(RAW_BODIES) <= sent


class _Careless(BaseHTTPRequestHandler):
    """http.server as it comes: 200 text/plain to any GET, whatever the path, and its own 501
    HTML page for every other method."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def test_the_edge_checks_fail_a_server_that_answers_like_a_bare_framework():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Careless)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        report = fuzz_edges([Target(base, routes_of(DOCUMENT))], 30, SEED)
    finally:
        server.shutdown()
        server.server_close()

    kinds = " | ".join(report.failure_kinds)
    assert "server error" in kinds  # 501 for TRACE, FOO, ...
    assert "not problem+json" in kinds
    assert any(kind.startswith("unknown-path: ") for kind in report.failure_kinds)  # answered, not 404


def test_the_webhook_checks_fail_a_service_that_refuses_every_signature(stub):
    report = Fuzzer(
        schemathesis.openapi.from_dict(DOCUMENT),
        stub,
        Caller(("k", "s"), "a", ""),
        Known(),
        SEED,
        WebhookSecrets.fresh(),
    ).run(20)

    assert any("a validly signed body answered 401" in f for f in report.failures)
