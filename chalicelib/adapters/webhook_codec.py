"""The queued form of verified webhook events: a chunk is one JSON document naming its provider.

    {"v": 1, "provider": "whatsapp", "events": [
      {"type": "status", "id": "wamid...", "status": "delivered", "error_code": "131047",
       "error_reason": "...", "usage": {"price": "0.01", "currency": "EUR"}, "event_id": "...",
       "extra": {...}, "hint": {"dispatch_uuid": "...", "step_index": 0}},
      {"type": "watermark", "recipient": "page#psid", "watermark": "<ISO 8601>", "status": "read"},
      {"type": "inbound", "id": "...", "sender_key": "...", "to": {...}, "from": {...},
       "content": {...}, "timestamp": "<ISO 8601>", "context_message_id": "..."}]}

Pure: no I/O. Optional fields that are None are left out. Only the normalised events are held,
never the request (its headers, signature or raw body), so nothing here is a secret; inbound
`content` is the user's message, the same data the callback outbox and store hold. The text is
ASCII (`ensure_ascii`): SQS refuses some code points a JSON string may hold.

Decoding is strict: a document this module did not write raises `ChunkInvalid`.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.model import MessageStatus, StatusEvent, Usage
from chalicelib.service.ports import MessageHint
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    RecipientStatus,
    WebhookEvent,
)

VERSION = 1
#: Events per queued chunk: what one `apply_webhooks` invocation applies (each status costs a
#: few table calls, so a chunk takes seconds, well inside the function's timeout).
MAX_EVENTS_PER_CHUNK = 100
#: SQS's limit on one message, and on the sum of a SendMessageBatch's messages.
MAX_MESSAGE_BYTES = 256 * 1024


class ChunkInvalid(ValueError):
    """A queued document that is not a chunk of this version."""


@dataclass(frozen=True)
class WebhookChunk:
    provider: str
    events: tuple[WebhookEvent, ...]


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def encode(chunk: WebhookChunk) -> str:
    return _ENCODER.encode(
        {"v": VERSION, "provider": chunk.provider, "events": [_event(e) for e in chunk.events]}
    )


def chunk_bodies(
    provider: str,
    events: Sequence[WebhookEvent],
    max_events: int = MAX_EVENTS_PER_CHUNK,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> tuple[list[str], list[WebhookEvent]]:
    """`events` encoded as chunks of at most `max_events` events and `max_bytes` bytes, in
    order; and the events that alone are over `max_bytes` (left for the caller to apply: each
    is a sizeable part of a body whose size is limited, so there are few)."""
    header = len(encode(WebhookChunk(provider, ())))
    bodies: list[str] = []
    too_large: list[WebhookEvent] = []
    pending: list[str] = []
    size = header
    for event in events:
        text = _ENCODER.encode(_event(event))
        if header + len(text) > max_bytes:
            too_large.append(event)
            continue
        if pending and (len(pending) >= max_events or size + 1 + len(text) > max_bytes):
            bodies.append(_join(provider, pending))
            pending, size = [], header
        size += len(text) + (1 if pending else 0)
        pending.append(text)
    if pending:
        bodies.append(_join(provider, pending))
    return bodies, too_large


def _join(provider: str, encoded_events: list[str]) -> str:
    # Events are encoded once (to measure them) and spliced into the envelope, which must read
    # exactly as `encode` would write it.
    empty = _ENCODER.encode({"v": VERSION, "provider": provider, "events": []})
    assert empty.endswith("[]}")
    return empty[:-2] + ",".join(encoded_events) + "]}"


def decode(body: str) -> WebhookChunk:
    try:
        document = json.loads(body)
        if not isinstance(document, dict) or document.get("v") != VERSION:
            raise ChunkInvalid("not a webhook chunk of this version")
        provider = _str(document, "provider")
        events = document["events"]
        if not isinstance(events, list):
            raise ChunkInvalid("events is not a list")
        return WebhookChunk(provider, tuple(_decode_event(e) for e in events))
    except ChunkInvalid:
        raise
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ChunkInvalid(f"not a webhook chunk: {type(exc).__name__}") from None


# --- events --------------------------------------------------------------------------------------


def _event(event: WebhookEvent) -> dict[str, Any]:
    if isinstance(event, ProviderStatus):
        status = event.event
        fields: dict[str, Any] = {
            "type": "status",
            "id": event.provider_message_id,
            "status": status.status.value,
            "error_code": status.error_code,
            "error_reason": status.error_reason,
            "usage": {"price": status.usage.price, "currency": status.usage.currency}
            if status.usage
            else None,
            "event_id": status.event_id,
            "extra": dict(status.extra) or None,
            "hint": {"dispatch_uuid": event.hint.dispatch_uuid, "step_index": event.hint.step_index}
            if event.hint
            else None,
        }
    elif isinstance(event, RecipientStatus):
        fields = {
            "type": "watermark",
            "recipient": event.recipient,
            "watermark": _time(event.watermark),
            "status": event.status.value,
        }
    else:
        fields = {
            "type": "inbound",
            "id": event.provider_message_id,
            "sender_key": event.sender_key,
            "to": dict(event.to),
            "from": dict(event.from_),
            "content": dict(event.content),
            "timestamp": _time(event.timestamp),
            "context_message_id": event.context_message_id,
        }
    return {name: value for name, value in fields.items() if value is not None}


def _decode_event(raw: Any) -> WebhookEvent:
    if not isinstance(raw, dict):
        raise ChunkInvalid("an event is not an object")
    kind = raw.get("type")
    if kind == "status":
        usage = raw.get("usage")
        hint = raw.get("hint")
        return ProviderStatus(
            provider_message_id=_str(raw, "id"),
            event=StatusEvent(
                status=MessageStatus(_str(raw, "status")),
                error_code=_optional_str(raw, "error_code"),
                error_reason=_optional_str(raw, "error_reason"),
                usage=Usage(price=_str(usage, "price"), currency=_str(usage, "currency"))
                if usage is not None
                else None,
                event_id=_optional_str(raw, "event_id"),
                extra=_object(raw, "extra", {}),
            ),
            hint=MessageHint(_str(hint, "dispatch_uuid"), _int(hint, "step_index"))
            if hint is not None
            else None,
        )
    if kind == "watermark":
        return RecipientStatus(
            recipient=_str(raw, "recipient"),
            watermark=_parse_time(_str(raw, "watermark")),
            status=MessageStatus(_str(raw, "status")),
        )
    if kind == "inbound":
        return InboundMessage(
            provider_message_id=_str(raw, "id"),
            sender_key=_str(raw, "sender_key"),
            to=_object(raw, "to"),
            from_=_object(raw, "from"),
            content=_object(raw, "content"),
            timestamp=_parse_time(_str(raw, "timestamp")),
            context_message_id=_optional_str(raw, "context_message_id"),
        )
    raise ChunkInvalid("unknown event type")


def _time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("webhook times are timezone-aware")
    return value.isoformat()


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ChunkInvalid("a time without its offset")
    return parsed


def _str(raw: Any, name: str) -> str:
    value = raw[name] if isinstance(raw, Mapping) else None
    if not isinstance(value, str):
        raise ChunkInvalid(f"{name} is not a string")
    return value


def _optional_str(raw: Mapping[str, Any], name: str) -> str | None:
    return None if raw.get(name) is None else _str(raw, name)


def _int(raw: Any, name: str) -> int:
    value = raw[name] if isinstance(raw, Mapping) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ChunkInvalid(f"{name} is not an integer")
    return value


def _object(raw: Mapping[str, Any], name: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
    value = raw.get(name, default)
    if not isinstance(value, dict):
        raise ChunkInvalid(f"{name} is not an object")
    return value
