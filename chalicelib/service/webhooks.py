"""Channel webhooks: verify, parse into normalised events, apply.

Each provider module supplies a `ChannelWebhook`: it checks the request's signature on the raw
body (before anything is parsed) and turns the provider's payload into a `WebhookBatch` through
its own mapping table. This module applies the batch, the same way for every provider:

- a `ProviderStatus` goes to `DispatchService.apply_status` through the message index written
  when the send was recorded (strongly consistent, never a GSI);
- a `RecipientStatus` (Messenger's delivery/read watermark, which names a recipient and a time,
  not a message) applies to the latest message sent to that recipient at or before the watermark;
- an `InboundMessage` is relayed, signed, to the inbound URL of the application whose message the
  user answered (by the id it quotes, else the latest message sent to that user).

Everything in a batch is applied; a status for no message of ours is counted, logged and
dropped (providers send events for messages other systems sent from the same number). An
exception while applying escapes, so the route answers 5xx and the provider retries the whole
batch, which is safe: every status is idempotent.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from chalicelib.domain.model import MessageStatus, StatusEvent
from chalicelib.service.callback_payloads import iso
from chalicelib.service.dispatches import DispatchService
from chalicelib.service.ports import ApplicationLookup, DispatchRepository, MessageHint

logger = logging.getLogger(__name__)

WebhookKind = Literal["status", "inbound"]


class WebhookUnauthorized(Exception):
    """The request is not provably from the provider: missing, wrong or stale signature."""


class WebhookMalformed(ValueError):
    """The request is signed but is not a payload this provider sends."""


@dataclass(frozen=True)
class WebhookRequest:
    """What a provider sent, as received: header names lower-case, the body's exact bytes."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    #: The public URL the provider called (some schemes sign it).
    url: str = ""


@dataclass(frozen=True)
class ProviderStatus:
    provider_message_id: str
    event: StatusEvent
    #: The dispatch and step the status's echoed reference names (`message_hints`), if any.
    hint: MessageHint | None = None


@dataclass(frozen=True)
class RecipientStatus:
    """Every message sent to `recipient` at or before `watermark` reached `status`."""

    recipient: str
    watermark: datetime
    status: MessageStatus


@dataclass(frozen=True)
class InboundMessage:
    """A user's message, already in the Messages v0.1 inbound shape's terms."""

    provider_message_id: str
    #: Our recipient key for the user (the same one `ChannelProvider.recipient_key` gives).
    sender_key: str
    to: Mapping[str, Any]
    from_: Mapping[str, Any]
    content: Mapping[str, Any]
    timestamp: datetime
    #: The provider id of the message this one replies to, when the provider says.
    context_message_id: str | None = None


@dataclass(frozen=True)
class WebhookBatch:
    statuses: tuple[ProviderStatus, ...] = ()
    recipient_statuses: tuple[RecipientStatus, ...] = ()
    inbound: tuple[InboundMessage, ...] = ()
    #: Events the mapping table does not know (logged by the parser, counted here).
    ignored: int = 0


class ChannelWebhook(Protocol):
    name: str

    def verify(self, request: WebhookRequest) -> None:
        """Raise WebhookUnauthorized unless the request is signed by the provider."""

    def parse(self, request: WebhookRequest, kind: WebhookKind) -> WebhookBatch:
        """The normalised events in a verified request; WebhookMalformed if it is not one."""

    def challenge(self, request: WebhookRequest) -> str | None:
        """The answer to a GET verification handshake (Meta), or None if not one of ours."""


@dataclass(frozen=True)
class WebhookReport:
    applied: int = 0
    unmatched: int = 0
    ignored: int = 0
    relayed: int = 0


class WebhookService:
    def __init__(
        self,
        dispatches: DispatchService,
        repository: DispatchRepository,
        applications: ApplicationLookup,
    ) -> None:
        self._dispatches = dispatches
        self._repo = repository
        self._apps = applications

    def receive(self, webhook: ChannelWebhook, kind: WebhookKind, request: WebhookRequest) -> WebhookReport:
        webhook.verify(request)
        batch = webhook.parse(request, kind)
        applied = unmatched = 0
        for status in batch.statuses:
            if self._dispatches.apply_status(
                webhook.name, status.provider_message_id, status.event, hint=status.hint
            ):
                applied += 1
            else:
                unmatched += 1
        for watermark in batch.recipient_statuses:
            if self._apply_watermark(webhook.name, watermark):
                applied += 1
            else:
                unmatched += 1
        relayed = sum(self._relay(webhook.name, message) for message in batch.inbound)
        report = WebhookReport(applied, unmatched, batch.ignored, relayed)
        if unmatched or batch.ignored:
            logger.info(
                "webhook events not applied",
                extra={"provider": webhook.name, "unmatched": unmatched, "ignored": batch.ignored},
            )
        return report

    def _apply_watermark(self, provider: str, status: RecipientStatus) -> bool:
        latest = self._repo.find_recipient(provider, status.recipient)
        if latest is None or latest.sent_at is None or latest.sent_at > status.watermark:
            return False
        event = StatusEvent(status.status)
        hint = MessageHint(latest.dispatch_uuid, latest.step_index)
        return self._dispatches.apply_status(provider, latest.provider_message_id, event, hint=hint)

    def _relay(self, provider: str, message: InboundMessage) -> bool:
        ref = None
        if message.context_message_id:
            ref = self._repo.find_message(provider, message.context_message_id)
        if ref is None:
            ref = self._repo.find_recipient(provider, message.sender_key)
        application_id = self._dispatches.owner_of(ref.dispatch_uuid) if ref else None
        application = self._apps.get(application_id) if application_id else None
        if ref is None or application is None or not application.inbound_url:
            logger.info("inbound message not relayed: no application", extra={"provider": provider})
            return False
        # Saved before the webhook is answered: once the provider hears 200, it cannot be lost.
        self._dispatches.relay_inbound(ref.dispatch_uuid, inbound_payload(provider, message))
        return True


def inbound_payload(provider: str, message: InboundMessage) -> dict[str, Any]:
    """The Messages v0.1 inbound shape; `message_uuid` is stable for a redelivered message."""
    stable = uuid.uuid5(uuid.NAMESPACE_URL, f"dispatch:inbound:{provider}:{message.provider_message_id}")
    return {
        "message_uuid": str(stable),
        "to": dict(message.to),
        "from": dict(message.from_),
        "timestamp": iso(message.timestamp),
        "message": {"content": dict(message.content)},
    }
