"""Vonage's words mapped to ours: webhook statuses, inbound message types, send errors.

Every mapping is an explicit table, so a value Vonage adds later is noticed (ignored and logged)
rather than guessed at. Sources: channels.md §5 and §8, dispatch-contract.md §2.2 and §5.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.model import MessageStatus

#: Status webhook `status` → ours. `rejected` (refused, TTL expired, provider error) and
#: `undeliverable` (never reached the channel) are terminal failures: the next message goes out
#: at once. `read` exists on whatsapp, messenger and viber_service only.
STATUSES: Mapping[str, MessageStatus] = {
    "submitted": MessageStatus.SUBMITTED,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "rejected": MessageStatus.REJECTED,
    "undeliverable": MessageStatus.UNDELIVERABLE,
}

#: Inbound v1 `message_type` → the v0.1 `content.type` relayed to the application, and the key
#: of v1's payload object for it (None: the type carries no payload). Media keep only what the
#: v0.1 shape has (`url`, `caption`); a type v1 adds later is relayed as `unsupported`.
INBOUND_TYPES: Mapping[str, str | None] = {
    "text": "text",
    "image": "image",
    "audio": "audio",
    "video": "video",
    "file": "file",
    "location": "location",
    "vcard": "vcard",
    "sticker": "sticker",
    # WhatsApp interactive answers: v0.1 relayed such payloads under their own type too
    # (contract §3.4 shows a `button` one).
    "reply": "reply",
    "button": "button",
    "order": "order",
    "unsupported": None,
}

#: Payload fields kept per inbound content type; None keeps the object as Vonage sent it.
MEDIA_FIELDS: Mapping[str, tuple[str, ...] | None] = {
    "image": ("url", "caption"),
    "audio": ("url", "caption"),
    "video": ("url", "caption"),
    "file": ("url", "caption", "name"),
    "vcard": ("url",),
    "sticker": ("url", "id"),
    "location": ("lat", "long", "name", "address"),
    "reply": None,
    "button": None,
    "order": None,
}

#: Send answers worth retrying on the same channel: Vonage's "Rate Limit Hit" (429), a
#: request timeout, and its own failures (5xx). Every other 4xx (401/403 credentials, 402 low
#: balance, 422 invalid recipient/sender/parameters) fails the same way on a retry: fail over.
TRANSIENT_HTTP = frozenset({408, 429}) | frozenset(range(500, 600))


def is_transient_http(status_code: int) -> bool:
    return status_code in TRANSIENT_HTTP


def error_code(error: Mapping[str, Any]) -> str | None:
    """The code of an error object, whichever shape it comes in.

    v1 (RFC 7807): `type` is a URL whose fragment is the code (`…/messages#1430`,
    `…/api-errors/#low-balance`); status webhooks also put the numeric code in `title`.
    v0.1: `{code: 1300, reason}`.
    """
    code = error.get("code")
    if isinstance(code, (int, str)) and not isinstance(code, bool) and str(code):
        return str(code)
    kind = error.get("type")
    if isinstance(kind, str) and "#" in kind:
        fragment = kind.rsplit("#", 1)[1].strip()
        if fragment:
            return fragment
    title = error.get("title")
    if isinstance(title, str) and title.strip().isdigit():
        return title.strip()
    return None


#: Longest error reason kept: it is stored on the step and shown to the client.
MAX_REASON = 300


def error_reason(error: Mapping[str, Any]) -> str | None:
    """Vonage's words for an error: v0.1 `reason`, else v1 `title` (unless only a code) and
    `detail`. They describe the failure, never the message text."""
    parts: list[str] = []
    for key in ("reason", "title", "detail"):
        value = error.get(key)
        if isinstance(value, str) and value.strip() and not value.strip().isdigit():
            parts.append(value.strip())
    if not parts:
        return None
    return ": ".join(dict.fromkeys(parts))[:MAX_REASON]
