"""The local stack's HTTP front (scripts/local_front.py) against raw sockets: what it answers
before and around the app, with a real stack in a child process, on loopback only.

Issue 14, finding 10 (connections queued, sizes checked before reading, malformed requests
answered, slow bodies cut off, a drain on SIGTERM) and the local side of finding 4 (every answer
of the front is problem+json: 431, 404, 405).
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from scripts.local_stack_process import LocalStack, running_local_stack
from tests.e2e.test_api import MESSENGER_TO_SMS

#: The stack's whole-request deadline in these tests (the default is 10 s).
REQUEST_SECONDS = 2
MAX_BODY_BYTES = 10 * 1024 * 1024
PROBLEM = "application/problem+json"
ERRORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("front")
    log = folder / "stack.log"
    with running_local_stack(
        folder, output=log, DISPATCH_LOCAL_REQUEST_SECONDS=str(REQUEST_SECONDS)
    ) as running:
        yield running
    assert running.exit_code == 0
    # Nothing a client sent here was the server's fault.
    text = log.read_text()
    assert '"level":"ERROR"' not in text.replace(" ", "") and "Traceback" not in text, text[-3000:]


def _port(stack: LocalStack) -> int:
    return int(stack.base_url.rsplit(":", 1)[1])


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def problem(self) -> dict:
        assert self.headers["Content-Type"] == PROBLEM, (self.status, self.headers, self.body[:200])
        return json.loads(self.body)


def _read_answer(sock: socket.socket) -> Answer:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return Answer(response.status, response.headers, response.read())


def _exchange(stack: LocalStack, raw: bytes, timeout: float = 5) -> Answer:
    with socket.create_connection(("127.0.0.1", _port(stack)), timeout=timeout) as sock:
        sock.sendall(raw)
        return _read_answer(sock)


def _vm(pid: int, field_name: str) -> int:
    """A memory figure of the process from /proc (kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(field_name)


def test_a_hundred_simultaneous_connections_are_all_answered(stack):
    count = 100
    start = threading.Barrier(count)
    statuses: list[int | str] = []
    lock = threading.Lock()

    def one() -> None:
        start.wait(timeout=10)
        try:
            answer = _exchange(stack, b"GET /v0.1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n", timeout=20)
            outcome: int | str = answer.status
        except OSError as exc:
            outcome = type(exc).__name__
        with lock:
            statuses.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [200] * count, statuses


def test_keep_alive_answers_are_not_held_back_by_nagle():
    """Headers and body go out in two writes; with Nagle's algorithm on, a keep-alive client's
    delayed ACK held every answer about 40 ms. Checked on the connection the front accepted."""
    from scripts.local_front import LocalFront

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    front = LocalFront(app, "127.0.0.1", 0)
    front.start()
    try:
        server = front._server
        with socket.create_connection(("127.0.0.1", server.effective_port), timeout=5) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.1 200")
            accepted = list(server.active_channels.values())  # the connection is kept alive
            assert accepted
            for channel in accepted:
                assert channel.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        front.shutdown()


def test_a_content_length_past_the_limit_is_refused_at_once_without_reading(stack):
    before = _vm(stack.pid, "VmRSS")
    began = time.perf_counter()
    answer = _exchange(
        stack, b"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\nx"
    )
    elapsed = time.perf_counter() - began
    # 413, not the 408 of a body awaited until the deadline: the body was never waited for.
    assert answer.status == 413
    assert answer.problem()["type"] == "urn:dispatch:problem:payload-too-large"
    assert answer.headers["Connection"] == "close"
    assert _vm(stack.pid, "VmRSS") - before < 10 * 1024  # kB: nothing was reserved for it
    print(f"1e9 Content-Length refused in {elapsed * 1000:.1f} ms")


def test_a_150_mib_body_is_refused_before_it_is_read(stack):
    total = 150 * 1024 * 1024
    peak_before = _vm(stack.pid, "VmHWM")
    with socket.create_connection(("127.0.0.1", _port(stack)), timeout=5) as sock:
        sock.sendall(f"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n".encode())
        answer = _read_answer(sock)  # before a byte of the body: the headers are enough
        chunk, sent = b"x" * 65536, 0
        try:
            while sent < total:
                sent += sock.send(chunk)
        except OSError:  # reset or timed out: the server reads no more of it
            pass
    assert answer.status == 413
    assert answer.problem()["type"] == "urn:dispatch:problem:payload-too-large"
    assert sent < 16 * 1024 * 1024, sent  # what loopback's socket buffers took, at most
    growth = _vm(stack.pid, "VmHWM") - peak_before
    assert growth < 10 * 1024, growth  # kB
    print(f"150 MiB body: {sent} bytes left the client; server peak RSS grew {growth} kB")


def test_a_body_of_the_limit_is_read_and_one_byte_more_is_not(stack):
    auth = "Basic " + base64.b64encode(":".join(stack.basic_auth).encode()).decode()
    head = "POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\n"
    at_limit = _exchange(
        stack, (head.format(auth) + f"Content-Length: {MAX_BODY_BYTES}\r\n\r\n").encode() + b" " * MAX_BODY_BYTES
    )
    # Past the front, the app's own (smaller) limit answers.
    assert at_limit.status == 413 and at_limit.problem()["detail"] != ""
    assert at_limit.headers["Connection"] != "close"
    over = _exchange(stack, (head.format(auth) + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n").encode())
    assert over.status == 413 and over.headers["Connection"] == "close"


MALFORMED = {
    "content-length not a number": b"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "negative content-length": b"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "bad request line": b"GET\r\nHost: x\r\n\r\n",
    "two Host headers": b"GET /v0.1/openapi.json HTTP/1.1\r\nHost: x\r\nHost: evil.example\r\n\r\n",
    "no Host in HTTP/1.1": b"GET /v0.1/openapi.json HTTP/1.1\r\n\r\n",
    "chunked and Content-Length": b"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "bad chunk size": b"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "unsupported transfer-encoding": b"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    "space in a header name": b"GET /v0.1/openapi.json HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
    "NUL in a header value": b"GET /v0.1/openapi.json HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "bare LF in a header": b"GET /v0.1/openapi.json HTTP/1.1\r\nHost: x\r\nX-A: a\nX-B: b\r\n\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_gets_400_problem(stack, raw):
    answer = _exchange(stack, raw)
    assert answer.status == 400
    problem = answer.problem()
    assert problem["type"] == "urn:dispatch:problem:malformed-request"
    assert answer.headers["Connection"] == "close"


def test_an_oversized_header_gets_431_problem(stack):
    answer = _exchange(stack, b"GET /v0.1/openapi.json HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    assert answer.status == 431
    assert answer.problem()["type"] == "urn:dispatch:problem:header-too-large"


@pytest.mark.parametrize("method", ["GET", "POST", "TRACE", "CONNECT", "BREW"])
@pytest.mark.parametrize("path", ["/", "/v0.1/nope", "/v0.1/dispatch/x/y/z"])
def test_an_unknown_path_gets_404_problem_whatever_the_method(stack, method, path):
    answer = _exchange(stack, f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    assert answer.status == 404
    problem = answer.problem()
    assert problem["type"] == "urn:dispatch:problem:not-found"
    assert path not in problem["detail"].replace("/v0.1/openapi.json", "")


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW", "OPTIONS", "PUT", "get", "Post"])
def test_a_method_a_known_path_does_not_serve_gets_405_problem_with_allow(stack, method):
    answer = _exchange(stack, f"{method} /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    assert answer.status == 405
    assert answer.problem()["type"] == "urn:dispatch:problem:method-not-allowed"
    assert answer.headers["Allow"] == "POST"


def test_expect_continue_is_answered_on_a_request_without_body(stack):
    answer = _exchange(stack, b"GET /v0.1/openapi.json HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
    assert answer.status == 200


def test_expect_continue_past_the_limit_is_refused_without_inviting_the_body(stack):
    with socket.create_connection(("127.0.0.1", _port(stack)), timeout=5) as sock:
        sock.sendall(
            b"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        answer = _read_answer(sock)
    assert answer.status == 413  # not 100 Continue
    assert answer.problem()["type"] == "urn:dispatch:problem:payload-too-large"


def test_a_body_that_stops_coming_gets_408_problem_at_the_deadline(stack):
    began = time.monotonic()
    answer = _exchange(
        stack, b"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}", timeout=4 * REQUEST_SECONDS
    )
    waited = time.monotonic() - began
    assert answer.status == 408
    assert answer.problem()["type"] == "urn:dispatch:problem:request-timeout"
    assert answer.headers["Connection"] == "close"
    # The upper bound only says it was the deadline that answered, not the test's own timeout.
    assert REQUEST_SECONDS <= waited < 4 * REQUEST_SECONDS, waited


def test_a_body_sent_a_byte_at_a_time_is_cut_off_at_the_deadline(stack):
    """Never silent for long, so only a whole-request deadline stops it (waitress's own timeout
    counts silence)."""
    with socket.create_connection(("127.0.0.1", _port(stack)), timeout=0.2) as sock:
        sock.sendall(b"POST /v0.1/dispatch HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        began = time.monotonic()
        ended_after, received = None, b""
        while time.monotonic() - began < 4 * REQUEST_SECONDS:
            try:
                sock.send(b"x")
                received = sock.recv(4096)
            except TimeoutError:
                continue  # nothing to read yet: keep trickling
            except OSError:
                pass  # reset: cut off
            ended_after = time.monotonic() - began
            break
    assert ended_after is not None and REQUEST_SECONDS <= ended_after < 4 * REQUEST_SECONDS, ended_after
    # Answered 408 (or, had a trickled byte been left unread, reset): never served.
    assert received == b"" or received.startswith(b"HTTP/1.1 408 "), received[:100]
    print(f"a trickled body was cut off after {ended_after:.1f} s")


def test_every_type_the_front_answers_is_documented():
    documented = set(re.findall(r"`urn:dispatch:problem:([a-z-]+)`", ERRORS_DOC.read_text()))
    answered = {"malformed-request", "payload-too-large", "header-too-large", "request-timeout", "not-found",
                "unavailable", "internal-error"}
    assert answered <= documented


# --- the drain on SIGTERM ----------------------------------------------------------------------


@dataclass
class Sent:
    at: float  #: when the request was sent (monotonic)
    wall: float  #: the same, as time.time(), to compare with the stack's log
    status: int | None = None  #: None: the connection closed before any answer
    dispatch_uuid: str | None = None
    problem_type: str | None = None
    connection: str | None = None


@dataclass
class Worker:
    """One keep-alive connection creating dispatches back to back until the server ends it."""

    port: int
    auth: tuple[str, str]
    sent: list[Sent] = field(default_factory=list)

    def run(self, stop_at: float) -> None:
        body = json.dumps(MESSENGER_TO_SMS)
        token = base64.b64encode(":".join(self.auth).encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            while time.monotonic() < stop_at:
                record = Sent(time.monotonic(), time.time())
                self.sent.append(record)
                try:
                    connection.request("POST", "/v0.1/dispatch", body, headers)
                    response = connection.getresponse()
                    payload = json.loads(response.read())
                except (OSError, http.client.HTTPException):
                    return  # closed before an answer: fine, nothing was promised
                record.status, record.connection = response.status, response.headers["Connection"]
                if response.status == 202:
                    record.dispatch_uuid = payload["dispatch_uuid"]
                else:
                    record.problem_type = payload.get("type")
                    return
        finally:
            connection.close()


def test_sigterm_drains_what_is_in_flight_and_answers_nothing_it_will_not_keep(tmp_path):
    log = tmp_path / "stack.log"
    with running_local_stack(tmp_path / "state", output=log) as stack:
        workers = [Worker(_port(stack), stack.basic_auth) for _ in range(8)]
        stop_at = time.monotonic() + 30
        threads = [threading.Thread(target=w.run, args=(stop_at,)) for w in workers]
        for thread in threads:
            thread.start()
        while sum(len(w.sent) for w in workers) < 40 and time.monotonic() < stop_at:
            time.sleep(0.01)
        signalled = time.monotonic()
        os.kill(stack.pid, signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=40)
        last_answer = max(r.at for w in workers for r in w.sent)
    assert stack.exit_code == 0
    records = [r for w in workers for r in w.sent]
    accepted = [r for r in records if r.status == 202]
    refused = [r for r in records if r.status not in (202, None)]

    # Every connection ended by the server, with a 503 problem and Connection: close, or closed.
    assert all(w.sent[-1].status != 202 for w in workers)
    assert all(
        (r.status, r.problem_type, r.connection) == (503, "urn:dispatch:problem:unavailable", "close")
        for r in refused
    ), refused
    # Once the server refused one request, none sent after that got a 202.
    if refused:
        first_refusal = min(r.at for r in refused)
        assert not [r for r in accepted if r.at > first_refusal]

    # Every 202 is a dispatch whose first message was sent before the front stopped (and so before
    # the emulated AWS went away).
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    stopped = next((i for i, line in enumerate(lines) if line.get("message") == "local front stopped"), None)
    assert stopped is not None, "the front never reported its drain"
    stopped_at = datetime.strptime(lines[stopped]["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z").timestamp()
    assert not [r for r in accepted if r.wall > stopped_at]
    sent_before = {
        line.get("dispatch_uuid")
        for line in lines[:stopped]
        if line.get("message") == "message sent" and line.get("step_index") == 0
    }
    assert {r.dispatch_uuid for r in accepted} <= sent_before
    drain = lines[stopped]
    assert drain["complete"] is True
    print(
        f"drain: {len(accepted)} accepted, {len(refused)} refused 503, "
        f"{sum(1 for r in records if r.status is None)} closed unanswered; drain {drain['drain_ms']} ms "
        f"({drain['in_flight']} in flight); last request sent {last_answer - signalled:.2f} s after SIGTERM"
    )
