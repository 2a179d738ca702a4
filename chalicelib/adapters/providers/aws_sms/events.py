"""What an SNS notification's `Message` says, in our terms.

Two payloads arrive this way: the EUM SMS delivery event a configuration set's SNS event
destination publishes (`eventType`, `messageId`, `isFinal`, prices...), and the two-way SMS
payload a phone number's two-way channel publishes (`originationNumber`, `messageBody`,
`inboundMessageId`...). Either may come to either route: the shape decides, so one topic can
carry both. SNS delivers one message per request, so a batch holds at most one event.
"""
from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib import strict_json
from chalicelib.adapters.providers.aws_sms.codes import EVENT_STATUSES
from chalicelib.domain.model import MessageStatus, StatusEvent, Usage
from chalicelib.service.message_hints import hint_of
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    WebhookBatch,
    WebhookMalformed,
)

logger = logging.getLogger(__name__)

#: AWS prices events in US dollars.
CURRENCY = "USD"
#: Longest `messageStatusDescription` kept as the error reason.
MAX_REASON = 300


def notification_batch(message: str, notification_id: str, published: datetime) -> WebhookBatch:
    """The events in one notification's `Message`; WebhookMalformed if it is neither payload."""
    try:
        # Decimal keeps prices exact: 0.00581 must not become 0.0058100000000000005.
        data = strict_json.loads(message, decimal_floats=True)
    except strict_json.JsonRefused as exc:
        raise WebhookMalformed(f"the SNS Message is not acceptable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WebhookMalformed("the SNS Message is not a JSON object")
    if "eventType" in data:
        return delivery_event(data, notification_id)
    if "inboundMessageId" in data:
        return WebhookBatch(inbound=(inbound_message(data, published),))
    raise WebhookMalformed("the SNS Message is neither an SMS event nor an inbound SMS")


def delivery_event(data: dict[str, Any], notification_id: str) -> WebhookBatch:
    event_type = data.get("eventType")
    if not isinstance(event_type, str):
        raise WebhookMalformed("eventType is not a string")
    status = EVENT_STATUSES.get(event_type)
    if status is None:
        # The type's name only: nothing else in the event is ours to log.
        logger.info("aws_sms event type not mapped", extra={"event_type": event_type[:64]})
        return WebhookBatch(ignored=1)
    message_id = data.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise WebhookMalformed("the SMS event has no messageId")
    error_code = error_reason = None
    if status.is_failure:
        error_code = event_type
        description = data.get("messageStatusDescription")
        error_reason = description[:MAX_REASON] if isinstance(description, str) else None
        if data.get("isFinal") is False:
            # AWS is still trying (TEXT_CARRIER_UNREACHABLE is "temporary"): in flight, not
            # over. Only an explicit false counts, so a failure never waits on a missing flag.
            status = MessageStatus.SUBMITTED
    event = StatusEvent(status, error_code, error_reason, usage(data), event_id=notification_id)
    context = data.get("context")
    hint = hint_of(context.get("reference")) if isinstance(context, dict) else None
    return WebhookBatch(statuses=(ProviderStatus(message_id, event, hint),))


def usage(data: dict[str, Any]) -> Usage | None:
    """totalMessagePrice plus totalCarrierFee, in USD, when the event prices the message."""
    price = _amount(data.get("totalMessagePrice"))
    if price is None:
        return None
    fee = _amount(data.get("totalCarrierFee")) or Decimal(0)
    return Usage(format(price + fee, "f"), CURRENCY)


def inbound_message(data: dict[str, Any], published: datetime) -> InboundMessage:
    fields = ("originationNumber", "destinationNumber", "messageBody", "inboundMessageId")
    if any(not isinstance(data.get(name), str) for name in fields) or not data["inboundMessageId"]:
        raise WebhookMalformed("the inbound SMS lacks a number, body or id")
    sender = data["originationNumber"].lstrip("+")
    replied_to = data.get("previousPublishedMessageId")
    return InboundMessage(
        provider_message_id=data["inboundMessageId"],
        # The same digits `recipient_key` gives for a message we sent to this person.
        sender_key=sender,
        to={"type": "sms", "number": data["destinationNumber"].lstrip("+")},
        from_={"type": "sms", "number": sender},
        content={"type": "text", "text": data["messageBody"]},
        # The payload has no time of its own: SNS's publish time is the closest there is.
        timestamp=published,
        # "The unique identifier of the message that the customer is responding to" (AWS):
        # when it is one of ours it names the exact dispatch, else the latest to this sender.
        context_message_id=replied_to if isinstance(replied_to, str) and replied_to else None,
    )


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    return Decimal(value)
