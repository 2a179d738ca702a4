"""HttpCallbackTransport: one signed attempt, its outcome as an AttemptResult, never an exception.

Requests go through a real `requests.Session` with a scripted transport adapter mounted, so what
is checked is what would go on the wire (the prepared body and headers), and the session's own
behaviour (redirects, URL validation) is the real one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
from datetime import datetime, timedelta, timezone

import jwt
import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from chalicelib.adapters.callback_signing import key_id, verify
from chalicelib.adapters.callback_transport import HttpCallbackTransport
from chalicelib.domain.application import Application
from chalicelib.domain.callbacks import (
    Attempt,
    AttemptResult,
    CallbackKind,
    CallbackRecord,
    OutboxEntry,
)

NOW = datetime(2026, 11, 24, 6, 22, 36, tzinfo=timezone.utc)
SECRET = "signature-secret-" + "x" * 32
SECRET_REF = "dispatch/app-1/signature"
STATUS_URL = "https://client.example/status"
INBOUND_URL = "https://client.example/inbound"
EVENT_ID = "7b0d7f3e-51a3-5f0c-9d1e-2f3a4b5c6d7e"
# Serialised by the service when the callback was decided; the transport must send these bytes.
BODY = json.dumps(
    {
        "message_uuid": "m0",
        "status": "delivered",
        "to": {"type": "sms", "number": "447700900000"},
        "_links": {"workflow": {"dispatch_uuid": "d-1", "href": "/v0.1/dispatch/d-1"}},
        "note": "café",
    },
    separators=(",", ":"),
    ensure_ascii=False,
)
#: Body text that must never reach a log line.
BODY_TEXT = ("447700900000", "café", '"status":"delivered"')


class Monotonic:
    """A settable monotonic clock; the adapter moves it on by how long each request takes."""

    def __init__(self) -> None:
        self.value = 1_000.0

    def __call__(self) -> float:
        return self.value


class ScriptedAdapter(BaseAdapter):
    """Stands where urllib3 would: keeps each prepared request, answers from a script.

    A script step is a status code, `(status, headers)`, or an exception to raise."""

    def __init__(self, monotonic: Monotonic, *script, takes: float = 0.0) -> None:
        super().__init__()
        self.monotonic = monotonic
        self.script = list(script)
        self.takes = takes
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[object] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append(request)
        self.timeouts.append(timeout)
        self.monotonic.value += self.takes
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        status, headers = step if isinstance(step, tuple) else (step, {})
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        response.raw = io.BytesIO(b"")
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


class FakeSecrets:
    def __init__(self, values: dict[str, str] | None = None, error: Exception | None = None):
        self.values = {SECRET_REF: SECRET} if values is None else values
        self.error = error
        self.requested: list[str] = []

    def get(self, name: str) -> str:
        self.requested.append(name)
        if self.error is not None:
            raise self.error
        return self.values[name]

    def put(self, name: str, value: str) -> None:
        self.values[name] = value


def _app(status_url: str | None = STATUS_URL, inbound_url: str | None = None) -> Application:
    return Application(
        application_id="app-1",
        name="Test",
        api_key="key-1",
        api_secret_hash="0" * 64,
        public_key_pem="",
        signature_secret_ref=SECRET_REF,
        status_url=status_url,
        created_at=NOW,
        inbound_url=inbound_url,
    )


def _record(kind: CallbackKind = CallbackKind.MESSAGE_STATUS, seq: int = 3) -> CallbackRecord:
    entry = OutboxEntry(seq=seq, event_id=EVENT_ID, kind=kind, decided_at=NOW, body=BODY)
    return CallbackRecord.from_outbox("d-1", "app-1", entry)


class Harness:
    def __init__(self, *script, secrets: FakeSecrets | None = None, takes: float = 0.0, **kwargs):
        self.monotonic = Monotonic()
        self.adapter = ScriptedAdapter(self.monotonic, *script, takes=takes)
        self.session = requests.Session()
        self.session.mount("https://", self.adapter)
        self.session.mount("http://", self.adapter)
        self.secrets = secrets or FakeSecrets()
        self.now = NOW
        self.transport = HttpCallbackTransport(
            self.session, self.secrets, clock=lambda: self.now, monotonic=self.monotonic, **kwargs
        )

    def attempt(self, application: Application | None = None, record: CallbackRecord | None = None):
        return self.transport.attempt(application or _app(), record or _record())

    @property
    def only_request(self) -> requests.PreparedRequest:
        (request,) = self.adapter.sent
        return request


def _claims(request: requests.PreparedRequest) -> dict:
    token = request.headers["Authorization"].removeprefix("Bearer ")
    return jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_iat": False})


# --- what is sent -------------------------------------------------------------------------------


def test_a_2xx_answer_is_one_post_of_the_records_exact_bytes():
    h = Harness(204)

    result = h.attempt()

    assert result.delivered and result.status_code == 204 and result.error is None
    request = h.only_request
    assert request.method == "POST" and request.url == STATUS_URL
    assert request.body == BODY.encode("utf-8")  # the stored bytes, UTF-8, not re-serialised
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "dispatch-callbacks/1"
    assert h.adapter.timeouts == [(3.05, 5)]


def test_the_timeout_is_the_one_configured():
    h = Harness(200, timeout=(1.0, 2.5))
    h.attempt()
    assert h.adapter.timeouts == [(1.0, 2.5)]


def test_the_signature_verifies_and_binds_the_exact_body():
    h = Harness(200)
    h.attempt()

    request = h.only_request
    auth, body = request.headers["Authorization"], request.body
    assert auth.startswith("Bearer ")
    assert verify(auth, body, SECRET, NOW)
    claims = _claims(request)
    assert claims["payload_hash"] == hashlib.sha256(BODY.encode("utf-8")).hexdigest()
    assert claims["application_id"] == "app-1" and claims["api_key"] == "key-1"
    assert not verify(auth, body + b" ", SECRET, NOW)
    assert not verify(auth, body, "another-secret-" + "y" * 32, NOW)


def test_event_id_and_sequence_go_in_headers_and_in_the_signed_claims():
    h = Harness(200)
    h.attempt(record=_record(seq=3))

    request = h.only_request
    assert request.headers["X-Dispatch-Event-Id"] == EVENT_ID
    assert request.headers["X-Dispatch-Sequence"] == "3"
    claims = _claims(request)
    assert (claims["event_id"], claims["seq"]) == (EVENT_ID, 3)


def test_every_callback_says_which_secret_signed_it():
    h = Harness(200)
    h.attempt()

    request = h.only_request
    token = request.headers["Authorization"].removeprefix("Bearer ")
    assert request.headers["X-Dispatch-Signature-Key"] == key_id(SECRET)
    assert jwt.get_unverified_header(token)["kid"] == key_id(SECRET)


def test_the_attempt_header_counts_the_attempts_already_recorded():
    first = Harness(200)
    first.attempt(record=_record())
    assert first.only_request.headers["X-Dispatch-Attempt"] == "1"

    earlier = (Attempt(NOW, 503), Attempt(NOW + timedelta(seconds=8), None, "timeout"))
    third = Harness(200)
    third.attempt(record=dataclasses.replace(_record(), attempts=earlier))
    assert third.only_request.headers["X-Dispatch-Attempt"] == "3"


def test_the_secret_is_read_by_the_applications_reference():
    h = Harness(200)
    h.attempt()
    assert h.secrets.requested == [SECRET_REF]


def test_each_attempt_is_signed_afresh_at_its_own_time():
    # A retry hours later must not carry the first attempt's token: receivers reject stale ones.
    h = Harness(503, 200)
    h.attempt()
    h.now = NOW + timedelta(hours=2)
    h.attempt()

    first, second = h.adapter.sent
    assert first.body == second.body
    assert first.headers["Authorization"] != second.headers["Authorization"]
    assert _claims(second)["iat"] == int(h.now.timestamp())
    assert verify(second.headers["Authorization"], second.body, SECRET, h.now)
    assert not verify(first.headers["Authorization"], first.body, SECRET, h.now)
    assert [r.headers["X-Dispatch-Event-Id"] for r in h.adapter.sent] == [EVENT_ID, EVENT_ID]


def test_a_redirect_is_reported_not_followed():
    # A followed redirect would turn the POST into a GET and drop the body.
    h = Harness((302, {"Location": "https://elsewhere.example/"}), 200)

    result = h.attempt()

    assert result == AttemptResult(status_code=302, duration_ms=0)
    assert len(h.adapter.sent) == 1


# --- where it goes ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [CallbackKind.MESSAGE_STATUS, CallbackKind.FINAL_REPORT])
def test_status_callbacks_go_to_the_status_url(kind):
    h = Harness(200)
    h.attempt(_app(inbound_url=INBOUND_URL), _record(kind))
    assert h.only_request.url == STATUS_URL


def test_an_inbound_record_goes_to_the_inbound_url_signed_the_same_way():
    h = Harness(200)

    result = h.attempt(_app(inbound_url=INBOUND_URL), _record(CallbackKind.INBOUND))

    assert result.delivered
    request = h.only_request
    assert request.url == INBOUND_URL
    assert verify(request.headers["Authorization"], request.body, SECRET, NOW)


@pytest.mark.parametrize(
    ("application", "kind", "error"),
    [
        (_app(status_url=None), CallbackKind.MESSAGE_STATUS, "no_status_url"),
        (_app(status_url=""), CallbackKind.FINAL_REPORT, "no_status_url"),
        # A status URL is no inbound URL: relayed messages never go to it.
        (_app(), CallbackKind.INBOUND, "no_inbound_url"),
    ],
)
def test_a_missing_url_is_an_outcome_without_any_http_call(application, kind, error):
    h = Harness(200)

    result = h.attempt(application, _record(kind))

    assert result == AttemptResult(error=error)
    assert h.adapter.sent == []
    assert h.secrets.requested == []


# --- what comes back ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 400, 404, 410, 429, 500, 503])
def test_the_receivers_status_is_reported_as_is(status):
    result = Harness(status).attempt()
    assert result.status_code == status and result.error is None


@pytest.mark.parametrize(
    "secrets",
    [FakeSecrets(values={}), FakeSecrets(error=RuntimeError("AccessDeniedException"))],
    ids=["missing", "unreadable"],
)
def test_no_secret_means_nothing_is_sent(secrets):
    # Never unsigned: receivers are told to reject those.
    h = Harness(200, secrets=secrets)

    result = h.attempt()

    assert result == AttemptResult(error="signature_secret_unavailable")
    assert h.adapter.sent == []


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (requests.ConnectTimeout("connect"), "timeout"),  # a Timeout and a ConnectionError both
        (requests.ReadTimeout("read"), "timeout"),
        (requests.ConnectionError("refused"), "connection"),
        (requests.exceptions.SSLError("bad certificate"), "connection"),
        # The answer broke off mid-body: as retryable as a dropped connection.
        (requests.exceptions.ChunkedEncodingError("IncompleteRead"), "connection"),
    ],
)
def test_network_failures_are_outcomes_with_their_duration(failure, error):
    h = Harness(failure, takes=5.0)

    result = h.attempt()

    assert result == AttemptResult(error=error, duration_ms=5000)
    assert len(h.adapter.sent) == 1


@pytest.mark.parametrize(
    "url",
    ["client.example/status", "ftp://client.example/status", "https://", "https://client.example:99999/"],
)
def test_an_invalid_url_is_an_outcome_and_nothing_is_sent(url):
    h = Harness(200)

    result = h.attempt(_app(status_url=url))

    assert result.error == "invalid_url" and result.status_code is None
    assert h.adapter.sent == []


def test_the_duration_is_measured_with_the_monotonic_clock():
    # The wall clock stands still here, so only the injected monotonic clock can give 250 ms.
    h = Harness(200, takes=0.2504)
    assert h.attempt().duration_ms == 250


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 30 ", 30.0),
        ("0", 0.0),
        # An HTTP-date: two minutes after NOW (Tuesday 24 November 2026, 06:22:36 UTC).
        ("Tue, 24 Nov 2026 06:24:36 GMT", 120.0),
        ("Tue, 24 Nov 2026 07:24:36 +0100", 120.0),
        # A date already past asks for no wait at all.
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("soon", None),
        ("1.5", None),
        ("-5", None),
        # Not ASCII digits: used to raise inside float() and lose the status as "internal".
        ("²", None),
        ("", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date(header, seconds):
    result = Harness((503, {"Retry-After": header})).attempt()
    assert result.status_code == 503
    assert result.retry_after == seconds


def test_no_retry_after_header_means_none():
    assert Harness(429).attempt().retry_after is None


def test_an_unexpected_exception_is_the_outcome_internal():
    h = Harness(RuntimeError("boom"))

    result = h.attempt()

    assert result == AttemptResult(error="internal")
    assert len(h.adapter.sent) == 1


def test_a_body_that_cannot_be_encoded_is_the_outcome_internal():
    record = dataclasses.replace(_record(), body='{"note":"\ud800"}')  # a lone surrogate
    h = Harness(200)

    assert h.attempt(record=record) == AttemptResult(error="internal")
    assert h.adapter.sent == []


# --- logs ---------------------------------------------------------------------------------------


class LeakyAdapter(ScriptedAdapter):
    """Fails with an exception whose text quotes the request, as careless libraries do."""

    def send(self, request, **kwargs):
        self.sent.append(request)
        raise RuntimeError(f"could not post {request.body!r} with {request.headers['Authorization']}")


def test_logs_carry_ids_but_never_the_body_the_token_or_the_secret(caplog):
    leaky = Harness()
    leaky.adapter = LeakyAdapter(leaky.monotonic)
    leaky.session.mount("https://", leaky.adapter)
    others = [Harness(500), Harness(requests.Timeout("slow")), Harness(secrets=FakeSecrets({}))]

    with caplog.at_level(logging.DEBUG):
        assert leaky.attempt().error == "internal"
        for h in others:
            h.attempt()

    token = leaky.only_request.headers["Authorization"].removeprefix("Bearer ")
    assert caplog.records, "an internal failure and a missing secret must be logged"
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for forbidden in (token, SECRET, *BODY_TEXT):
        assert forbidden not in logged
    # No traceback either: the exception's own text quotes the body and the token.
    assert all(r.exc_info is None and r.exc_text is None for r in caplog.records)
    for record in caplog.records:
        assert (record.dispatch_uuid, record.seq, record.event_id) == ("d-1", 3, EVENT_ID)
