"""WhatsApp end to end: a dispatch through the API goes out over the Cloud API (scripted), Meta's
real webhook payloads come back signed on our routes, and the dispatch completes, fails over or
relays the user's reply, as the condition says."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from chalicelib.adapters import callback_signing
from tests.e2e.test_api import create, view
from tests.webhooks.meta_signing import meta_signed
from tests.webhooks.stack import FakeResponse, ScriptedSession, post_webhook, provider_stack

EVENTS = Path(__file__).parents[1] / "events" / "whatsapp"
APP_SECRET = "whatsapp-app-secret"
VERIFY_TOKEN = "whatsapp-verify-token"
CREDENTIALS = {
    "DISPATCH_WHATSAPP_ACCESS_TOKEN": "EAAG-token",
    "DISPATCH_WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "DISPATCH_WHATSAPP_APP_SECRET": APP_SECRET,
    "DISPATCH_WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
}
GRAPH = "https://graph.facebook.com/"
WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
USER = "16505551234"


def dispatch(condition: str = "delivered", to: str = USER) -> dict:
    return {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "whatsapp", "number": "15550783881"},
                "to": {"type": "whatsapp", "number": to},
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


def accepted(wamid: str = WAMID, wa_id: str = USER) -> FakeResponse:
    body = {"messaging_product": "whatsapp", "contacts": [{"input": USER, "wa_id": wa_id}], "messages": [{"id": wamid}]}
    return FakeResponse(200, body)


def payload(name: str, **replace: str) -> bytes:
    """A fixture with our ids in it, serialised the way Meta sends it (compact, non-ASCII escaped)."""
    text = (EVENTS / f"{name}.json").read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return json.dumps(json.loads(text), separators=(",", ":")).encode()


def signed(body: bytes) -> dict[str, str]:
    return meta_signed(body, APP_SECRET)


def deliver(stack, kind: str, body: bytes) -> dict[str, Any]:
    response = post_webhook(stack, "whatsapp", kind, body, signed(body))
    assert response.status_code == 200, response.body
    return response.json_body


@pytest.fixture
def session() -> ScriptedSession:
    session = ScriptedSession()
    session.respond(GRAPH, accepted())
    return session


@pytest.fixture
def stack(table_name, session):
    with provider_stack(table_name, {"whatsapp": "whatsapp"}, CREDENTIALS, session) as stack:
        yield stack


def test_the_dispatch_goes_out_over_the_cloud_api(stack, session):
    dispatch_uuid = create(stack, dispatch())

    [call] = session.to(GRAPH)
    assert call.url == "https://graph.facebook.com/v23.0/106540352242922/messages"
    assert call.headers["Authorization"] == "Bearer EAAG-token"
    assert call.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": USER,
        "type": "text",
        "text": {"preview_url": False, "body": "Your parcel arrives today"},
        "biz_opaque_callback_data": f"{dispatch_uuid}:0",
    }
    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["phase"], first["status"], second["phase"]) == ("waiting", "submitted", "pending")


def test_delivered_completes_the_dispatch_and_sends_nothing_more(stack, session):
    dispatch_uuid = create(stack, dispatch("delivered"))

    sent = payload("status_sent", **{"wamid.HBgNNTUxNjk5MjMxODIyMhUCABEYEjgxQkVFRDVBQTVDODFDOTg3MQA=": WAMID})
    assert deliver(stack, "status", sent) == {"applied": 1, "unmatched": 0, "ignored": 0, "relayed": 0}
    assert view(stack, dispatch_uuid)["status"] == "in_progress"
    assert deliver(stack, "status", payload("status_delivered")) == {"applied": 1, "unmatched": 0, "ignored": 0, "relayed": 0}

    d = view(stack, dispatch_uuid)
    first, second = d["messages"]
    assert (d["status"], d["completed_by"]) == ("completed", first["message_uuid"])
    assert (first["status"], first["outcome"], second["phase"]) == ("delivered", "condition_met", "pending")
    assert len(session.to(GRAPH)) == 1
    assert stack.fire_due_checks(dispatch_uuid) == 0


def with_reference(body: bytes, reference: str) -> bytes:
    notification = json.loads(body)
    notification["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = reference
    return json.dumps(notification, separators=(",", ":")).encode()


@pytest.mark.parametrize("echoed", [True, False], ids=["reference echoed", "no reference"])
def test_a_status_that_echoes_our_reference_needs_no_message_index_read(table_name, session, echoed, monkeypatch):
    calls: Counter[str] = Counter()
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register(  # type: ignore[union-attr]
        "before-call.dynamodb.*", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[-1]])
    )
    try:
        with provider_stack(table_name, {"whatsapp": "whatsapp"}, CREDENTIALS, session) as stack:
            dispatch_uuid = create(stack, dispatch("delivered"))
            reference = session.to(GRAPH)[0].json["biz_opaque_callback_data"]
            body = payload("status_delivered")
            # Counted: applying the status. Delivering its callbacks is the queue's work, apart.
            monkeypatch.setattr(stack.services.callback_queue, "nudge", lambda dispatch_uuid: None)
            calls.clear()
            deliver(stack, "status", with_reference(body, reference) if echoed else body)
            applied = +calls
            assert view(stack, dispatch_uuid)["status"] == "completed"
    finally:
        boto3.DEFAULT_SESSION = None

    assert applied == ({"GetItem": 1, "PutItem": 1} if echoed else {"GetItem": 2, "PutItem": 1})


def test_a_reference_naming_a_step_that_did_not_send_the_message_changes_nothing_there(stack, session):
    # Another system sending from the same account may echo anything: only the index decides.
    victim = create(stack, dispatch("delivered"))
    stack.session.respond(GRAPH, accepted("wamid.second"))
    mine = create(stack, dispatch("delivered"))
    forged = with_reference(payload("status_delivered", **{WAMID: "wamid.second"}), f"{victim}:0")

    assert deliver(stack, "status", forged)["applied"] == 1

    assert view(stack, victim)["status"] == "in_progress"
    assert view(stack, mine)["status"] == "completed"


def test_read_is_needed_when_the_condition_is_read(stack):
    dispatch_uuid = create(stack, dispatch("read"))

    deliver(stack, "status", payload("status_delivered"))
    assert view(stack, dispatch_uuid)["status"] == "in_progress"
    deliver(stack, "status", payload("status_read"))

    d = view(stack, dispatch_uuid)
    assert (d["status"], [e["status"] for e in d["messages"][0]["history"]]) == ("completed", ["submitted", "delivered", "read"])


def test_a_terminal_failure_sends_the_next_message_at_once(stack):
    dispatch_uuid = create(stack, dispatch("read"))

    deliver(stack, "status", payload("status_failed_131026"))

    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["status"], first["outcome"]) == ("undeliverable", "undeliverable")
    assert first["history"][-1]["error"] == {
        "code": "131026",
        "reason": "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number.",
    }
    # The SMS (sandbox) went out without any timer firing.
    assert (second["phase"], second["status"]) == ("waiting", "submitted")


def test_a_closed_window_is_rejected_and_fails_over(stack):
    dispatch_uuid = create(stack, dispatch())

    deliver(stack, "status", payload("status_failed_131047", **{"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA": WAMID}))

    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["outcome"], first["history"][-1]["error"]["code"], second["phase"]) == ("rejected", "131047", "waiting")


def test_a_batched_notification_applies_every_status(stack, session):
    second_wamid = "wamid.HBgLNDQ3OTExMTIzNDU2FQIAERgSMDA1MkM1NzE3NkMyMUI4NzJDAA=="
    session.respond(GRAPH, accepted(WAMID), accepted(second_wamid))
    one = create(stack, dispatch("delivered"))
    two = create(stack, dispatch("read", to="447911123456"))

    report = deliver(stack, "status", payload("status_batched"))

    # delivered (one), sent + read (two), and a failed status for a message that is not ours.
    assert report == {"applied": 3, "unmatched": 1, "ignored": 0, "relayed": 0}
    assert (view(stack, one)["status"], view(stack, two)["status"]) == ("completed", "completed")


def test_a_permanent_send_error_fails_over_without_waiting(stack, session):
    error = json.loads((EVENTS / "send_error_131026.json").read_text())
    session.respond(GRAPH, FakeResponse(error["status"], error["body"]))

    dispatch_uuid = create(stack, dispatch())

    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["outcome"], first["error"]["code"], second["phase"]) == ("send_failed", "131026", "waiting")


def test_a_rate_limited_send_is_retried_on_whatsapp(stack, session):
    error = json.loads((EVENTS / "send_error_130429.json").read_text())
    session.respond(GRAPH, FakeResponse(error["status"], error["body"]), accepted())
    dispatch_uuid = create(stack, dispatch())
    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["phase"], second["phase"]) == ("retrying", "pending")

    stack.clock.advance(10)
    stack.fire_due_checks(dispatch_uuid)

    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["phase"], first["attempts"], second["phase"]) == ("waiting", 2, "pending")
    assert len(session.to(GRAPH)) == 2


def test_a_timeout_is_retried_on_whatsapp(stack, session):
    session.respond(GRAPH, requests.ReadTimeout("read timed out"))
    dispatch_uuid = create(stack, dispatch())
    first = view(stack, dispatch_uuid)["messages"][0]
    assert (first["phase"], first["attempts"]) == ("retrying", 1)


def test_a_reply_is_relayed_signed_to_the_applications_inbound_url(stack):
    create(stack, dispatch())

    report = deliver(stack, "inbound", payload("inbound_reply_with_context"))

    assert report == {"applied": 0, "unmatched": 0, "ignored": 0, "relayed": 1}
    [(url, body, headers)] = [c for c in stack.session.callbacks() if c[0] == "https://app.example/inbound"]
    assert callback_signing.verify(headers["Authorization"], body, stack.demo.signature_secret, stack.clock.now())
    relayed = json.loads(body)
    assert relayed["to"] == {"type": "whatsapp", "number": "15550783881"}
    assert relayed["from"] == {"type": "whatsapp", "number": USER}
    assert relayed["message"] == {"content": {"type": "text", "text": "STOP"}}
    assert relayed["timestamp"].startswith("2025-06-25T13:18:20")


def test_a_reply_without_context_finds_the_user_by_the_wa_id_meta_resolved(stack, session):
    # Brazil: sent to the number with its ninth digit, Meta knows the person without it.
    session.respond(GRAPH, accepted(wa_id="551187654321"))
    create(stack, dispatch(to="5511987654321"))

    report = deliver(stack, "inbound", payload("inbound_text", **{'"from": "16505551234"': '"from": "551187654321"'}))

    assert report["relayed"] == 1
    [(_, body, _)] = [c for c in stack.session.callbacks() if c[0] == "https://app.example/inbound"]
    assert json.loads(body)["from"] == {"type": "whatsapp", "number": "551187654321"}


def test_both_routes_take_the_same_notification(stack):
    dispatch_uuid = create(stack, dispatch())

    report = deliver(stack, "inbound", payload("mixed_statuses_and_messages"))

    assert report == {"applied": 1, "unmatched": 0, "ignored": 0, "relayed": 1}
    assert view(stack, dispatch_uuid)["status"] == "completed"


def test_an_unsigned_notification_is_refused(stack):
    dispatch_uuid = create(stack, dispatch())
    body = payload("status_delivered")
    response = post_webhook(stack, "whatsapp", "status", body, {"Content-Type": "application/json"})
    assert response.status_code == 401
    assert view(stack, dispatch_uuid)["status"] == "in_progress"


def test_a_signed_payload_of_another_product_is_a_400(stack):
    body = payload("malformed_page_object")
    assert post_webhook(stack, "whatsapp", "status", body, signed(body)).status_code == 400


@pytest.mark.parametrize("kind", ["status", "inbound"])
def test_the_subscription_handshake(stack, kind):
    ok = stack.client.http.get(
        f"/webhooks/whatsapp/{kind}?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"
    )
    assert (ok.status_code, ok.body) == (200, b"1158201444")
    wrong = stack.client.http.get(
        f"/webhooks/whatsapp/{kind}?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess"
    )
    assert wrong.status_code == 403
