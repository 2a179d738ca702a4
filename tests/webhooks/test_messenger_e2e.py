"""Messenger end to end: a dispatch through the API goes out over the Send API (scripted), Meta's
real webhook payloads come back signed on our routes, and the dispatch completes, fails over or
relays the user's reply, as the condition says.

Messenger reports failure only synchronously, so a terminal failure here is a refused send; a
message that is never delivered fails over when its expiry passes."""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.adapters import callback_signing
from tests.e2e.test_api import create, view
from tests.webhooks.meta_signing import meta_signed
from tests.webhooks.stack import FakeResponse, ScriptedSession, post_webhook, provider_stack

EVENTS = Path(__file__).parents[1] / "events" / "messenger"
TOKEN = "EAAB-page-token"
APP_SECRET = "messenger-app-secret"
VERIFY_TOKEN = "messenger-verify-token"
CREDENTIALS = {
    "DISPATCH_MESSENGER_PAGE_ACCESS_TOKEN": TOKEN,
    "DISPATCH_MESSENGER_APP_SECRET": APP_SECRET,
    "DISPATCH_MESSENGER_VERIFY_TOKEN": VERIFY_TOKEN,
}
GRAPH = "https://graph.facebook.com/"
PAGE = "1067280970047460"
PSID = "6598743310227405"
MID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
NOTHING = {"applied": 0, "unmatched": 0, "ignored": 0, "relayed": 0}


def dispatch(condition: str = "delivered", psid: str = PSID) -> dict:
    return {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "messenger", "id": PAGE},
                "to": {"type": "messenger", "id": psid},
                "message": {"content": {"type": "text", "text": "Your parcel arrives today"}, "messenger": {"category": "update"}},
                "failover": {"expiry_time": 600, "condition_status": condition},
            },
            {
                "from": {"type": "sms", "number": "447700900001"},
                "to": {"type": "sms", "number": "447911123456"},
                "message": {"content": {"type": "text", "text": "Your parcel arrives today"}},
            },
        ],
    }


def accepted(mid: str = MID, psid: str = PSID) -> FakeResponse:
    return FakeResponse(200, {"recipient_id": psid, "message_id": mid})


def error(name: str) -> FakeResponse:
    data = json.loads((EVENTS / f"{name}.json").read_text())
    return FakeResponse(data["status"], data["body"])


def payload(name: str, change: Callable[[dict[str, Any]], None] | None = None) -> bytes:
    """A fixture, adjusted to this test, serialised the way Meta sends it (compact, escaped)."""
    data = json.loads((EVENTS / f"{name}.json").read_text())
    if change:
        change(data)
    return json.dumps(data, separators=(",", ":")).encode()


def first_event(data: dict[str, Any]) -> dict[str, Any]:
    return data["entry"][0]["messaging"][0]


def at_ms(stack, seconds: float) -> int:
    """Meta's clock (ms), `seconds` after the stack's now, when our send began."""
    return int(stack.clock.now().timestamp() * 1000 + seconds * 1000)


def watermarked(name: str, kind: str, ms: int, psid: str = PSID) -> bytes:
    def change(data: dict[str, Any]) -> None:
        first_event(data)[kind]["watermark"] = ms
        first_event(data)["sender"]["id"] = psid

    return payload(name, change)


def signed(body: bytes) -> dict[str, str]:
    return meta_signed(body, APP_SECRET)


def deliver(stack, kind: str, body: bytes) -> dict[str, Any]:
    response = post_webhook(stack, "messenger", kind, body, signed(body))
    assert response.status_code == 200, response.body
    return response.json_body


@pytest.fixture
def session() -> ScriptedSession:
    session = ScriptedSession()
    session.respond(GRAPH, accepted())
    return session


@pytest.fixture
def stack(table_name, session):
    with provider_stack(table_name, {"messenger": "messenger"}, CREDENTIALS, session) as stack:
        yield stack


def test_the_dispatch_goes_out_over_the_send_api(stack, session):
    dispatch_uuid = create(stack, dispatch())

    [call] = session.to(GRAPH)
    assert call.url == f"https://graph.facebook.com/v25.0/{PAGE}/messages"
    assert call.headers == {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    assert call.params == {"appsecret_proof": hmac.new(APP_SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()}
    assert call.json == {
        "recipient": {"id": PSID},
        "messaging_type": "UPDATE",
        "message": {"text": "Your parcel arrives today"},
    }
    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["phase"], first["status"], second["phase"]) == ("waiting", "submitted", "pending")


def test_a_delivery_naming_our_mid_completes_the_dispatch_and_sends_nothing_more(stack, session):
    dispatch_uuid = create(stack, dispatch("delivered"))

    body = payload("delivery_mids", lambda d: first_event(d)["delivery"].update(mids=[MID]))
    assert deliver(stack, "status", body) == {**NOTHING, "applied": 1}

    d = view(stack, dispatch_uuid)
    first, second = d["messages"]
    assert (d["status"], d["completed_by"]) == ("completed", first["message_uuid"])
    assert (first["status"], first["outcome"], second["phase"]) == ("delivered", "condition_met", "pending")
    assert len(session.to(GRAPH)) == 1
    assert stack.fire_due_checks(dispatch_uuid) == 0


def test_a_delivery_watermark_without_mids_completes_the_dispatch(stack, session):
    dispatch_uuid = create(stack, dispatch("delivered"))

    assert deliver(stack, "status", watermarked("delivery_watermark", "delivery", at_ms(stack, 2))) == {**NOTHING, "applied": 1}

    d = view(stack, dispatch_uuid)
    assert (d["status"], d["messages"][0]["status"], d["messages"][1]["phase"]) == ("completed", "delivered", "pending")
    assert len(session.to(GRAPH)) == 1


def test_read_is_needed_when_the_condition_is_read(stack):
    dispatch_uuid = create(stack, dispatch("read"))

    deliver(stack, "status", watermarked("delivery_watermark", "delivery", at_ms(stack, 2)))
    assert view(stack, dispatch_uuid)["status"] == "in_progress"
    assert deliver(stack, "status", watermarked("read", "read", at_ms(stack, 5))) == {**NOTHING, "applied": 1}

    d = view(stack, dispatch_uuid)
    assert (d["status"], [e["status"] for e in d["messages"][0]["history"]]) == ("completed", ["submitted", "delivered", "read"])


def test_a_watermark_from_before_the_send_applies_to_nothing(stack):
    dispatch_uuid = create(stack, dispatch("read"))

    assert deliver(stack, "status", watermarked("read", "read", at_ms(stack, -60))) == {**NOTHING, "unmatched": 1}

    assert view(stack, dispatch_uuid)["messages"][0]["status"] == "submitted"


def test_a_watermark_for_another_person_applies_to_nothing(stack):
    dispatch_uuid = create(stack, dispatch("read"))

    body = watermarked("read", "read", at_ms(stack, 5), psid="7104392158812245")
    assert deliver(stack, "status", body) == {**NOTHING, "unmatched": 1}
    assert view(stack, dispatch_uuid)["status"] == "in_progress"


def test_a_refused_send_sends_the_next_message_at_once(stack, session):
    # Messenger's terminal failure: the person turned messages off (551).
    session.respond(GRAPH, error("send_error_551"))

    dispatch_uuid = create(stack, dispatch())

    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["outcome"], first["error"]["code"], second["phase"], second["status"]) == (
        "send_failed",
        "551/1545041",
        "waiting",
        "submitted",
    )


def test_no_delivery_before_the_expiry_fails_over(stack, session):
    dispatch_uuid = create(stack, dispatch())

    stack.clock.advance(601)
    stack.fire_due_checks(dispatch_uuid)

    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["outcome"], second["phase"]) == ("expired", "waiting")
    assert len(session.to(GRAPH)) == 1


def test_a_rate_limited_send_is_retried_on_messenger(stack, session):
    session.respond(GRAPH, error("send_error_613"), accepted())
    dispatch_uuid = create(stack, dispatch())
    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["phase"], second["phase"]) == ("retrying", "pending")

    stack.clock.advance(10)
    stack.fire_due_checks(dispatch_uuid)

    first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["phase"], first["attempts"], second["phase"]) == ("waiting", 2, "pending")
    assert len(session.to(GRAPH)) == 2


def test_a_timeout_is_retried_on_messenger(stack, session):
    session.respond(GRAPH, requests.ReadTimeout("read timed out"))
    dispatch_uuid = create(stack, dispatch())
    first = view(stack, dispatch_uuid)["messages"][0]
    assert (first["phase"], first["attempts"]) == ("retrying", 1)


def inbound_callbacks(stack) -> list[tuple[str, bytes, dict]]:
    return [c for c in stack.session.callbacks() if c[0] == "https://app.example/inbound"]


def test_a_reply_is_relayed_signed_to_the_applications_inbound_url(stack):
    create(stack, dispatch())

    # The user quotes our message: matched by its mid, the id the send returned.
    assert deliver(stack, "inbound", payload("inbound_reply")) == {**NOTHING, "relayed": 1}

    [(_, body, headers)] = inbound_callbacks(stack)
    assert callback_signing.verify(headers["Authorization"], body, stack.demo.signature_secret, stack.clock.now())
    assert json.loads(body) == {
        "message_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "dispatch:inbound:messenger:m_1Zt9_Ys3kB7H5rVq0aN8xWm2cLd4pF6gJ8hK0jM2nP4qR6sT8uV0wX2yZ4aB6cD8eF0gH2iJ4kL6mN8oP0qR2s")),
        "to": {"type": "messenger", "id": PAGE},
        "from": {"type": "messenger", "id": PSID},
        "timestamp": "2025-06-25T13:16:24.300Z",
        "message": {"content": {"type": "text", "text": "STOP"}},
    }


def test_a_message_quoting_nothing_finds_the_application_by_page_and_person(stack, session):
    session.respond(GRAPH, accepted(), accepted(mid="m_other", psid="7104392158812245"))
    create(stack, dispatch())
    create(stack, dispatch(psid="7104392158812245"), headers=stack.basic(stack.other))

    assert deliver(stack, "inbound", payload("inbound_image")) == {**NOTHING, "relayed": 1}

    [(_, body, headers)] = inbound_callbacks(stack)
    # Signed for the application whose message went to this person, not the other one.
    assert callback_signing.verify(headers["Authorization"], body, stack.demo.signature_secret, stack.clock.now())
    assert json.loads(body)["message"] == {
        "content": {"type": "image", "image": {"url": "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?_nc_cat=1&oh=abc"}}
    }


def test_a_message_from_someone_we_never_wrote_to_is_not_relayed(stack):
    create(stack, dispatch())
    body = payload("inbound_text", lambda d: first_event(d)["sender"].update(id="7104392158812245"))
    assert deliver(stack, "inbound", body) == NOTHING
    assert inbound_callbacks(stack) == []


def test_a_batched_notification_applies_everything_in_it_on_either_route(stack):
    dispatch_uuid = create(stack, dispatch("delivered"))

    # A delivery of our mid, a read by someone else, the user's message, an echo and a postback.
    report = deliver(stack, "status", payload("batched"))

    assert report == {"applied": 1, "unmatched": 1, "ignored": 2, "relayed": 1}
    assert view(stack, dispatch_uuid)["status"] == "completed"


def test_an_unsigned_notification_is_refused(stack):
    dispatch_uuid = create(stack, dispatch())
    body = payload("delivery_mids", lambda d: first_event(d)["delivery"].update(mids=[MID]))
    response = post_webhook(stack, "messenger", "status", body, {"Content-Type": "application/json"})
    assert response.status_code == 401
    assert view(stack, dispatch_uuid)["status"] == "in_progress"


def test_a_signed_payload_of_another_product_is_a_400(stack):
    body = payload("malformed_instagram_object")
    assert post_webhook(stack, "messenger", "status", body, signed(body)).status_code == 400


@pytest.mark.parametrize("kind", ["status", "inbound"])
def test_the_subscription_handshake(stack, kind):
    ok = stack.client.http.get(
        f"/webhooks/messenger/{kind}?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"
    )
    assert (ok.status_code, ok.body) == (200, b"1158201444")
    wrong = stack.client.http.get(
        f"/webhooks/messenger/{kind}?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess"
    )
    assert wrong.status_code == 403
