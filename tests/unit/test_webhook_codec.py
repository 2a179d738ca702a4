"""The queued form of webhook events: every event kind round-trips exactly, chunks keep to SQS's
limits and to their order, and a document the codec did not write is refused."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.adapters import webhook_codec
from chalicelib.adapters.webhook_codec import ChunkInvalid, WebhookChunk, chunk_bodies, decode, encode
from chalicelib.domain.model import MessageStatus, StatusEvent, Usage
from chalicelib.service.ports import MessageHint
from chalicelib.service.webhooks import InboundMessage, ProviderStatus, RecipientStatus

AT = datetime(2025, 6, 25, 13, 29, 44, 123456, tzinfo=timezone.utc)

FULL_STATUS = ProviderStatus(
    "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
    StatusEvent(
        MessageStatus.REJECTED,
        error_code="131047",
        error_reason="More than 24 hours have passed — «fenêtre» fermée",
        usage=Usage(price="0.0333", currency="EUR"),
        event_id="sns-notification-1",
        extra={"pricing": {"billable": True, "category": "service", "rate": 1.5, "tiers": [1, None]}},
    ),
    hint=MessageHint("3fa85f64-5717-4562-b3fc-2c963f66afa6", 1),
)
BARE_STATUS = ProviderStatus("5741311803571721087", StatusEvent(MessageStatus.DELIVERED))
WATERMARK = RecipientStatus("1067280970047460#6598743310227405", AT, MessageStatus.READ)
INBOUND = InboundMessage(
    provider_message_id="wamid.inbound",
    sender_key="16505551234",
    to={"type": "whatsapp", "number": "15550783881"},
    from_={"type": "whatsapp", "number": "16505551234"},
    content={"type": "text", "text": "oui 👍 \u202e\n\"quoted\" \\ <b>"},
    timestamp=AT,
    context_message_id="wamid.quoted",
)
BARE_INBOUND = InboundMessage(
    provider_message_id="in-2",
    sender_key="u",
    to={"type": "sms", "number": "447700900001"},
    from_={"type": "sms", "number": "447911123456"},
    content={"type": "unsupported"},
    timestamp=AT.astimezone(timezone(timedelta(hours=5, minutes=30))),
)
EVERY_KIND = (FULL_STATUS, BARE_STATUS, WATERMARK, INBOUND, BARE_INBOUND)


@pytest.mark.parametrize("event", EVERY_KIND, ids=lambda e: type(e).__name__)
def test_every_event_kind_round_trips(event):
    chunk = WebhookChunk("whatsapp", (event,))
    assert decode(encode(chunk)) == chunk


def test_a_chunk_keeps_its_events_in_order():
    chunk = WebhookChunk("messenger", EVERY_KIND)
    decoded = decode(encode(chunk))
    assert decoded == chunk
    assert decoded.events[3].timestamp == AT  # type: ignore[union-attr]


def test_the_encoding_is_ascii_and_holds_only_the_event_fields():
    text = encode(WebhookChunk("whatsapp", EVERY_KIND))
    assert text.isascii()  # SQS refuses some code points a JSON string may hold
    document = json.loads(text)
    assert set(document) == {"v", "provider", "events"}
    assert [e["type"] for e in document["events"]] == ["status", "status", "watermark", "inbound", "inbound"]
    assert set(document["events"][1]) == {"type", "id", "status"}  # None fields left out


def test_chunks_hold_at_most_the_count_and_split_in_order():
    events = [ProviderStatus(f"id-{i}", StatusEvent(MessageStatus.DELIVERED)) for i in range(250)]
    bodies, too_large = chunk_bodies("whatsapp", events, max_events=100)
    assert too_large == []
    chunks = [decode(body) for body in bodies]
    assert [len(c.events) for c in chunks] == [100, 100, 50]
    assert [e for c in chunks for e in c.events] == events


def test_chunks_keep_under_the_byte_limit_and_a_single_oversized_event_is_handed_back():
    text = "x" * 3000
    events = [
        InboundMessage(f"in-{i}", "u", {}, {}, {"type": "text", "text": text}, AT) for i in range(10)
    ]
    huge = InboundMessage("huge", "u", {}, {}, {"type": "text", "text": "y" * 20_000}, AT)
    bodies, too_large = chunk_bodies("viber", [*events[:5], huge, *events[5:]], max_bytes=10_000)
    assert too_large == [huge]
    assert all(len(body.encode()) <= 10_000 for body in bodies)
    assert [e for body in bodies for e in decode(body).events] == events
    # An event is about 3.2 KB encoded: three fit in 10,000 bytes, a fourth would not.
    assert [len(decode(body).events) for body in bodies] == [3, 3, 3, 1]


def test_the_default_chunk_fits_an_sqs_message():
    reason = "r" * 2000  # a long Meta error text on every status
    events = [
        ProviderStatus(f"wamid.{i:040d}", StatusEvent(MessageStatus.REJECTED, "131047", reason))
        for i in range(webhook_codec.MAX_EVENTS_PER_CHUNK * 2)
    ]
    bodies, _ = chunk_bodies("whatsapp", events)
    assert all(len(body) <= webhook_codec.MAX_MESSAGE_BYTES for body in bodies)
    assert sum(len(decode(body).events) for body in bodies) == len(events)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "[]",
        '{"v": 2, "provider": "whatsapp", "events": []}',
        '{"v": 1, "events": []}',
        '{"v": 1, "provider": "whatsapp", "events": {}}',
        '{"v": 1, "provider": "whatsapp", "events": [{"type": "nope"}]}',
        '{"v": 1, "provider": "whatsapp", "events": [{"type": "status", "id": "a", "status": "lost"}]}',
        '{"v": 1, "provider": "whatsapp", "events": [{"type": "status", "id": 5, "status": "read"}]}',
        '{"v": 1, "provider": "w", "events": [{"type": "watermark", "recipient": "r", "status": "read",'
        ' "watermark": "2025-06-25T13:29:44"}]}',
        '{"v": 1, "provider": "w", "events": [{"type": "inbound", "id": "i", "sender_key": "s",'
        ' "to": [], "from": {}, "content": {}, "timestamp": "2025-06-25T13:29:44+00:00"}]}',
        '{"v": 1, "provider": "w", "events": [{"type": "status", "id": "a", "status": "read",'
        ' "hint": {"dispatch_uuid": "d", "step_index": true}}]}',
        "[" * 100_000,
    ],
)
def test_a_document_the_codec_did_not_write_is_refused(body):
    with pytest.raises(ChunkInvalid):
        decode(body)
