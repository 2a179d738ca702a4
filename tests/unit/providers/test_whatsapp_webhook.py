"""WhatsApp webhooks: every fixture in tests/events/whatsapp → the exact normalised events; the
signature check on raw bytes; the GET handshake."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.adapters.providers.whatsapp import build, codes
from chalicelib.domain.model import MessageStatus, StatusEvent
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    WebhookBatch,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)
from tests.webhooks.meta_signing import hub_signature

EVENTS = Path(__file__).parents[2] / "events" / "whatsapp"
SECRET = "app-secret-0123456789"
VERIFY_TOKEN = "meatyhamhock"
CREDENTIALS = {
    "access_token": "EAAG-token",
    "phone_number_id": "106540352242922",
    "app_secret": SECRET,
    "verify_token": VERIFY_TOKEN,
}

W = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
W2 = "wamid.HBgLNDQ3OTExMTIzNDU2FQIAERgSMDA1MkM1NzE3NkMyMUI4NzJDAA=="
CBP = {"pricing": {"billable": True, "pricing_model": "CBP", "category": "service"}}
USER = "16505551234"
BUSINESS = {"type": "whatsapp", "number": "15550783881"}
FROM_USER = {"type": "whatsapp", "number": USER}
INBOUND_ID = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdGMjc4RjBBRTQ1OTdCMjc4RAA="
AT_1750857500 = datetime(2025, 6, 25, 13, 18, 20, tzinfo=timezone.utc)


def provider(credentials: dict[str, str] | None = None):
    context = ProviderContext(
        credentials=CREDENTIALS if credentials is None else credentials,
        session=None,
        clock=lambda: datetime.now(timezone.utc),
        aws_client=lambda name: None,
    )
    return build(context)


def raw(name: str) -> bytes:
    return (EVENTS / f"{name}.json").read_bytes()


def request(body: bytes, headers: dict[str, str] | None = None, query: dict[str, str] | None = None):
    return WebhookRequest(headers=headers or {}, body=body, query=query or {})


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"x-hub-signature-256": hub_signature(body, secret)}


def status(wamid: str, state: MessageStatus, code: str | None = None, reason: str | None = None, extra: Any = None):
    return ProviderStatus(wamid, StatusEvent(state, error_code=code, error_reason=reason, extra=extra or {}))


def inbound(content: dict, *, context: str | None = None, wamid: str = INBOUND_ID, at: datetime = AT_1750857500):
    return InboundMessage(
        provider_message_id=wamid,
        sender_key=USER,
        to=BUSINESS,
        from_=FROM_USER,
        content=content,
        timestamp=at,
        context_message_id=context,
    )


UNDELIVERABLE_131026 = (
    "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number."
)

#: fixture → the batch it must parse to, exactly.
CASES: dict[str, WebhookBatch] = {
    "status_sent": WebhookBatch(
        statuses=(
            status("wamid.HBgNNTUxNjk5MjMxODIyMhUCABEYEjgxQkVFRDVBQTVDODFDOTg3MQA=", MessageStatus.SUBMITTED, extra=CBP),
        )
    ),
    "status_delivered": WebhookBatch(statuses=(status(W, MessageStatus.DELIVERED, extra=CBP),)),
    "status_read": WebhookBatch(statuses=(status(W, MessageStatus.READ),)),
    "status_failed_131047": WebhookBatch(
        statuses=(
            status(
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA",
                MessageStatus.REJECTED,
                "131047",
                "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
            ),
        )
    ),
    "status_failed_131026": WebhookBatch(
        statuses=(status(W, MessageStatus.UNDELIVERABLE, "131026", UNDELIVERABLE_131026),)
    ),
    "status_failed_130429": WebhookBatch(
        statuses=(status(W, MessageStatus.REJECTED, "130429", "Cloud API message throughput has been reached."),)
    ),
    "status_failed_132001": WebhookBatch(
        statuses=(status(W, MessageStatus.REJECTED, "132001", "Template does not exist"),)
    ),
    "status_failed_no_errors": WebhookBatch(statuses=(status(W, MessageStatus.REJECTED),)),
    "status_batched": WebhookBatch(
        statuses=(
            status(W, MessageStatus.DELIVERED, extra=CBP),
            status(W2, MessageStatus.SUBMITTED, extra=CBP),
            status(W2, MessageStatus.READ),
            status(
                "wamid.THIRD",
                MessageStatus.UNDELIVERABLE,
                "131049",
                "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
            ),
        )
    ),
    "status_unknown": WebhookBatch(statuses=(status(W, MessageStatus.DELIVERED),), ignored=1),
    "status_v24_pricing": WebhookBatch(
        statuses=(
            status(
                W,
                MessageStatus.SUBMITTED,
                extra={"pricing": {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}},
            ),
        )
    ),
    "inbound_text": WebhookBatch(inbound=(inbound({"type": "text", "text": "Yes, please deliver tomorrow"}),)),
    "inbound_reply_with_context": WebhookBatch(inbound=(inbound({"type": "text", "text": "STOP"}, context=W),)),
    "inbound_image": WebhookBatch(
        inbound=(
            inbound(
                {"type": "image", "image": {"id": "1479537139650973", "mime_type": "image/jpeg", "caption": "the parcel"}}
            ),
        )
    ),
    "inbound_document": WebhookBatch(
        inbound=(
            inbound(
                {"type": "file", "file": {"id": "1003383421387256", "mime_type": "application/pdf", "name": "receipt.pdf"}}
            ),
        )
    ),
    "inbound_audio": WebhookBatch(
        inbound=(inbound({"type": "audio", "audio": {"id": "1211563506781090", "mime_type": "audio/ogg; codecs=opus"}}),)
    ),
    "inbound_video": WebhookBatch(
        inbound=(
            inbound({"type": "video", "video": {"id": "1133428864707716", "mime_type": "video/mp4", "caption": "unboxing"}}),
        )
    ),
    "inbound_location": WebhookBatch(
        inbound=(
            inbound(
                {
                    "type": "location",
                    "location": {
                        "lat": 37.483872,
                        "long": -122.148358,
                        "name": "Meta Headquarters",
                        "address": "1 Hacker Way, Menlo Park, CA 94025",
                    },
                }
            ),
        )
    ),
    "inbound_button": WebhookBatch(
        inbound=(inbound({"type": "button", "button": {"payload": "DELIVER_TOMORROW", "text": "Tomorrow"}}, context=W),)
    ),
    "inbound_reaction": WebhookBatch(inbound=(inbound({"type": "unsupported"}),)),
    "inbound_unsupported": WebhookBatch(inbound=(inbound({"type": "unsupported"}),)),
    "mixed_statuses_and_messages": WebhookBatch(
        statuses=(status(W, MessageStatus.READ),),
        inbound=(
            inbound(
                {"type": "text", "text": "thanks"},
                wamid="wamid.REPLY2",
                at=datetime(2025, 6, 25, 13, 18, 21, tzinfo=timezone.utc),
            ),
        ),
    ),
    "other_field": WebhookBatch(ignored=1),
    "value_errors": WebhookBatch(ignored=1),
}

MALFORMED = ["malformed_page_object", "malformed_status_without_id", "malformed_entry_not_a_list", "malformed_bad_timestamp"]


def test_every_webhook_fixture_has_a_case():
    names = {p.stem for p in EVENTS.glob("*.json") if not p.stem.startswith("send_")}
    assert names == set(CASES) | set(MALFORMED)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("kind", ["status", "inbound"])
def test_fixture_parses_to_exactly_these_events(name, kind):
    body = raw(name)
    wa = provider()
    wa.verify(request(body, signed(body)))
    assert wa.parse(request(body), kind) == CASES[name]


@pytest.mark.parametrize("name", MALFORMED)
def test_a_payload_of_the_wrong_shape_is_malformed(name):
    with pytest.raises(WebhookMalformed):
        provider().parse(request(raw(name)), "status")


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"object": "whatsapp_business_account"}', b"\xff\xfe"])
def test_a_body_that_is_not_a_notification_is_malformed(body):
    with pytest.raises(WebhookMalformed):
        provider().parse(request(body), "status")


def test_a_malformed_reason_names_the_field_not_the_user_text():
    body = json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {"messages": [{"from": "1", "id": "x", "timestamp": "1", "type": "text", "text": {"body": 12345}}]}}]}]}
    ).encode()
    with pytest.raises(WebhookMalformed) as raised:
        provider().parse(request(body), "inbound")
    assert "messages.0.text.body" in str(raised.value) and "12345" not in str(raised.value)


def test_every_failed_code_maps_to_the_documented_status():
    assert {code: codes.failed_status(code) for code in (131026, 131049, 131050, 130472)} == dict.fromkeys(
        (131026, 131049, 131050, 130472), MessageStatus.UNDELIVERABLE
    )
    for code in (131047, 131048, 132000, 132015, 130429, 131056, 131000, 190, None):
        assert codes.failed_status(code) is MessageStatus.REJECTED, code


def test_an_unknown_status_is_logged_by_name_only(caplog):
    caplog.set_level("INFO")
    provider().parse(request(raw("status_unknown")), "status")
    ignored = [r for r in caplog.records if r.getMessage() == "whatsapp status ignored"]
    assert [r.status for r in ignored] == ["played"]  # type: ignore[attr-defined]


# --- signature ---------------------------------------------------------------------------------


def test_the_signature_is_checked_on_the_raw_bytes():
    body = raw("status_delivered")
    reserialised = json.dumps(json.loads(body)).encode()
    assert reserialised != body
    provider().verify(request(body, signed(body)))
    with pytest.raises(WebhookUnauthorized):
        provider().verify(request(reserialised, signed(body)))


def test_an_upper_case_hex_signature_is_accepted():
    body = raw("status_read")
    header = signed(body)["x-hub-signature-256"]
    provider().verify(request(body, {"x-hub-signature-256": "sha256=" + header[7:].upper()}))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-hub-signature-256": ""},
        {"x-hub-signature-256": "sha256="},
        {"x-hub-signature-256": "sha1=0123"},
        {"x-hub-signature": "sha1=0123456789abcdef0123456789abcdef01234567"},
        {"x-hub-signature-256": "sha256=ünïcode"},
    ],
)
def test_a_missing_or_foreign_signature_is_refused(headers):
    with pytest.raises(WebhookUnauthorized):
        provider().verify(request(raw("status_read"), headers))


def test_a_signature_by_another_secret_is_refused():
    body = raw("status_read")
    with pytest.raises(WebhookUnauthorized):
        provider().verify(request(body, signed(body, "another-secret")))


def test_without_an_app_secret_everything_is_refused_and_build_says_which_key(caplog):
    credentials = {k: v for k, v in CREDENTIALS.items() if k != "app_secret"}
    caplog.set_level("WARNING")
    wa = provider(credentials)
    body = raw("status_read")
    with pytest.raises(WebhookUnauthorized, match="app_secret"):
        wa.verify(request(body, signed(body, "")))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["whatsapp credentials missing: app_secret"]
    # Once, at build: verifying again logs nothing more.
    with pytest.raises(WebhookUnauthorized):
        wa.verify(request(body, signed(body, "")))
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1


# --- GET handshake -----------------------------------------------------------------------------

HANDSHAKE = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}


def test_the_handshake_with_our_verify_token_gets_the_challenge_back():
    assert provider().challenge(request(b"", query=HANDSHAKE)) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {**HANDSHAKE, "hub.verify_token": "not-ours"},
        {**HANDSHAKE, "hub.verify_token": ""},
        {**HANDSHAKE, "hub.mode": "unsubscribe"},
        {k: v for k, v in HANDSHAKE.items() if k != "hub.verify_token"},
        {k: v for k, v in HANDSHAKE.items() if k != "hub.challenge"},
        {**HANDSHAKE, "hub.challenge": "<script>alert(1)</script>"},
        {**HANDSHAKE, "hub.verify_token": "ünïcode"},
        {},
    ],
)
def test_any_other_handshake_gets_nothing(query):
    assert provider().challenge(request(b"", query=query)) is None


def test_without_a_verify_token_configured_no_handshake_succeeds():
    credentials = {k: v for k, v in CREDENTIALS.items() if k != "verify_token"}
    assert provider(credentials).challenge(request(b"", query={**HANDSHAKE, "hub.verify_token": ""})) is None
