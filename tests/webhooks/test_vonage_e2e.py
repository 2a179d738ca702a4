"""Vonage end to end: a dispatch through the API goes out over the Messages API v1 (scripted),
Vonage's webhook payloads come back signed on our routes, and the dispatch completes, fails
over, or relays the user's reply, as its condition says."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest

from chalicelib.adapters import callback_signing
from chalicelib.service.applications import generate_key_pair
from tests.e2e.test_api import create, view
from tests.webhooks.signature_cases.vonage import sign
from tests.webhooks.stack import FakeResponse, ScriptedSession, post_webhook, provider_stack

EVENTS = Path(__file__).parents[1] / "events" / "vonage"
URL = "https://api.nexmo.com/v1/messages"
APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"
SECRET = "vonage-signature-secret-0123456789abcdef"
PRIVATE_KEY, PUBLIC_KEY = generate_key_pair()
CREDENTIALS = {
    "DISPATCH_VONAGE_APPLICATION_ID": APPLICATION_ID,
    "DISPATCH_VONAGE_PRIVATE_KEY": PRIVATE_KEY,
    "DISPATCH_VONAGE_SIGNATURE_SECRET": SECRET,
}
ROUTING = {"whatsapp": "vonage", "sms": "vonage", "messenger": "vonage"}
USER = "447911123456"
BUSINESS = "447700900001"


def dispatch(condition: str = "delivered") -> dict[str, Any]:
    return {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "whatsapp", "number": BUSINESS},
                "to": {"type": "whatsapp", "number": USER},
                "message": {"content": {"type": "text", "text": "Your parcel arrives today"}},
                "failover": {"expiry_time": 600, "condition_status": condition},
            },
            {
                "from": {"type": "sms", "number": "Acme"},
                "to": {"type": "sms", "number": USER},
                "message": {"content": {"type": "text", "text": "Your parcel arrives today"}},
            },
        ],
    }


@pytest.fixture
def session() -> ScriptedSession:
    """Vonage accepts every message and names each one `vonage-<n>`, in order."""
    session = ScriptedSession()
    session.respond(URL, lambda call: FakeResponse(202, {"message_uuid": f"vonage-{len(session.to(URL))}"}))
    return session


@pytest.fixture
def stack(table_name, session):
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        yield stack


def payload(name: str, **fields: Any) -> bytes:
    """A fixture with our ids in it, compact as Vonage sends it."""
    event = json.loads((EVENTS / name).read_text())
    event.update(fields)
    return json.dumps(event, separators=(",", ":")).encode()


def deliver(stack, kind: str, body: bytes) -> dict[str, Any]:
    headers = sign(body, SECRET, iat=stack.clock.now().timestamp())
    response = post_webhook(stack, "vonage", kind, body, headers)
    assert response.status_code == 200, response.body
    return response.json_body


def test_the_dispatch_goes_out_over_the_messages_api(stack, session):
    dispatch_uuid = create(stack, dispatch())

    [call] = session.to(URL)
    first, second = view(stack, dispatch_uuid)["messages"]
    assert call.json == {
        "message_type": "text",
        "channel": "whatsapp",
        "to": USER,
        "from": BUSINESS,
        "text": "Your parcel arrives today",
        "client_ref": f"{dispatch_uuid}:0",
    }
    token = call.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, PUBLIC_KEY, algorithms=["RS256"], options={"verify_iat": False})
    assert claims["application_id"] == APPLICATION_ID
    assert (first["phase"], first["status"], second["phase"]) == ("waiting", "submitted", "pending")


def test_delivered_completes_the_dispatch_and_sends_nothing_more(stack, session):
    dispatch_uuid = create(stack, dispatch("delivered"))

    report = deliver(stack, "status", payload("status_delivered_whatsapp.json", message_uuid="vonage-1"))

    assert report == {"applied": 1, "unmatched": 0, "ignored": 0, "relayed": 0}
    d = view(stack, dispatch_uuid)
    first, second = d["messages"]
    assert (d["status"], d["completed_by"]) == ("completed", first["message_uuid"])
    assert (first["status"], first["outcome"], second["phase"]) == ("delivered", "condition_met", "pending")
    assert first["usage"] == {"price": "0.0147", "currency": "EUR"}
    assert len(session.to(URL)) == 1
    assert stack.fire_due_checks(dispatch_uuid) == 0


def test_read_is_needed_when_the_condition_is_read(stack):
    dispatch_uuid = create(stack, dispatch("read"))

    deliver(stack, "status", payload("status_delivered_whatsapp.json", message_uuid="vonage-1"))
    assert view(stack, dispatch_uuid)["status"] == "in_progress"
    deliver(stack, "status", payload("status_read_whatsapp.json", message_uuid="vonage-1"))

    d = view(stack, dispatch_uuid)
    assert d["status"] == "completed"
    assert [e["status"] for e in d["messages"][0]["history"]] == ["submitted", "delivered", "read"]


def test_a_rejection_sends_the_next_message_at_once(stack, session):
    dispatch_uuid = create(stack, dispatch("read"))

    deliver(stack, "status", payload("status_rejected_whatsapp_outside_window.json", message_uuid="vonage-1"))

    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["status"], first["outcome"]) == ("rejected", "rejected")
    assert first["history"][-1]["error"] == {
        "code": "1340",
        "reason": "Outside of the allowed window - This message is sent outside of allowed response window.",
    }
    # No timer fired: the SMS went out through Vonage straight away.
    assert (second["phase"], second["status"]) == ("waiting", "submitted")
    sms = session.to(URL)[1].json
    assert (sms["channel"], sms["to"], sms["from"], sms["client_ref"]) == ("sms", USER, "Acme", f"{dispatch_uuid}:1")


def test_undeliverable_also_fails_over_and_the_last_message_completes_the_dispatch(stack):
    dispatch_uuid = create(stack, dispatch())

    deliver(stack, "status", payload("status_undeliverable_mms.json", message_uuid="vonage-1", channel="whatsapp"))
    deliver(stack, "status", payload("status_delivered_whatsapp.json", message_uuid="vonage-2", channel="sms"))

    d = view(stack, dispatch_uuid)
    first, second = d["messages"]
    assert (first["outcome"], second["status"]) == ("undeliverable", "delivered")
    assert (d["status"], d["completed_by"]) == ("completed", second["message_uuid"])


def test_the_deadline_fails_over_when_vonage_reports_nothing(stack, session):
    dispatch_uuid = create(stack, dispatch())

    stack.clock.advance(601)
    stack.fire_due_checks(dispatch_uuid)

    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["outcome"], second["phase"]) == ("expired", "waiting")
    assert [c.json["channel"] for c in session.to(URL)] == ["whatsapp", "sms"]


def test_a_permanent_send_error_fails_over_without_waiting(stack, session):
    error = json.loads((EVENTS / "send_error_422_invalid_recipient.json").read_text())
    session.respond(URL, FakeResponse(error["status_code"], error["body"]), FakeResponse(202, {"message_uuid": "vonage-sms"}))

    dispatch_uuid = create(stack, dispatch())

    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["outcome"], first["error"]["code"], second["phase"]) == ("send_failed", "1430", "waiting")


def test_a_rate_limited_send_is_retried_on_the_same_channel(stack, session):
    error = json.loads((EVENTS / "send_error_429_throttled.json").read_text())
    session.respond(URL, FakeResponse(error["status_code"], error["body"]), FakeResponse(202, {"message_uuid": "vonage-retry"}))
    dispatch_uuid = create(stack, dispatch())
    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["phase"], second["phase"]) == ("retrying", "pending")

    stack.clock.advance(10)
    stack.fire_due_checks(dispatch_uuid)

    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["phase"], first["attempts"], second["phase"]) == ("waiting", 2, "pending")
    assert [c.json["channel"] for c in session.to(URL)] == ["whatsapp", "whatsapp"]


def test_a_reply_is_relayed_signed_to_the_applications_inbound_url(stack):
    create(stack, dispatch())
    body = payload(
        "inbound_whatsapp_text_reply.json",
        to=BUSINESS,
        **{"from": USER, "context": {"message_uuid": "vonage-1", "message_from": BUSINESS}, "text": "STOP"},
    )

    report = deliver(stack, "inbound", body)

    assert report == {"applied": 0, "unmatched": 0, "ignored": 0, "relayed": 1}
    [(url, relayed_body, headers)] = [c for c in stack.session.callbacks() if c[0] == "https://app.example/inbound"]
    assert callback_signing.verify(headers["Authorization"], relayed_body, stack.demo.signature_secret, stack.clock.now())
    relayed = json.loads(relayed_body)
    assert relayed["to"] == {"type": "whatsapp", "number": BUSINESS}
    assert relayed["from"] == {"type": "whatsapp", "number": USER}
    assert relayed["message"] == {"content": {"type": "text", "text": "STOP"}}
    assert relayed["timestamp"] == "2020-01-01T14:00:00.000Z"


def test_an_sms_reply_finds_the_user_by_number_and_channel(stack):
    create(stack, dispatch())
    deliver(stack, "status", payload("status_rejected_whatsapp_outside_window.json", message_uuid="vonage-1"))

    report = deliver(stack, "inbound", payload("inbound_sms_text.json", to="447700900002", **{"from": USER}))

    assert report["relayed"] == 1
    [(_, relayed_body, _)] = [c for c in stack.session.callbacks() if c[0] == "https://app.example/inbound"]
    assert json.loads(relayed_body)["from"] == {"type": "sms", "number": USER}


def test_a_message_from_someone_we_never_wrote_to_is_not_relayed(stack):
    create(stack, dispatch())

    report = deliver(stack, "inbound", payload("inbound_sms_text.json"))

    assert report == {"applied": 0, "unmatched": 0, "ignored": 0, "relayed": 0}
    assert [c for c in stack.session.callbacks() if c[0] == "https://app.example/inbound"] == []


def test_a_status_for_a_message_of_another_system_is_unmatched(stack):
    assert deliver(stack, "status", payload("status_read_messenger.json"))["unmatched"] == 1


@pytest.mark.parametrize("attack", ["unsigned", "stale", "tampered"])
def test_a_webhook_not_signed_by_vonage_now_applies_nothing(stack, attack):
    dispatch_uuid = create(stack, dispatch())
    body = payload("status_delivered_whatsapp.json", message_uuid="vonage-1")
    now = stack.clock.now().timestamp()
    headers = {
        "unsigned": {"Content-Type": "application/json"},
        "stale": sign(body, SECRET, iat=now - 301),
        "tampered": sign(payload("status_rejected_sms.json", message_uuid="vonage-1"), SECRET, iat=now),
    }[attack]

    response = post_webhook(stack, "vonage", "status", body, headers)

    assert response.status_code == 401
    assert view(stack, dispatch_uuid)["status"] == "in_progress"


def test_a_signed_body_that_is_not_a_vonage_event_is_a_400(stack):
    body = b'[{"message_uuid": "vonage-1", "status": "delivered"}]'
    response = post_webhook(stack, "vonage", "status", body, sign(body, SECRET, iat=stack.clock.now().timestamp()))
    assert response.status_code == 400


def test_there_is_no_get_handshake(stack):
    assert stack.client.http.get("/webhooks/vonage/status").status_code == 403


def test_each_message_s_price_reaches_its_callback_and_the_final_report_sums_them(stack, session):
    dispatch_uuid = create(stack, dispatch("read"))
    # WhatsApp delivered (and priced) but never read: the SMS goes out at the deadline.
    deliver(stack, "status", payload("status_delivered_whatsapp.json", message_uuid="vonage-1"))
    stack.clock.advance(601)
    assert stack.fire_due_checks(dispatch_uuid) == 1
    sms = payload(
        "status_delivered_whatsapp.json",
        message_uuid="vonage-2",
        channel="sms",
        usage={"currency": "EUR", "price": "0.0333"},
    )
    deliver(stack, "status", sms)

    bodies = [json.loads(data) for url, data, _ in session.callbacks() if url == "https://app.example/status"]
    priced = [b["usage"] for b in bodies if b.get("status") == "delivered"]
    assert priced == [{"price": "0.0147", "currency": "EUR"}, {"price": "0.0333", "currency": "EUR"}]
    [report] = [b for b in bodies if "dispatch_uuid" in b]
    assert (report["status"], report["usage"]) == ("completed", {"price": "0.0480", "currency": "EUR"})
