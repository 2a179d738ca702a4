"""Vonage webhooks: every fixture to its exact normalised events, malformed bodies refused, and
the HS256 + payload_hash + iat signature check on the raw bytes."""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest

from chalicelib.adapters.providers import vonage
from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.domain.model import MessageStatus, StatusEvent, Usage
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    WebhookBatch,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)
from tests.fakes import FakeClock

EVENTS = Path(__file__).parents[2] / "events" / "vonage"
NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
SECRET = "s3cret-signature-0123456789abcdef"


def make(clock: FakeClock | None = None, **credentials: str) -> vonage.VonageProvider:
    clock = clock or FakeClock(NOW)
    values = {"application_id": "app", "private_key": "unused", "signature_secret": SECRET, **credentials}
    return vonage.build(
        ProviderContext(
            credentials={k: v for k, v in values.items() if v},
            session=None,
            clock=clock.now,
            aws_client=lambda name: None,
        )
    )


def request(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(headers=headers or {}, body=body)


def status(message_uuid: str, status: MessageStatus, code=None, reason=None, usage=None) -> WebhookBatch:
    event = StatusEvent(status, error_code=code, error_reason=reason, usage=usage)
    return WebhookBatch(statuses=(ProviderStatus(message_uuid, event),))


def inbound(**fields) -> WebhookBatch:
    defaults = {
        "provider_message_id": "52afe398-e31a-4362-8c42-beb0c3b1d098",
        "timestamp": datetime(2020, 1, 1, 14, 0, tzinfo=timezone.utc),
        "context_message_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    }
    return WebhookBatch(inbound=(InboundMessage(**{**defaults, **fields}),))


def wa(number: str) -> dict[str, str]:
    return {"type": "whatsapp", "number": number}


EUR_0333 = Usage(price="0.0333", currency="EUR")

#: Every webhook fixture → the batch it must parse to.
EXPECTED: dict[str, WebhookBatch] = {
    "status_submitted_sms.json": status(
        "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
        MessageStatus.SUBMITTED,
        "1000",
        "Throttled - You have exceeded the submission capacity allowed on this account. Please wait and retry",
        EUR_0333,
    ),
    "status_delivered_whatsapp.json": status(
        "2f1e3c4d-5b6a-4789-8abc-def012345678", MessageStatus.DELIVERED, usage=Usage("0.0147", "EUR")
    ),
    "status_read_whatsapp.json": status("2f1e3c4d-5b6a-4789-8abc-def012345678", MessageStatus.READ),
    "status_read_messenger.json": status("6c0f2a1e-8d3b-4e5f-9a7c-1b2d3e4f5a6b", MessageStatus.READ),
    "status_delivered_viber.json": status(
        "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", MessageStatus.DELIVERED, usage=Usage("0.0120", "EUR")
    ),
    "status_rejected_sms.json": status(
        "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
        MessageStatus.REJECTED,
        "1240",
        "Illegal Number - You tried to send a message to a blacklisted phone number.",
        Usage("0.0000", "EUR"),
    ),
    "status_rejected_whatsapp_outside_window.json": status(
        "2f1e3c4d-5b6a-4789-8abc-def012345678",
        MessageStatus.REJECTED,
        "1340",
        "Outside of the allowed window - This message is sent outside of allowed response window.",
    ),
    "status_undeliverable_mms.json": status(
        "3b2a1f0e-9d8c-4b7a-8f6e-5d4c3b2a1f0e",
        MessageStatus.UNDELIVERABLE,
        "1260",
        "Destination unreachable - The message could not be delivered to the phone number.",
    ),
    "status_rejected_v01_shape.json": status(
        "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        MessageStatus.REJECTED,
        "1300",
        "Not part of the provider network",
        EUR_0333,
    ),
    "status_unmapped_accepted.json": WebhookBatch(ignored=1),
    "inbound_sms_text.json": inbound(
        sender_key="sms:447700900001",
        to={"type": "sms", "number": "447700900000"},
        from_={"type": "sms", "number": "447700900001"},
        content={"type": "text", "text": "Hello From Vonage!"},
        context_message_id=None,
    ),
    "inbound_whatsapp_text_reply.json": inbound(
        sender_key="whatsapp:447700900001",
        to=wa("447700900000"),
        from_=wa("447700900001"),
        content={"type": "text", "text": "Nexmo Verification code: 12345.<br />Valid for 10 minutes."},
    ),
    "inbound_whatsapp_image.json": inbound(
        sender_key="whatsapp:447700900001",
        to=wa("447700900000"),
        from_=wa("447700900001"),
        content={"type": "image", "image": {"url": "https://example.com/image.jpg"}},
    ),
    "inbound_whatsapp_location.json": inbound(
        sender_key="whatsapp:447700900001",
        to=wa("447700900000"),
        from_=wa("447700900001"),
        content={
            "type": "location",
            "location": {"lat": 40.34772, "long": -74.18847, "name": "Vonage", "address": "23 Main St, Holmdel, NJ 07733, USA"},
        },
    ),
    "inbound_whatsapp_interactive_reply.json": inbound(
        sender_key="whatsapp:447700900001",
        to=wa("447700900000"),
        from_=wa("447700900001"),
        content={"type": "reply", "reply": {"id": "row1", "title": "9am", "description": "Select 9am appointment time"}},
    ),
    "inbound_whatsapp_unsupported.json": inbound(
        sender_key="whatsapp:447700900001",
        to=wa("447700900000"),
        from_=wa("447700900001"),
        content={"type": "unsupported"},
    ),
    "inbound_messenger_file.json": inbound(
        sender_key="messenger:9876543210",
        to={"type": "messenger", "id": "0123456789"},
        from_={"type": "messenger", "id": "9876543210"},
        content={"type": "file", "file": {"url": "https://example.com/file.pdf"}},
        context_message_id=None,
    ),
    "inbound_mms_image.json": inbound(
        sender_key="mms:447700900001",
        to={"type": "mms", "number": "447700900000"},
        from_={"type": "mms", "number": "447700900001"},
        content={"type": "image", "image": {"url": "https://example.com/image.jpg"}},
        context_message_id=None,
    ),
    "inbound_viber_text.json": inbound(
        provider_message_id="0e1d2c3b-4a59-4687-a5b4-c3d2e1f0a9b8",
        sender_key="viber_service_msg:447700900000",
        to={"type": "viber_service_msg", "id": "16273"},
        from_={"type": "viber_service_msg", "number": "447700900000"},
        content={"type": "text", "text": "Yes, please"},
        timestamp=datetime(2025, 2, 3, 12, 40, tzinfo=timezone.utc),
        context_message_id="9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
    ),
    "inbound_unmapped_channel_rcs.json": WebhookBatch(ignored=1),
}


def test_every_webhook_fixture_has_an_expectation():
    files = {p.name for p in EVENTS.glob("*.json") if not p.name.startswith("send_")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_the_expected_events(name):
    kind = "status" if name.startswith("status_") else "inbound"
    body = (EVENTS / name).read_bytes()
    assert make().parse(request(body), kind) == EXPECTED[name]


def test_unmapped_statuses_are_logged_by_name_only(caplog):
    caplog.set_level(logging.INFO)
    make().parse(request((EVENTS / "status_unmapped_accepted.json").read_bytes()), "status")
    (record,) = [r for r in caplog.records if r.getMessage() == "vonage status not mapped"]
    assert record.status == "accepted"


def test_an_inbound_type_vonage_adds_later_is_relayed_as_unsupported():
    body = json.dumps({
        "channel": "whatsapp", "message_uuid": "m-1", "to": "447700900000", "from": "447700900001",
        "timestamp": "2025-02-03T12:00:00Z", "message_type": "poll", "poll": {"q": "?"},
    }).encode()
    (message,) = make().parse(request(body), "inbound").inbound
    assert message.content == {"type": "unsupported"}


def test_an_inbound_message_without_a_usable_timestamp_takes_our_receipt_time():
    body = json.dumps({
        "channel": "sms", "message_uuid": "m-1", "to": "447700900000", "from": "447700900001",
        "timestamp": "yesterday", "message_type": "text", "text": "hi",
    }).encode()
    (message,) = make().parse(request(body), "inbound").inbound
    assert message.timestamp == NOW


def test_a_leading_plus_from_vonage_still_gives_the_stored_key():
    body = json.dumps({
        "channel": "whatsapp", "message_uuid": "m-1", "to": "447700900000", "from": "+447700900001",
        "timestamp": "2025-02-03T12:00:00Z", "message_type": "text", "text": "hi",
    }).encode()
    (message,) = make().parse(request(body), "inbound").inbound
    assert message.sender_key == "whatsapp:447700900001"


MALFORMED = [
    ("status", b"not json"),
    ("status", b"\xff\xfe"),
    ("status", b'[{"message_uuid": "m-1", "status": "delivered"}]'),
    ("status", b'{"status": "delivered"}'),
    ("status", b'{"message_uuid": "m-1"}'),
    ("status", b'{"message_uuid": 7, "status": "delivered"}'),
    ("inbound", b'{"message_uuid": "m-1", "channel": "sms", "to": "447700900000", "message_type": "text", "text": "x"}'),
    ("inbound", b'{"message_uuid": "m-1", "channel": "sms", "to": "4477", "from": "4478"}'),
    ("inbound", b'{"message_uuid": "m-1", "channel": "sms", "to": "4477", "from": "4478", "message_type": "text", "text": 5}'),
    ("inbound", b'{"message_uuid": "m-1", "channel": "whatsapp", "to": "4477", "from": "4478", "message_type": "image", "image": "u"}'),
    ("inbound", b'{"to": "4477", "from": "4478", "channel": "sms", "message_type": "text", "text": "x"}'),
    # A status posted to the inbound URL is not an inbound message.
    ("inbound", (EVENTS / "status_read_whatsapp.json").read_bytes()),
]


@pytest.mark.parametrize(("kind", "body"), MALFORMED)
def test_malformed_bodies_are_refused(kind, body):
    with pytest.raises(WebhookMalformed):
        make().parse(request(body), kind)


def test_the_provider_has_no_get_handshake():
    assert make().challenge(WebhookRequest(headers={}, body=b"", query={"hub.challenge": "1"})) is None


# --- signature ----------------------------------------------------------------------------------

BODY = (EVENTS / "status_read_whatsapp.json").read_bytes()


def signed(body: bytes, secret: str = SECRET, at: datetime = NOW, **claims) -> dict[str, str]:
    payload = {
        "iat": int(at.timestamp()),
        "jti": "c5ba8f24-1a14-4c10-bfdf-3fbe8ce511b5",
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "a1b2c3d",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        **claims,
    }
    token = jwt.encode(payload, secret, algorithm="HS256", headers={"typ": "JWT"})
    return {"authorization": f"Bearer {token}"}


def test_a_vonage_signed_body_is_accepted():
    make().verify(request(BODY, signed(BODY)))


@pytest.mark.parametrize("skew", [-300, -1, 0, 29])
def test_tokens_within_the_window_are_accepted(skew):
    make().verify(request(BODY, signed(BODY, at=NOW + timedelta(seconds=skew))))


def test_the_scheme_name_is_case_insensitive():
    headers = {"authorization": signed(BODY)["authorization"].replace("Bearer", "bearer")}
    make().verify(request(BODY, headers))


def test_an_uppercase_payload_hash_is_accepted():
    make().verify(request(BODY, signed(BODY, payload_hash=hashlib.sha256(BODY).hexdigest().upper())))


def _none_token(body: bytes) -> dict[str, str]:
    token = jwt.encode({"iat": int(NOW.timestamp()), "payload_hash": hashlib.sha256(body).hexdigest()}, None, algorithm="none")
    return {"authorization": f"Bearer {token}"}


REFUSED = {
    "no header": (BODY, {}),
    "not bearer": (BODY, {"authorization": "Basic YWFhOmJiYg=="}),
    "empty bearer": (BODY, {"authorization": "Bearer "}),
    "garbage token": (BODY, {"authorization": "Bearer not.a.jwt"}),
    "wrong secret": (BODY, signed(BODY, secret="another-secret-0123456789abcdefgh")),
    "tampered body": (BODY.replace(b"read", b"rejected"), signed(BODY)),
    "hash of another body": (BODY, signed(b"{}")),
    "no payload_hash": (BODY, signed(BODY, payload_hash=None)),
    "too old": (BODY, signed(BODY, at=NOW - timedelta(seconds=301))),
    "in the future": (BODY, signed(BODY, at=NOW + timedelta(seconds=31))),
    "iat not a number": (BODY, signed(BODY, iat="1587494962")),
    "iat a boolean": (BODY, signed(BODY, iat=True)),
    # Signed (so only Vonage's secret could send them), but once an OverflowError: a 500.
    "iat 10**400": (BODY, signed(BODY, iat=10**400)),
    "exp 10**400": (BODY, signed(BODY, exp=10**400)),
    "exp -10**400": (BODY, signed(BODY, exp=-(10**400))),
    "iat NaN": (BODY, signed(BODY, iat=float("nan"))),
    "expired": (BODY, signed(BODY, exp=int(NOW.timestamp()) - 60)),
    "alg none": (BODY, _none_token(BODY)),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_requests_not_provably_from_vonage_are_refused(case):
    body, headers = REFUSED[case]
    with pytest.raises(WebhookUnauthorized):
        make().verify(request(body, headers))


def test_an_hs256_token_keyed_with_an_rsa_public_key_is_refused():
    # Key confusion: our secret is not a PEM, but the algorithm list is what must stop it.
    from chalicelib.service.applications import generate_key_pair

    private_pem, _ = generate_key_pair()
    token = jwt.encode({"iat": int(NOW.timestamp()), "payload_hash": hashlib.sha256(BODY).hexdigest()}, private_pem, algorithm="RS256")
    with pytest.raises(WebhookUnauthorized):
        make().verify(request(BODY, {"authorization": f"Bearer {token}"}))


def test_without_a_signature_secret_everything_is_refused():
    with pytest.raises(WebhookUnauthorized, match="signature_secret"):
        make(signature_secret="").verify(request(BODY, signed(BODY)))


def test_freshness_is_judged_by_the_injected_clock():
    clock = FakeClock(NOW)
    provider = make(clock)
    headers = signed(BODY)
    provider.verify(request(BODY, headers))
    clock.advance(301)
    with pytest.raises(WebhookUnauthorized, match="too old"):
        provider.verify(request(BODY, headers))
