"""WhatsApp webhooks: Meta's signature, its GET handshake, and its payload as normalised events.

Meta signs the raw body: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>`
(channels.md §1.5). It sends statuses and user messages in the same envelope to the one callback
URL an app may have, so `/status` and `/inbound` both accept everything in it.
"""
from __future__ import annotations

import logging

from pydantic import ValidationError

from chalicelib import strict_json
from chalicelib.adapters.providers import meta
from chalicelib.adapters.providers.whatsapp import codes
from chalicelib.adapters.providers.whatsapp.inbound import inbound_message
from chalicelib.adapters.providers.whatsapp.payload import Notification, Status, Value
from chalicelib.domain.model import StatusEvent
from chalicelib.service.message_hints import hint_of
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    WebhookBatch,
    WebhookMalformed,
    WebhookRequest,
)

logger = logging.getLogger(__name__)

OBJECT = "whatsapp_business_account"


def verify(app_secret: str, request: WebhookRequest) -> None:
    """Raise WebhookUnauthorized unless the raw body carries Meta's signature by `app_secret`."""
    meta.verify("whatsapp", app_secret, request)


def challenge(verify_token: str, request: WebhookRequest) -> str | None:
    return meta.challenge(verify_token, request)


def parse(body: bytes) -> WebhookBatch:
    """Every status and user message in a verified notification, however many it batches."""
    try:
        notification = Notification.model_validate(strict_json.loads(body))
    except ValueError as exc:  # JsonRefused and ValidationError alike
        raise meta.malformed("WhatsApp", exc) from None
    if notification.object != OBJECT:
        raise WebhookMalformed(f"object is not {OBJECT}")
    statuses: list[ProviderStatus] = []
    inbound: list[InboundMessage] = []
    ignored = 0
    for entry in notification.entry:
        for change in entry.changes:
            if change.field != "messages":
                # Template, quality and account updates share the subscription; not ours to act on.
                logger.info("whatsapp webhook field ignored", extra={"field": change.field[:64]})
                ignored += 1
                continue
            value = _value(change.value)
            for status in value.statuses:
                event = status_event(status)
                if event is None:
                    logger.info("whatsapp status ignored", extra={"status": status.status[:32]})
                    ignored += 1
                else:
                    hint = hint_of(status.biz_opaque_callback_data)
                    statuses.append(ProviderStatus(status.id, event, hint))
            business = value.metadata.display_phone_number if value.metadata else None
            inbound += [inbound_message(message, business) for message in value.messages]
            if value.errors:
                # Errors about the WABA or the app, not about a message: nothing to apply.
                codes_seen = [error.code for error in value.errors]
                logger.warning("whatsapp webhook errors", extra={"codes": codes_seen})
                ignored += len(value.errors)
    return WebhookBatch(statuses=tuple(statuses), inbound=tuple(inbound), ignored=ignored)


def status_event(status: Status) -> StatusEvent | None:
    """The normalised event for one `statuses[]` entry; None for a status we do not know."""
    mapped = codes.STATUSES.get(status.status)
    if mapped is None:
        return None
    error = status.errors[0] if status.errors else None
    code = error.code if error else None
    if status.status == "failed":
        mapped = codes.failed_status(code)
    reason = None
    if error is not None:
        details = error.error_data.details if error.error_data else None
        reason = details or error.message or error.title
    pricing = status.pricing.model_dump(exclude_none=True) if status.pricing else None
    return StatusEvent(
        status=mapped,
        error_code=str(code) if code is not None else None,
        error_reason=reason,
        # Meta reports a pricing category, never a price: StatusEvent.usage stays empty.
        extra={"pricing": pricing} if pricing else {},
    )


def _value(raw: dict) -> Value:
    try:
        return Value.model_validate(raw)
    except ValidationError as exc:
        raise meta.malformed("WhatsApp", exc) from None
