"""A user's WhatsApp message in the Messages v0.1 inbound terms: `to`, `from` and `content`.

v0.1's WhatsApp content types are text, image, audio, video, file, location and unsupported
(plus the undocumented `button` Vonage relays for template quick replies). Meta's media carry a
media id, not a URL: fetching one needs our access token (`GET /{media-id}`), so the relay
passes the id and MIME type where v0.1 would have a `url`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from chalicelib.adapters.providers.whatsapp.payload import Media, Message
from chalicelib.service.webhooks import InboundMessage, WebhookMalformed


def _text(message: Message) -> dict[str, Any]:
    return {"type": "text", "text": message.text.body if message.text else ""}


def _media(kind: str, wa_key: str) -> Callable[[Message], dict[str, Any]]:
    def convert(message: Message) -> dict[str, Any]:
        media: Media | None = getattr(message, wa_key)
        fields = media.model_dump(exclude_none=True) if media else {}
        if "filename" in fields:  # v0.1 calls a file's name `name`
            fields["name"] = fields.pop("filename")
        return {"type": kind, kind: fields}

    return convert


def _location(message: Message) -> dict[str, Any]:
    place = message.location
    if place is None:
        return {"type": "unsupported"}
    fields = {"lat": place.latitude, "long": place.longitude, "name": place.name, "address": place.address}
    return {"type": "location", "location": {k: v for k, v in fields.items() if v is not None}}


def _button(message: Message) -> dict[str, Any]:
    button = message.button.model_dump(exclude_none=True) if message.button else {}
    return {"type": "button", "button": button}


#: Meta `messages[].type` → v0.1 content. Any other type (sticker, reaction, contacts,
#: interactive, order, system, unsupported…) is relayed as `{"type": "unsupported"}`, as v0.1 does.
CONTENT: Mapping[str, Callable[[Message], dict[str, Any]]] = {
    "text": _text,
    "image": _media("image", "image"),
    "audio": _media("audio", "audio"),
    "video": _media("video", "video"),
    "document": _media("file", "document"),
    "location": _location,
    "button": _button,
}


def inbound_message(message: Message, business_number: str | None) -> InboundMessage:
    """The normalised form of one `value.messages[]` entry."""
    convert = CONTENT.get(message.type)
    content = convert(message) if convert else {"type": "unsupported"}
    return InboundMessage(
        provider_message_id=message.id,
        # `from` is the user's wa_id, the same digits statuses name them by (`recipient_key`).
        sender_key=message.from_,
        to={"type": "whatsapp", "number": _digits(business_number or "")},
        from_={"type": "whatsapp", "number": message.from_},
        content=content,
        timestamp=unix_time(message.timestamp),
        context_message_id=message.context.id if message.context else None,
    )


def unix_time(value: str) -> datetime:
    """Meta's timestamps: Unix seconds, as a string."""
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise WebhookMalformed("timestamp is not Unix seconds") from None


def _digits(number: str) -> str:
    # display_phone_number is bare digits in every sample we have; keeping only digits holds
    # the v0.1 number form even if Meta ever formats it.
    return "".join(ch for ch in number if ch.isdigit())
