"""Vonage Messages v1 webhooks → normalised events, through the tables in `codes.py`.

Vonage posts one event per request: a status to the application's Status URL, a user's message
to its Inbound URL. Neither is batched, so a JSON array is not a Vonage payload (malformed).

Status (v1): `message_uuid`, `to`, `from`, `timestamp`, `status`, `channel`, `client_ref`, and on
failures `error {type, title, detail, instance}`; priced ones add `usage {currency, price}`.
A v0.1-style status (`to`/`from` objects, `error {code, reason}`) is read the same way.

Inbound (v1): `message_uuid`, `to` (our number or id), `from` (the user), `channel`,
`message_type` with its payload (`text`, `image {url}`, …), `timestamp`, and `context
{message_uuid}` when the user replies to one of our messages. It is relayed in the v0.1 shape
(contract §3.4): `to`/`from` objects and `message.content {type, …}`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from chalicelib import strict_json
from chalicelib.domain.model import StatusEvent, Usage
from chalicelib.service.message_hints import hint_of
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    WebhookBatch,
    WebhookKind,
    WebhookMalformed,
)

from .addresses import CHANNELS_FROM_VONAGE, address_value, recipient_key, v01_address
from .codes import INBOUND_TYPES, MEDIA_FIELDS, STATUSES, error_code, error_reason

logger = logging.getLogger(__name__)


def parse(body: bytes, kind: WebhookKind, now: Callable[[], datetime]) -> WebhookBatch:
    payload = _object(body)
    if kind == "status":
        return _status(payload)
    return _inbound(payload, now)


def _object(body: bytes) -> dict[str, Any]:
    try:
        payload = strict_json.loads(body)
    except strict_json.JsonRefused as exc:
        raise WebhookMalformed(f"the body is not acceptable JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise WebhookMalformed("body must be a JSON object: Vonage sends one event per request")
    return payload


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise WebhookMalformed(f"{key} must be a non-empty string")
    return value


# --- statuses ------------------------------------------------------------------------------------


def _status(payload: Mapping[str, Any]) -> WebhookBatch:
    message_uuid = _text(payload, "message_uuid")
    name = _text(payload, "status")
    status = STATUSES.get(name)
    if status is None:
        logger.info("vonage status not mapped", extra={"status": name[:40]})
        return WebhookBatch(ignored=1)
    error = payload.get("error")
    error = error if isinstance(error, Mapping) else {}
    event = StatusEvent(
        status,
        error_code=error_code(error),
        error_reason=error_reason(error),
        usage=_usage(payload.get("usage")),
    )
    hint = hint_of(payload.get("client_ref"))
    return WebhookBatch(statuses=(ProviderStatus(message_uuid, event, hint),))


def _usage(usage: Any) -> Usage | None:
    if not isinstance(usage, Mapping):
        return None
    price, currency = usage.get("price"), usage.get("currency")
    if isinstance(price, (int, float)) and not isinstance(price, bool):
        price = str(price)
    if not isinstance(price, str) or not isinstance(currency, str) or not price or not currency:
        return None
    return Usage(price=price, currency=currency)


# --- inbound messages ----------------------------------------------------------------------------


def _inbound(payload: Mapping[str, Any], now: Callable[[], datetime]) -> WebhookBatch:
    message_uuid = _text(payload, "message_uuid")
    channel_name = _text(payload, "channel")
    channel = CHANNELS_FROM_VONAGE.get(channel_name)
    if channel is None:
        logger.info("vonage inbound channel not mapped", extra={"channel": channel_name[:40]})
        return WebhookBatch(ignored=1)
    user, ours = address_value(payload.get("from")), address_value(payload.get("to"))
    if user is None or ours is None:
        raise WebhookMalformed("to and from must name the recipient and the sender")
    context = payload.get("context")
    replied_to = context.get("message_uuid") if isinstance(context, Mapping) else None
    message = InboundMessage(
        provider_message_id=message_uuid,
        sender_key=recipient_key(channel, user),
        to=v01_address(channel, ours, side=0),
        from_=v01_address(channel, user, side=1),
        content=_content(payload),
        timestamp=_timestamp(payload.get("timestamp"), now),
        context_message_id=replied_to if isinstance(replied_to, str) and replied_to else None,
    )
    return WebhookBatch(inbound=(message,))


def _content(payload: Mapping[str, Any]) -> dict[str, Any]:
    # Inbound SMS (v1 `inboundMessageSMS`) has `text` and no `message_type` at all.
    if "message_type" not in payload and isinstance(payload.get("text"), str):
        return {"type": "text", "text": payload["text"]}
    message_type = _text(payload, "message_type")
    if message_type not in INBOUND_TYPES:
        # The user did write: the application hears of it, as v0.1 said of what it could not show.
        logger.info("vonage inbound type not mapped", extra={"message_type": message_type[:40]})
        return {"type": "unsupported"}
    content_type = INBOUND_TYPES[message_type]
    if content_type is None:
        return {"type": "unsupported"}
    value = payload.get(message_type)
    if content_type == "text":
        if not isinstance(value, str):
            raise WebhookMalformed("text must be a string")
        return {"type": "text", "text": value}
    if not isinstance(value, Mapping):
        raise WebhookMalformed(f"{message_type} must be an object")
    fields = MEDIA_FIELDS[content_type]
    kept = dict(value) if fields is None else {k: value[k] for k in fields if value.get(k) is not None}
    return {"type": content_type, content_type: kept}


def _timestamp(value: Any, now: Callable[[], datetime]) -> datetime:
    """Vonage's ISO 8601 time ("2020-01-01T14:00:00.000Z"); our receipt time if it has none, so
    a user's message is never dropped over its clock."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return now()
