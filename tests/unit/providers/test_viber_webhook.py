"""Viber callbacks: every fixture in tests/events/viber → its normalised events (one table),
and the signature and freshness checks on the raw body."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.adapters.providers.viber import build
from chalicelib.domain.model import MessageStatus, StatusEvent
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    WebhookBatch,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)

EVENTS = Path(__file__).parents[2] / "events" / "viber"
TOKEN = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"
NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
#: The time every callback fixture carries (1457764197627 ms).
AT = datetime(2016, 3, 12, 6, 29, 57, 627000, tzinfo=timezone.utc)
USER = "01234567890A="
TOKEN_ID = "4912661846655238145"
BOT = {"type": "viber_service_msg", "id": "pa:5354186472512395000"}
FROM_USER = {"type": "viber_service_msg", "id": USER}


def provider(credentials=None, now: datetime = NOW):
    context = ProviderContext(
        credentials={"auth_token": TOKEN, "account_id": BOT["id"]} if credentials is None else credentials,
        session=None,
        clock=lambda: now,
        aws_client=lambda name: None,
    )
    return build(context)


def raw(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def inbound(token: str, content: dict) -> WebhookBatch:
    return WebhookBatch(inbound=(InboundMessage(token, USER, BOT, FROM_USER, content, AT),))


def status(status: MessageStatus, code: str | None = None, reason: str | None = None, token: str = TOKEN_ID):
    return WebhookBatch(statuses=(ProviderStatus(token, StatusEvent(status, code, reason)),))


PICTURE = "https://dl-media.viber.com/5/media/2/short/any/sig/image/0x0/2b31/picture.jpg"

#: Fixture → the events it must produce.
EXPECTED: dict[str, WebhookBatch] = {
    "delivered.json": status(MessageStatus.DELIVERED),
    "delivered_token_as_string.json": status(MessageStatus.DELIVERED),
    "seen.json": status(MessageStatus.READ),
    "failed.json": status(MessageStatus.UNDELIVERABLE, "viber_failed", "failure desc"),
    "failed_without_desc.json": status(MessageStatus.UNDELIVERABLE, "viber_failed"),
    "message_text.json": inbound("4912661846655238146", {"type": "text", "text": "a message to the service"}),
    "message_picture.json": inbound(
        "4912661846655238147", {"type": "image", "image": {"url": PICTURE, "caption": "my receipt"}}
    ),
    "message_picture_no_caption.json": inbound("4912661846655238148", {"type": "image", "image": {"url": PICTURE}}),
    "message_video.json": inbound(
        "4912661846655238149",
        {"type": "video", "video": {"url": "https://dl-media.viber.com/5/media/2/short/any/sig/video/clip.mp4"}},
    ),
    "message_file.json": inbound(
        "4912661846655238150",
        {"type": "file", "file": {"url": "https://dl-media.viber.com/5/media/2/short/any/sig/file/invoice.pdf"}},
    ),
    "message_sticker.json": inbound(
        "4912661846655238151", {"type": "image", "image": {"url": "https://viber.com/stickers/46105.png"}}
    ),
    "message_url.json": inbound("4912661846655238152", {"type": "text", "text": "https://www.example.com/order/123"}),
    "message_location.json": inbound(
        "4912661846655238153", {"type": "location", "location": {"lat": 50.76891, "long": 6.11499}}
    ),
    "message_contact.json": inbound("4912661846655238154", {"type": "unsupported"}),
    "webhook.json": WebhookBatch(ignored=1),
    "subscribed.json": WebhookBatch(ignored=1),
    "unsubscribed.json": WebhookBatch(ignored=1),
    "conversation_started.json": WebhookBatch(ignored=1),
    "unknown_event.json": WebhookBatch(ignored=1),
}

MALFORMED = sorted(p.name for p in EVENTS.glob("malformed_*.json"))


def test_every_callback_fixture_is_in_a_table():
    callbacks = {p.name for p in EVENTS.glob("*.json") if not p.name.startswith("send_")}
    assert callbacks == set(EXPECTED) | set(MALFORMED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("kind", ["status", "inbound"])
def test_each_callback_becomes_its_events_on_either_route(name, kind):
    # A bot has one webhook URL, so both routes must read every event.
    assert provider().parse(WebhookRequest({}, raw(name)), kind) == EXPECTED[name]


@pytest.mark.parametrize("name", MALFORMED)
def test_a_payload_viber_does_not_send_is_malformed(name):
    with pytest.raises(WebhookMalformed):
        provider().parse(WebhookRequest({}, raw(name)), "status")


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b'"delivered"', b"null"])
def test_a_body_that_is_not_a_json_object_is_malformed(body):
    with pytest.raises(WebhookMalformed):
        provider().parse(WebhookRequest({}, body), "status")


def test_an_inbound_message_names_the_bot_only_when_its_account_id_is_configured():
    batch = provider({"auth_token": TOKEN}).parse(WebhookRequest({}, raw("message_text.json")), "inbound")
    assert batch.inbound[0].to == {"type": "viber_service_msg"}


def test_unknown_and_unused_events_are_logged_by_name_only(caplog):
    caplog.set_level(logging.INFO, logger="chalicelib.adapters.providers.viber")
    provider().parse(WebhookRequest({}, raw("unknown_event.json")), "status")
    [record] = [r for r in caplog.records if r.getMessage() == "viber event ignored"]
    assert (record.event, record.kind) == ("client_status", "unknown")  # type: ignore[attr-defined]


# --- verify -----------------------------------------------------------------------------------


def fresh(name: str, at: datetime = NOW) -> bytes:
    body = json.loads(raw(name))
    body["timestamp"] = int(at.timestamp() * 1000)
    return json.dumps(body).encode()


def signed(body: bytes, key: str = TOKEN, header: str = "x-viber-content-signature") -> WebhookRequest:
    signature = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest({header: signature}, body)


def test_a_body_signed_with_the_auth_token_is_accepted():
    provider().verify(signed(fresh("seen.json")))


def test_the_signature_may_come_in_upper_case_hex():
    request = signed(fresh("seen.json"))
    provider().verify(WebhookRequest({k: v.upper() for k, v in request.headers.items()}, request.body))


@pytest.mark.parametrize(
    "request_",
    [
        signed(fresh("seen.json"), key="another-bots-token"),
        WebhookRequest({}, fresh("seen.json")),
        WebhookRequest({"x-viber-content-signature": ""}, fresh("seen.json")),
        WebhookRequest({"x-viber-content-signature": "sha256=" + "0" * 64}, fresh("seen.json")),
        WebhookRequest({"x-viber-content-signature": "é"}, fresh("seen.json")),
        # Signed over the same JSON with other whitespace: the check is on the exact bytes.
        WebhookRequest(signed(fresh("seen.json")).headers, json.dumps(json.loads(fresh("seen.json")), indent=1).encode()),
    ],
    ids=["wrong-key", "no-header", "empty", "prefixed", "non-ascii", "reserialised"],
)
def test_anything_but_viber_s_signature_is_refused(request_):
    with pytest.raises(WebhookUnauthorized):
        provider().verify(request_)


def test_without_an_auth_token_every_callback_is_refused():
    with pytest.raises(WebhookUnauthorized, match="auth_token"):
        provider({}).verify(signed(fresh("seen.json")))


@pytest.mark.parametrize("age", [timedelta(minutes=66), timedelta(days=1), timedelta(minutes=-6)])
def test_a_callback_outside_the_time_window_is_refused(age):
    with pytest.raises(WebhookUnauthorized, match="window"):
        provider().verify(signed(fresh("seen.json", NOW - age)))


@pytest.mark.parametrize("age", [timedelta(0), timedelta(minutes=64), timedelta(minutes=-4)])
def test_a_callback_inside_the_window_passes_even_a_late_retry(age):
    # Viber retries an unanswered callback for an hour, with the event's original timestamp.
    provider().verify(signed(fresh("seen.json", NOW - age)))


def test_a_signed_body_without_a_time_passes_verify_and_is_refused_as_malformed():
    request = signed(raw("malformed_no_timestamp.json"))
    provider().verify(request)
    with pytest.raises(WebhookMalformed):
        provider().parse(request, "status")


def test_there_is_no_get_handshake():
    assert provider().challenge(WebhookRequest({}, b"", {"hub.challenge": "1"})) is None


def test_build_warns_once_when_the_auth_token_is_missing(caplog):
    caplog.set_level(logging.WARNING, logger="chalicelib.adapters.providers.viber")
    provider({"sender_name": "Acme"})
    provider()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.missing for r in warnings] == ["auth_token"]  # type: ignore[attr-defined]
    assert TOKEN not in caplog.text
