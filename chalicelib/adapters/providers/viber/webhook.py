"""Viber callbacks: the signature and freshness check, and the mapping to normalised events.

Viber signs every callback with `X-Viber-Content-Signature`: the bare hex HMAC-SHA256 of the
raw body keyed with the bot's auth token. The signature covers no time, but the body carries
`timestamp` (ms), so a signed body is also refused once it is older than Viber keeps retrying.
Viber sends one event per request; a bot has one webhook URL, so statuses and users' messages
arrive at the same route and either route accepts both.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib import strict_json
from chalicelib.adapters.providers.viber.codes import (
    FAILED_EVENT_CODE,
    INBOUND_EVENT,
    NON_MESSAGE_EVENTS,
    STATUS_EVENTS,
)
from chalicelib.adapters.providers.viber.inbound import inbound_content
from chalicelib.domain.model import Channel, MessageStatus, StatusEvent
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    WebhookBatch,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-viber-content-signature"
#: Viber retries an unanswered callback "several times for an hour": a shorter window would
#: refuse, for good, the retries that follow an outage. Replaying a status changes nothing and
#: a replayed user message keeps its message_uuid, so the longer window costs little.
MAX_EVENT_AGE = timedelta(minutes=65)
#: Tolerated lead of Viber's clock over ours.
MAX_CLOCK_LEAD = timedelta(minutes=5)


def signature(body: bytes, auth_token: str) -> str:
    """What Viber puts in X-Viber-Content-Signature for `body`."""
    return hmac.new(auth_token.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(request: WebhookRequest, auth_token: str | None, now: datetime) -> None:
    """WebhookUnauthorized unless Viber signed the raw body with `auth_token`, recently."""
    if not auth_token:
        raise WebhookUnauthorized("no viber auth_token is configured")
    given = request.headers.get(SIGNATURE_HEADER)
    if not given:
        raise WebhookUnauthorized(f"no {SIGNATURE_HEADER} header")
    expected = signature(request.body, auth_token).encode("ascii")
    if not hmac.compare_digest(expected, given.strip().lower().encode("utf-8", "replace")):
        raise WebhookUnauthorized("signature does not match")
    sent = _body_time(request.body)
    # An unreadable or missing time is left to `parse`, which refuses the body as malformed.
    if sent is not None and not (now - MAX_EVENT_AGE <= sent <= now + MAX_CLOCK_LEAD):
        raise WebhookUnauthorized("event timestamp outside the accepted window")


def _body_time(body: bytes) -> datetime | None:
    try:
        payload = strict_json.loads(body)
        return _time(payload.get("timestamp")) if isinstance(payload, dict) else None
    except (strict_json.JsonRefused, WebhookMalformed):
        return None


def _time(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WebhookMalformed("timestamp must be a number of milliseconds")
    try:
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise WebhookMalformed("timestamp is out of range") from None


def parse(body: bytes, bot: Mapping[str, Any]) -> WebhookBatch:
    """The event in a verified callback body. `bot` is our own address (inbound `to`)."""
    try:
        payload = strict_json.loads(body)
    except strict_json.JsonRefused as exc:
        raise WebhookMalformed(f"the body is not acceptable JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise WebhookMalformed("body is not a JSON object")
    event = payload.get("event")
    if not isinstance(event, str) or not event:
        raise WebhookMalformed("no event")
    at = _time(payload.get("timestamp"))
    if event in STATUS_EVENTS:
        return WebhookBatch(statuses=(_status(payload, STATUS_EVENTS[event]),))
    if event == INBOUND_EVENT:
        return WebhookBatch(inbound=(_inbound(payload, at, bot),))
    known = "known" if event in NON_MESSAGE_EVENTS else "unknown"
    logger.info("viber event ignored", extra={"provider": "viber", "event": event[:40], "kind": known})
    return WebhookBatch(ignored=1)


def _token(value: Any) -> str:
    # A 64-bit integer in Viber's JSON (a string in some SDK fixtures): the same text either way.
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value) == "":
        raise WebhookMalformed("message_token must be an integer")
    return str(value)


def _status(payload: Mapping[str, Any], status: MessageStatus) -> ProviderStatus:
    token = _token(payload.get("message_token"))
    if status is not MessageStatus.UNDELIVERABLE:
        return ProviderStatus(token, StatusEvent(status))
    desc = payload.get("desc")
    reason = desc[:500] if isinstance(desc, str) and desc else None
    return ProviderStatus(token, StatusEvent(status, error_code=FAILED_EVENT_CODE, error_reason=reason))


def _inbound(payload: Mapping[str, Any], at: datetime, bot: Mapping[str, Any]) -> InboundMessage:
    sender = payload.get("sender")
    user_id = sender.get("id") if isinstance(sender, dict) else None
    if not isinstance(user_id, str) or not user_id:
        raise WebhookMalformed("a message event needs sender.id")
    message = payload.get("message")
    if not isinstance(message, dict):
        raise WebhookMalformed("a message event needs a message object")
    return InboundMessage(
        provider_message_id=_token(payload.get("message_token")),
        sender_key=user_id,
        to=dict(bot),
        # A bot knows its users by Viber user id only, never by phone number.
        from_={"type": Channel.VIBER.value, "id": user_id},
        content=inbound_content(message),
        timestamp=at,
    )
