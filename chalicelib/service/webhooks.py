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

A batch of more than `inline_limit` events is not applied in the request: its verified,
normalised events go to a `WebhookQueue` (SQS on AWS) in chunks, the provider hears 200 at once,
and the `apply_webhooks` function applies each chunk with `apply` (docs/webhooks.md). A
request's work is then bounded by the body-size limit, not by what the batch holds.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
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


#: One normalised event of a batch, as applied and as queued.
WebhookEvent = ProviderStatus | RecipientStatus | InboundMessage


@dataclass(frozen=True)
class WebhookBatch:
    statuses: tuple[ProviderStatus, ...] = ()
    recipient_statuses: tuple[RecipientStatus, ...] = ()
    inbound: tuple[InboundMessage, ...] = ()
    #: Events the mapping table does not know (logged by the parser, counted here).
    ignored: int = 0

    @property
    def events(self) -> tuple[WebhookEvent, ...]:
        """Every event to apply, in the order they are applied: statuses, then watermarks, then
        inbound messages."""
        return (*self.statuses, *self.recipient_statuses, *self.inbound)


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
    #: Events handed to the webhook queue, to be applied after the answer.
    queued: int = 0


class WebhookQueue(Protocol):
    def put(self, provider: str, events: Sequence[WebhookEvent]) -> Sequence[WebhookEvent]:
        """Queue verified events of `provider` for `WebhookService.apply`, in order; returns
        those it cannot carry (an event too large for a queue message), for the caller to apply.
        Raises when the queue refused any (the provider then retries the whole batch)."""


#: Batches up to this many events are applied in the request (the common case is one status
#: per webhook, and it keeps its latency); larger ones go to the webhook queue.
DEFAULT_INLINE_LIMIT = 25

#: What applying one event did.
EventOutcome = Literal["applied", "unmatched", "relayed", "dropped"]


class WebhookService:
    def __init__(
        self,
        dispatches: DispatchService,
        repository: DispatchRepository,
        applications: ApplicationLookup,
        queue: WebhookQueue | None = None,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
    ) -> None:
        self._dispatches = dispatches
        self._repo = repository
        self._apps = applications
        self._queue = queue
        self._inline_limit = inline_limit

    def receive(self, webhook: ChannelWebhook, kind: WebhookKind, request: WebhookRequest) -> WebhookReport:
        webhook.verify(request)
        batch = webhook.parse(request, kind)
        events = batch.events
        queued = 0
        if self._queue is not None and len(events) > self._inline_limit:
            left = self._queue.put(webhook.name, events)
            queued = len(events) - len(left)
            logger.info(
                "webhook batch queued",
                extra={"provider": webhook.name, "queued": queued, "ignored": batch.ignored},
            )
            events = tuple(left)
        applied = self.apply(webhook.name, events)
        report = WebhookReport(applied.applied, applied.unmatched, batch.ignored, applied.relayed, queued)
        if report.unmatched or batch.ignored:
            logger.info(
                "webhook events not applied",
                extra={"provider": webhook.name, "unmatched": report.unmatched, "ignored": batch.ignored},
            )
        return report

    def apply(
        self,
        provider: str,
        events: Sequence[WebhookEvent],
        requeue: Callable[[str, Sequence[WebhookEvent]], object] | None = None,
    ) -> WebhookReport:
        """Apply verified events in order: a small batch in the request, or a chunk taken from
        the webhook queue.

        Without `requeue` (in the request), an exception escapes at the first event that fails.
        With it (a queued chunk), when an event fails after others were applied, the rest (from
        the failed one on) are queued again with `requeue` and the chunk is done: redelivering it
        whole would relay its inbound messages a second time. When the first event fails, or
        requeueing fails, the exception escapes and the queue redelivers the chunk, until it ends
        in the dead-letter queue. Each requeue is shorter than the chunk before it, so a chunk
        that always fails reaches the dead-letter queue too.
        """
        outcomes: list[EventOutcome] = []
        for position, event in enumerate(events):
            try:
                outcomes.append(self._apply_event(provider, event))
            except Exception:
                if position == 0 or requeue is None:
                    raise
                requeue(provider, events[position:])
                logger.warning(
                    "webhook chunk failed part way: the rest is queued again",
                    exc_info=True,
                    extra={"provider": provider, "applied": position, "requeued": len(events) - position},
                )
                break
        return WebhookReport(
            applied=outcomes.count("applied"),
            unmatched=outcomes.count("unmatched"),
            relayed=outcomes.count("relayed"),
            queued=len(events) - len(outcomes),
        )

    def _apply_event(self, provider: str, event: WebhookEvent) -> EventOutcome:
        if isinstance(event, ProviderStatus):
            found = self._dispatches.apply_status(
                provider, event.provider_message_id, event.event, hint=event.hint
            )
            return "applied" if found else "unmatched"
        if isinstance(event, RecipientStatus):
            return "applied" if self._apply_watermark(provider, event) else "unmatched"
        return "relayed" if self._relay(provider, event) else "dropped"

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
