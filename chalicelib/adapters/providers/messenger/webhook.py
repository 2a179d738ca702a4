"""Messenger webhooks: Meta's signature, its GET handshake, and its events as normalised ones.

Meta signs the raw body: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>`
(channels.md §1.5, §2.2). A Page subscription has one callback URL and carries deliveries, reads
and user messages together, so `/status` and `/inbound` both accept everything in it.

Deliveries and reads are watermarks: "every message to this person before this time". A delivery
that lists its `mids` becomes one `ProviderStatus` per mid; otherwise, and always for a read, it
becomes a `RecipientStatus` for the person, which the framework applies to the latest message
sent to them at or before the watermark.
"""
from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

from pydantic import ValidationError

from chalicelib import strict_json
from chalicelib.adapters.providers import meta
from chalicelib.adapters.providers.messenger import codes
from chalicelib.adapters.providers.messenger.inbound import inbound_messages, ms_time
from chalicelib.adapters.providers.messenger.payload import (
    DeliveryEvent,
    Entry,
    MessageEvent,
    Model,
    Notification,
    ReadEvent,
)
from chalicelib.domain.model import StatusEvent
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    RecipientStatus,
    WebhookBatch,
    WebhookMalformed,
    WebhookRequest,
)

logger = logging.getLogger(__name__)

OBJECT = "page"
#: Keys every event has; the one other key says what the event is.
ENVELOPE_KEYS = frozenset({"sender", "recipient", "timestamp"})
#: What an unknown event's key may look like in a log line.
LOGGABLE_KEY = re.compile(r"[a-z_]{1,40}")

M = TypeVar("M", bound=Model)


def verify(app_secret: str, request: WebhookRequest) -> None:
    """Raise WebhookUnauthorized unless the raw body carries Meta's signature by `app_secret`."""
    meta.verify("messenger", app_secret, request)


def challenge(verify_token: str, request: WebhookRequest) -> str | None:
    return meta.challenge(verify_token, request)


class _Batch:
    """The events of one notification, as they are found."""

    def __init__(self) -> None:
        self.statuses: list[ProviderStatus] = []
        self.watermarks: list[RecipientStatus] = []
        self.inbound: list[InboundMessage] = []
        self.ignored = 0

    def result(self) -> WebhookBatch:
        return WebhookBatch(
            statuses=tuple(self.statuses),
            recipient_statuses=tuple(self.watermarks),
            inbound=tuple(self.inbound),
            ignored=self.ignored,
        )


def parse(body: bytes) -> WebhookBatch:
    """Every delivery, read and user message in a verified notification, however many it batches."""
    try:
        notification = Notification.model_validate(strict_json.loads(body))
    except ValueError as exc:  # JsonRefused and ValidationError alike
        raise meta.malformed("Messenger", exc) from None
    if notification.object != OBJECT:
        raise WebhookMalformed(f"object is not {OBJECT}")
    batch = _Batch()
    for entry in notification.entry:
        for event in [*entry.messaging, *entry.standby]:
            _event(event, entry, batch)
        if entry.changes:
            # Feed and other Page fields share the subscription; not ours to act on.
            fields = [str(change.get("field"))[:40] for change in entry.changes]
            logger.info("messenger webhook fields ignored", extra={"fields": fields})
            batch.ignored += len(entry.changes)
    return batch.result()


def _event(raw: dict[str, Any], entry: Entry, batch: _Batch) -> None:
    kind = event_kind(raw)
    status = codes.EVENT_STATUSES.get(kind)
    if status is not None:
        watermarked: DeliveryEvent | ReadEvent = (
            _validate(DeliveryEvent, raw) if kind == "delivery" else _validate(ReadEvent, raw)
        )
        mids = watermarked.delivery.mids if isinstance(watermarked, DeliveryEvent) else []
        if mids:
            batch.statuses += [ProviderStatus(mid, StatusEvent(status)) for mid in mids]
        else:
            batch.watermarks.append(
                RecipientStatus(
                    # `<page>:<psid>`, as `recipient_key` builds it for our sends.
                    recipient=f"{watermarked.recipient.id}:{watermarked.sender.id}",
                    watermark=ms_time(watermarked.watermark),
                    status=status,
                )
            )
    elif kind == "message" and _is_echo(raw):
        # Our own sends, echoed back (if the app subscribes to message_echoes): nothing to apply.
        batch.ignored += 1
    elif kind == "message":
        batch.inbound += inbound_messages(_validate(MessageEvent, raw), entry.time)
    else:
        name = kind if LOGGABLE_KEY.fullmatch(kind) else "unrecognised"
        logger.info("messenger event ignored", extra={"event": name})
        batch.ignored += 1


def event_kind(raw: dict[str, Any]) -> str:
    """What a `messaging[]` event is: its one key besides sender, recipient and timestamp."""
    for known in ("delivery", "read", "message"):
        if known in raw:
            return known
    others = sorted(key for key in raw if key not in ENVELOPE_KEYS)
    return others[0] if others else ""


def _is_echo(raw: dict[str, Any]) -> bool:
    message = raw.get("message")
    return isinstance(message, dict) and message.get("is_echo") is True


def _validate(model: type[M], raw: dict[str, Any]) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise meta.malformed("Messenger", exc) from None
