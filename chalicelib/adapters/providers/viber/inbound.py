"""A Viber user's message as the Messages v0.1 inbound `content`: one converter per Viber type.

Viber types with no v0.1 counterpart (contact, and any type Viber adds later) become
`{"type": "unsupported"}`, as v0.1 does for WhatsApp, so the application still hears of them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.service.webhooks import WebhookMalformed

logger = logging.getLogger(__name__)

UNSUPPORTED: Mapping[str, Any] = {"type": "unsupported"}


def _string(message: Mapping[str, Any], key: str) -> str:
    value = message.get(key)
    if not isinstance(value, str) or not value:
        raise WebhookMalformed(f"a Viber {message.get('type')} message needs {key}")
    return value


def _text(message: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "text", "text": _string(message, "text")}


def _picture(message: Mapping[str, Any]) -> dict[str, Any]:
    image: dict[str, Any] = {"url": _string(message, "media")}
    caption = message.get("text")
    if isinstance(caption, str) and caption:
        image["caption"] = caption
    return {"type": "image", "image": image}


def _video(message: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "video", "video": {"url": _string(message, "media")}}


def _file(message: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "file", "file": {"url": _string(message, "media")}}


def _sticker(message: Mapping[str, Any]) -> dict[str, Any]:
    # A sticker comes with the URL of its picture; v0.1 has no sticker type, an image is closest.
    return {"type": "image", "image": {"url": _string(message, "media")}}


def _url(message: Mapping[str, Any]) -> dict[str, Any]:
    # Viber puts a shared link in `media`; to the application it is text the user sent.
    return {"type": "text", "text": _string(message, "media")}


def _location(message: Mapping[str, Any]) -> dict[str, Any]:
    where = message.get("location")
    lat = where.get("lat") if isinstance(where, dict) else None
    lon = where.get("lon") if isinstance(where, dict) else None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon)):
        raise WebhookMalformed("a Viber location message needs location.lat and location.lon")
    # v0.1 (as WhatsApp's inbound location) spells longitude `long`.
    return {"type": "location", "location": {"lat": lat, "long": lon}}


#: Viber `message.type` → v0.1 content.
CONVERTERS: Mapping[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "text": _text,
    "picture": _picture,
    "video": _video,
    "file": _file,
    "sticker": _sticker,
    "url": _url,
    "location": _location,
}


def inbound_content(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """The v0.1 `content` of a Viber `message` object; WebhookMalformed if a known type lacks
    the field that carries it."""
    kind = message.get("type")
    convert = CONVERTERS.get(kind) if isinstance(kind, str) else None
    if convert is None:
        logger.info("viber message type not carried", extra={"provider": "viber", "type": str(kind)[:40]})
        return dict(UNSUPPORTED)
    return convert(message)
