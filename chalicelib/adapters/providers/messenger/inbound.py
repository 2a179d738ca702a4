"""A user's Messenger message in the Messages v0.1 inbound terms: `to`, `from` and `content`.

v0.1 addresses both ends by id (`{"type": "messenger", "id": ...}`): `to` is the Page, `from` the
person's PSID. v0.1 content holds one thing, while Messenger may put several attachments (a few
photos sent together) in one message: each becomes its own relayed message, the first under the
message's `mid`, the others under `mid#1`, `mid#2`..., so every one has a stable id of its own.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.adapters.providers.messenger.payload import Attachment, MessageEvent
from chalicelib.service.webhooks import InboundMessage, WebhookMalformed

UNSUPPORTED: Mapping[str, Any] = {"type": "unsupported"}


def _media(kind: str) -> Callable[[Attachment], dict[str, Any]]:
    def convert(attachment: Attachment) -> dict[str, Any]:
        url = attachment.payload.url if attachment.payload else None
        return {"type": kind, kind: {"url": url}} if url else dict(UNSUPPORTED)

    return convert


def _location(attachment: Attachment) -> dict[str, Any]:
    place = attachment.payload.coordinates if attachment.payload else None
    if place is None:
        return dict(UNSUPPORTED)
    return {"type": "location", "location": {"lat": place.lat, "long": place.long}}


#: Messenger attachment `type` → v0.1 content. Stickers arrive as `image` (with a sticker_id)
#: and are relayed as images. Any other type (`fallback` link shares, `template` shared posts,
#: reels...) is relayed as `{"type": "unsupported"}`, as v0.1 does.
ATTACHMENTS: Mapping[str, Callable[[Attachment], dict[str, Any]]] = {
    "image": _media("image"),
    "audio": _media("audio"),
    "video": _media("video"),
    "file": _media("file"),
    "location": _location,
}


def inbound_messages(event: MessageEvent, entry_time: int | None) -> list[InboundMessage]:
    """The normalised form of one user `message` event (never an echo): one per content."""
    page, psid = event.recipient.id, event.sender.id
    message = event.message
    reply_to = message.reply_to.mid if message.reply_to and message.reply_to.mid else None
    stamp = event.timestamp if event.timestamp is not None else entry_time
    if stamp is None:
        raise WebhookMalformed("message event without a timestamp")
    at = ms_time(stamp)
    return [
        InboundMessage(
            provider_message_id=message.mid if index == 0 else f"{message.mid}#{index}",
            # The same `<page>:<psid>` pair `recipient_key` gives for our sends to them.
            sender_key=f"{page}:{psid}",
            to={"type": "messenger", "id": page},
            from_={"type": "messenger", "id": psid},
            content=content,
            timestamp=at,
            context_message_id=reply_to,
        )
        for index, content in enumerate(contents(event))
    ]


def contents(event: MessageEvent) -> list[dict[str, Any]]:
    message = event.message
    found: list[dict[str, Any]] = []
    if message.text:
        found.append({"type": "text", "text": message.text})
    for attachment in message.attachments:
        if message.text and attachment.type == "fallback":
            continue  # the preview of a link the text already carries
        convert = ATTACHMENTS.get(attachment.type)
        found.append(convert(attachment) if convert else dict(UNSUPPORTED))
    return found or [dict(UNSUPPORTED)]


def ms_time(value: int) -> datetime:
    """Meta's Messenger times: milliseconds since the epoch, as a JSON number."""
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=value)
