"""schemathesis over the served OpenAPI document (`scripts/fuzz.py`), at a size CI can afford:
against a real local stack, every answer must match the document and none may be a 5xx. `make
fuzz` runs the same with 1,000 requests and a fresh seed.

The fuzzer itself is held to account too: against a stub that answers wrongly, it must fail.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scripts.fuzz import Caller, Fuzzer, Known, fuzz
from scripts.local_stack_process import running_local_stack

REQUESTS = 150
SEED = 20261124
DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "chalicelib/api/openapi.json").read_text())
OPERATIONS = {f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item}
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
