"""HttpCallbackSender: signing, headers, retry policy and never raising."""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone

import jwt
import pytest
import requests

from chalicelib.adapters.callback_sender import HttpCallbackSender
from chalicelib.adapters.callback_signing import verify
from chalicelib.domain.application import Application

NOW = datetime(2026, 11, 24, 6, 22, 36, tzinfo=timezone.utc)
SECRET = "signature-secret-" + "x" * 32
URL = "https://client.example/status"
PAYLOAD = {
    "message_uuid": "m0",
    "status": "delivered",
    "to": {"type": "sms", "number": "447700900000"},
    "_links": {"workflow": {"dispatch_uuid": "d-1", "href": "/v0.1/dispatch/d-1"}},
    "note": "café",
}


class FakeResponse:
    def __init__(self, status_code: int):
        self.status_code = status_code


class FakeSession:
    """Records every post; answers from a script of status codes or exceptions to raise."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls: list[dict] = []

    def post(self, url, **kwargs):
        self.calls.append({"url": url, **kwargs})
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return FakeResponse(step)


class FakeSecrets:
    def __init__(self, values: dict[str, str]):
        self.values = values
        self.requested: list[str] = []

    def get(self, name: str) -> str:
        self.requested.append(name)
        return self.values[name]

    def put(self, name: str, value: str) -> None:
        self.values[name] = value


def _app(status_url: str | None = URL) -> Application:
    return Application(
        application_id="app-1",
        name="Test",
        api_key="key-1",
        api_secret_hash="0" * 64,
        public_key_pem="",
        signature_secret_ref="dispatch/app-1/signature",
        status_url=status_url,
        created_at=NOW,
    )


def _sender(session, secrets=None, **kwargs):
    sleeps: list[float] = []
    sender = HttpCallbackSender(
        session,
        secrets or FakeSecrets({"dispatch/app-1/signature": SECRET}),
        clock=lambda: NOW,
        sleep=sleeps.append,
        **kwargs,
    )
    return sender, sleeps


def test_success_first_time_posts_once_with_signed_compact_json():
    session = FakeSession(200)
    sender, sleeps = _sender(session)

    sender.deliver(_app(), PAYLOAD)

    assert len(session.calls) == 1 and sleeps == []
    call = session.calls[0]
    assert call["url"] == URL
    assert call["timeout"] == (3.05, 5)
    body = call["data"]
    assert isinstance(body, bytes)
    assert body == json.dumps(PAYLOAD, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = call["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "dispatch-callbacks/1"
    assert headers["Authorization"].startswith("Bearer ")


def test_posted_signature_verifies_and_binds_the_body():
    session = FakeSession(204)
    sender, _ = _sender(session)

    sender.deliver(_app(), PAYLOAD)

    call = session.calls[0]
    auth, body = call["headers"]["Authorization"], call["data"]
    assert verify(auth, body, SECRET, NOW)
    claims = jwt.decode(auth[7:], SECRET, algorithms=["HS256"], options={"verify_iat": False})
    assert claims["payload_hash"] == hashlib.sha256(body).hexdigest()
    assert claims["application_id"] == "app-1" and claims["api_key"] == "key-1"
    assert not verify(auth, body + b" ", SECRET, NOW)


def test_secret_is_fetched_by_the_applications_reference():
    secrets = FakeSecrets({"dispatch/app-1/signature": SECRET})
    sender, _ = _sender(FakeSession(200), secrets)
    sender.deliver(_app(), PAYLOAD)
    assert secrets.requested == ["dispatch/app-1/signature"]


def test_500_then_200_retries_once_after_the_first_backoff():
    session = FakeSession(500, 200)
    sender, sleeps = _sender(session)

    sender.deliver(_app(), PAYLOAD)

    assert len(session.calls) == 2
    assert sleeps == [0.2]
    assert session.calls[0]["data"] == session.calls[1]["data"]


@pytest.mark.parametrize(
    "first",
    [429, 503, requests.ConnectionError("refused"), requests.Timeout("slow"),
     requests.ReadTimeout("slow read")],
)
def test_retryable_failures_are_retried(first):
    session = FakeSession(first, 201)
    sender, sleeps = _sender(session)
    sender.deliver(_app(), PAYLOAD)
    assert len(session.calls) == 2 and sleeps == [0.2]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 301])
def test_other_statuses_are_not_retried(status):
    session = FakeSession(status, 200)
    sender, sleeps = _sender(session)
    sender.deliver(_app(), PAYLOAD)
    assert len(session.calls) == 1 and sleeps == []


def test_invalid_url_is_not_retried():
    session = FakeSession(requests.exceptions.InvalidURL("bad"), 200)
    sender, _ = _sender(session)
    sender.deliver(_app(), PAYLOAD)
    assert len(session.calls) == 1


def test_all_attempts_failing_does_not_raise_and_uses_every_backoff(caplog):
    session = FakeSession(500, requests.ConnectionError("down"), requests.Timeout("slow"))
    sender, sleeps = _sender(session)

    with caplog.at_level(logging.INFO):
        sender.deliver(_app(), PAYLOAD)

    assert len(session.calls) == 3
    assert sleeps == [0.2, 1.0]
    assert "dispatch_uuid=d-1" in caplog.text and "message_uuid=m0" in caplog.text


def test_attempts_and_backoff_are_configurable_and_last_backoff_repeats():
    session = FakeSession(502, 502, 502, 502)
    sender, sleeps = _sender(session, attempts=4, backoff_seconds=(1, 5))
    sender.deliver(_app(), PAYLOAD)
    assert len(session.calls) == 4 and sleeps == [1, 5, 5]


def test_each_attempt_is_signed_afresh():
    session = FakeSession(500, 200)
    sender, _ = _sender(session)
    sender.deliver(_app(), PAYLOAD)
    first, second = (c["headers"]["Authorization"] for c in session.calls)
    assert first != second
    assert all(verify(c["headers"]["Authorization"], c["data"], SECRET, NOW)
               for c in session.calls)


def test_no_status_url_means_no_post(caplog):
    session = FakeSession()
    sender, _ = _sender(session)
    with caplog.at_level(logging.INFO):
        sender.deliver(_app(status_url=None), PAYLOAD)
    assert session.calls == []
    assert "no status_url" in caplog.text


def test_missing_secret_sends_nothing_and_does_not_raise():
    session = FakeSession(200)
    sender, _ = _sender(session, FakeSecrets({}))
    sender.deliver(_app(), PAYLOAD)
    assert session.calls == []


def test_unexpected_session_error_does_not_raise():
    session = FakeSession(RuntimeError("boom"))
    sender, _ = _sender(session)
    sender.deliver(_app(), PAYLOAD)
    assert len(session.calls) == 1


def test_unserialisable_payload_does_not_raise():
    session = FakeSession(200)
    sender, _ = _sender(session)
    sender.deliver(_app(), {"message_uuid": "m0", "bad": object()})
    assert session.calls == []


def test_logs_never_contain_the_body_token_or_secret(caplog):
    session = FakeSession(500, 500, 500)
    sender, _ = _sender(session)

    with caplog.at_level(logging.DEBUG):
        sender.deliver(_app(), PAYLOAD)

    token = session.calls[-1]["headers"]["Authorization"][7:]
    assert caplog.records, "failures must be logged"
    for forbidden in (token, SECRET, "447700900000", "café", "delivered"):
        assert forbidden not in caplog.text
    assert "HTTP 500" in caplog.text


def test_a_relayed_user_message_goes_to_the_inbound_url_signed_the_same_way():
    import dataclasses

    session = FakeSession(200)
    sender, _ = _sender(session)
    app = dataclasses.replace(_app(), inbound_url="https://client.example/inbound")

    sender.deliver(app, PAYLOAD, inbound=True)

    (call,) = session.calls
    assert call["url"] == "https://client.example/inbound"
    assert verify(call["headers"]["Authorization"], call["data"], SECRET, NOW)


def test_an_application_without_an_inbound_url_gets_no_relayed_messages():
    session = FakeSession()
    sender, _ = _sender(session)
    sender.deliver(_app(), PAYLOAD, inbound=True)  # has a status_url, but no inbound_url
    assert session.calls == []


def test_a_numbered_callback_carries_its_event_id_and_sequence_in_headers_and_signed_claims():
    from chalicelib.service.ports import CallbackId

    session = FakeSession(200)
    sender, _ = _sender(session)
    callback_id = CallbackId("7b0d7f3e-51a3-5f0c-9d1e-2f3a4b5c6d7e", 3)

    sender.deliver(_app(), PAYLOAD, callback_id=callback_id)

    (call,) = session.calls
    assert call["headers"]["X-Dispatch-Event-Id"] == callback_id.event_id
    assert call["headers"]["X-Dispatch-Sequence"] == "3"
    token = call["headers"]["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_iat": False})
    assert (claims["event_id"], claims["seq"]) == (callback_id.event_id, 3)


def test_a_retried_attempt_repeats_the_same_event_id():
    from chalicelib.service.ports import CallbackId

    session = FakeSession(503, 200)
    sender, _ = _sender(session)
    sender.deliver(_app(), PAYLOAD, callback_id=CallbackId("e-1", 1))
    assert [c["headers"]["X-Dispatch-Event-Id"] for c in session.calls] == ["e-1", "e-1"]


def test_every_callback_says_which_secret_signed_it():
    from chalicelib.adapters.callback_signing import key_id

    session = FakeSession(200)
    sender, _ = _sender(session)
    sender.deliver(_app(), PAYLOAD)
    (call,) = session.calls
    token = call["headers"]["Authorization"].removeprefix("Bearer ")
    assert call["headers"]["X-Dispatch-Signature-Key"] == key_id(SECRET)
    assert jwt.get_unverified_header(token)["kid"] == key_id(SECRET)
