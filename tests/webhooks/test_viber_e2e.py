"""Viber end to end: a dispatch through the API goes out over the Viber bot API (scripted),
Viber's callbacks come back signed on our routes, and the dispatch completes, fails over or relays
the user's message, as the condition says.

The Dispatch contract addresses viber_service_msg to a phone `number`, which a bot cannot message
(docs/providers/viber.md): with the channel routed to this provider, validation asks for the
Viber user `id` the provider names in its `address_fields`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.adapters import callback_signing
from tests.e2e.test_api import create, view
from tests.webhooks.stack import (
    INBOUND_URL,
    FakeResponse,
    ScriptedSession,
    post_webhook,
    provider_stack,
)

EVENTS = Path(__file__).parents[1] / "events" / "viber"
SEND_URL = "https://chatapi.viber.com/pa/send_message"
TOKEN = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"
CREDENTIALS = {
    "DISPATCH_VIBER_AUTH_TOKEN": TOKEN,
    "DISPATCH_VIBER_SENDER_NAME": "Acme",
    "DISPATCH_VIBER_ACCOUNT_ID": "pa:5354186472512395000",
}
ROUTING = {"viber_service_msg": "viber"}
USER = "01234567890A="
MESSAGE_TOKEN = 5741311803571721087  # send_ok.json's


def dispatch(condition: str = "delivered", to: dict | None = None) -> dict:
    return {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "viber_service_msg", "id": "12345"},
                "to": to or {"type": "viber_service_msg", "id": USER},
                "message": {"content": {"type": "text", "text": "Your parcel arrives today"}},
                "failover": {"expiry_time": 600, "condition_status": condition},
            },
            {
                "from": {"type": "sms", "number": "447700900001"},
                "to": {"type": "sms", "number": "447911123456"},
                "message": {"content": {"type": "text", "text": "Your parcel arrives today"}},
            },
        ],
    }


def answer(name: str) -> FakeResponse:
    return FakeResponse(200, json.loads((EVENTS / name).read_text()))


def callback(name: str, at: datetime, **fields: Any) -> bytes:
    """A fixture stamped `at` (Viber's body carries its time), compact as Viber sends it."""
    body = {k: v for k, v in json.loads((EVENTS / name).read_text()).items() if k != "_comment"}
    body.update(timestamp=int(at.timestamp() * 1000), **fields)
    return json.dumps(body, separators=(",", ":")).encode()


def signed(body: bytes, key: str = TOKEN) -> dict[str, str]:
    digest = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Viber-Content-Signature": digest, "Content-Type": "application/json"}


def deliver(stack, body: bytes, kind: str = "status") -> dict[str, Any]:
    response = post_webhook(stack, "viber", kind, body, signed(body))
    assert response.status_code == 200, response.body
    return response.json_body


@pytest.fixture
def session() -> ScriptedSession:
    session = ScriptedSession()
    session.respond(SEND_URL, answer("send_ok.json"))
    return session


@pytest.fixture
def stack(table_name, session):
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        yield stack


def test_the_message_goes_out_to_the_viber_user_with_our_message_uuid(stack, session):
    dispatch_uuid = create(stack, dispatch())
    first = view(stack, dispatch_uuid)["messages"][0]
    [call] = session.to(SEND_URL)
    assert call.headers == {"X-Viber-Auth-Token": TOKEN}
    assert call.json == {
        "receiver": USER,
        "sender": {"name": "Acme"},
        "tracking_data": first["message_uuid"],
        "type": "text",
        "text": "Your parcel arrives today",
    }
    assert (first["phase"], first["status"]) == ("waiting", "submitted")


@pytest.mark.parametrize(("condition", "event"), [("delivered", "delivered.json"), ("read", "seen.json")])
def test_the_condition_met_completes_the_dispatch_without_the_sms(stack, session, condition, event):
    dispatch_uuid = create(stack, dispatch(condition))
    report = deliver(stack, callback(event, stack.clock.now(), message_token=MESSAGE_TOKEN))
    assert report == {"applied": 1, "unmatched": 0, "ignored": 0, "relayed": 0}
    d = view(stack, dispatch_uuid)
    first, second = d["messages"]
    assert d["status"] == "completed" and d["completed_by"] == first["message_uuid"]
    assert (first["outcome"], second["phase"]) == ("condition_met", "pending")
    assert stack.fire_due_checks(dispatch_uuid) == 0  # the deadline's check was cancelled
    assert len(session.to(SEND_URL)) == 1


def test_delivered_does_not_meet_a_read_condition(stack):
    dispatch_uuid = create(stack, dispatch("read"))
    deliver(stack, callback("delivered.json", stack.clock.now(), message_token=MESSAGE_TOKEN))
    d = view(stack, dispatch_uuid)
    assert d["status"] == "in_progress"
    assert [m["phase"] for m in d["messages"]] == ["waiting", "pending"]


def test_a_failed_callback_sends_the_next_message_at_once(stack):
    dispatch_uuid = create(stack, dispatch())
    deliver(stack, callback("failed.json", stack.clock.now(), message_token=MESSAGE_TOKEN))
    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["outcome"], first["status"]) == ("undeliverable", "undeliverable")
    assert first["history"][-1]["error"] == {"code": "viber_failed", "reason": "failure desc"}
    assert (second["channel"], second["phase"]) == ("sms", "waiting")


@pytest.mark.parametrize("refusal", ["send_receiver_not_subscribed.json", "send_receiver_not_registered.json"])
def test_a_permanent_refusal_on_send_fails_over_at_once(table_name, refusal):
    session = ScriptedSession()
    session.respond(SEND_URL, answer(refusal))
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        first, second = view(stack, create(stack, dispatch()))["messages"]
    assert (first["outcome"], second["phase"]) == ("send_failed", "waiting")
    assert len(session.to(SEND_URL)) == 1


def test_too_many_requests_is_retried_on_viber_not_failed_over(table_name):
    session = ScriptedSession()
    session.respond(SEND_URL, answer("send_too_many_requests.json"), answer("send_ok.json"))
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        dispatch_uuid = create(stack, dispatch())
        first, second = view(stack, dispatch_uuid)["messages"]
        assert (first["phase"], first["error"]["code"], second["phase"]) == ("retrying", "viber_12", "pending")
        stack.clock.advance(2)
        stack.fire_due_checks(dispatch_uuid)
        first = view(stack, dispatch_uuid)["messages"][0]
    assert (first["phase"], first["attempts"]) == ("waiting", 2)
    assert len(session.to(SEND_URL)) == 2


def test_a_timeout_is_retried_too(table_name):
    session = ScriptedSession()
    session.respond(SEND_URL, requests.ReadTimeout("read timed out"))
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        first = view(stack, create(stack, dispatch()))["messages"][0]
    assert (first["phase"], first["error"]["code"]) == ("retrying", "timeout")


def test_a_phone_number_is_refused_at_the_request_when_viber_goes_through_the_bot(table_name, session):
    # The bot API writes to Viber user ids only: validation asks for the provider's fields.
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        body = dispatch(to={"type": "viber_service_msg", "number": "447911123456"})
        response = stack.post("/v0.1/dispatch", body)
    assert response.status_code == 400
    names = [p["name"] for p in response.json_body["invalid_parameters"]]
    assert names == ["workflow[0].to.number", "workflow[0].to.id"]
    assert session.to(SEND_URL) == []


def test_the_user_s_message_is_relayed_signed_to_the_inbound_url(stack, session):
    create(stack, dispatch())
    at = stack.clock.now()
    report = deliver(stack, callback("message_text.json", at, sender={"id": USER, "name": "John"}))
    assert report["relayed"] == 1
    [(url, data, headers)] = [c for c in session.callbacks() if c[0] == INBOUND_URL]
    assert callback_signing.verify(headers["Authorization"], data, stack.demo.signature_secret, stack.clock.now())
    relayed = json.loads(data)
    assert relayed["to"] == {"type": "viber_service_msg", "id": "pa:5354186472512395000"}
    assert relayed["from"] == {"type": "viber_service_msg", "id": USER}
    assert relayed["message"] == {"content": {"type": "text", "text": "a message to the service"}}
    assert relayed["timestamp"] == f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"


def test_a_message_from_someone_we_never_wrote_to_is_not_relayed(stack, session):
    create(stack, dispatch())
    report = deliver(stack, callback("message_text.json", stack.clock.now(), sender={"id": "someone-else="}))
    assert report["relayed"] == 0
    assert [c for c in session.callbacks() if c[0] == INBOUND_URL] == []


def test_viber_s_set_webhook_check_is_answered_200(stack):
    report = deliver(stack, callback("webhook.json", stack.clock.now()))
    assert report == {"applied": 0, "unmatched": 0, "ignored": 1, "relayed": 0}


def test_a_replayed_old_callback_is_refused_and_changes_nothing(stack):
    # The shared suite's stale attack cannot express this: Viber's time is inside the signed body.
    dispatch_uuid = create(stack, dispatch())
    old = callback("delivered.json", stack.clock.now() - timedelta(hours=2), message_token=MESSAGE_TOKEN)
    assert post_webhook(stack, "viber", "status", old, signed(old)).status_code == 401
    assert view(stack, dispatch_uuid)["status"] == "in_progress"


def test_a_signed_callback_viber_would_not_send_is_400(stack):
    body = callback("malformed_no_token.json", stack.clock.now())
    assert post_webhook(stack, "viber", "status", body, signed(body)).status_code == 400
