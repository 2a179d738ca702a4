"""The dispatch aggregate: a chain of messages, each tried in turn until one meets its condition.

Pure data, standard library only. Times are timezone-aware UTC datetimes passed in by callers;
nothing here reads the clock.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain.callbacks import OutboxEntry


class Channel(str, enum.Enum):
    SMS = "sms"
    MMS = "mms"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    VIBER = "viber_service_msg"


class Condition(str, enum.Enum):
    """The status a message must reach before its expiry for the dispatch to complete."""

    DELIVERED = "delivered"
    READ = "read"


class MessageStatus(str, enum.Enum):
    """Per-message statuses, as the contract spells them on the wire."""

    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    READ = "read"
    REJECTED = "rejected"
    UNDELIVERABLE = "undeliverable"

    @property
    def is_failure(self) -> bool:
        return self in (MessageStatus.REJECTED, MessageStatus.UNDELIVERABLE)


#: Progress order of the non-failure statuses; a status never moves to a lower rank.
STATUS_RANK: Mapping[MessageStatus, int] = {
    MessageStatus.SUBMITTED: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
}

#: Which statuses satisfy each condition.
SATISFIES: Mapping[Condition, frozenset[MessageStatus]] = {
    Condition.DELIVERED: frozenset({MessageStatus.DELIVERED, MessageStatus.READ}),
    Condition.READ: frozenset({MessageStatus.READ}),
}

#: Channels that can report `read`; a `read` condition elsewhere could never be met.
READ_CAPABLE: frozenset[Channel] = frozenset(
    {Channel.WHATSAPP, Channel.MESSENGER, Channel.VIBER}
)


class DispatchStatus(str, enum.Enum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ERROR = "error"

    @property
    def is_final(self) -> bool:
        return self is not DispatchStatus.IN_PROGRESS


class Phase(str, enum.Enum):
    """Where a step is in its own life, independent of what the provider reported."""

    PENDING = "pending"  #: not started yet
    SENDING = "sending"  #: a send attempt is in flight
    RETRYING = "retrying"  #: the last attempt failed transiently; waiting to try again
    WAITING = "waiting"  #: accepted by the provider; waiting for its condition or deadline
    SUCCEEDED = "succeeded"  #: met its condition (or, for the last step, was delivered)
    FAILED = "failed"  #: ended without success; `outcome` says why


class Outcome(str, enum.Enum):
    """Why a step ended; for a failed step, this is why the next one was sent."""

    CONDITION_MET = "condition_met"
    EXPIRED = "expired"  #: condition not met before the deadline
    REJECTED = "rejected"
    UNDELIVERABLE = "undeliverable"
    SEND_FAILED = "send_failed"  #: permanent send error, or transient errors exhausted
    SEND_UNCONFIRMED = "send_unconfirmed"  #: a send attempt never reported back
    NO_REPORT = "no_report"  #: last step, nothing reported within the report limit


@dataclass(frozen=True)
class Usage:
    price: str
    currency: str


@dataclass(frozen=True)
class StatusRecord:
    """One status the provider reported for a message, kept in arrival order."""

    status: MessageStatus
    at: datetime  #: when we received it
    error_code: str | None = None
    error_reason: str | None = None
    #: True when it arrived after the step had already ended (recorded, never acted on).
    late: bool = False


@dataclass(frozen=True)
class StepSpec:
    """One workflow item as the client sent it, already validated."""

    channel: Channel
    to: Mapping[str, Any]  #: {"type", "number"|"id"}
    sender: Mapping[str, Any]  #: the item's `from`
    message: Mapping[str, Any]  #: {"content": {...}, optional channel blocks}
    condition: Condition | None = None
    expiry_time: int | None = None  #: seconds


@dataclass(frozen=True)
class Step:
    index: int
    spec: StepSpec
    message_uuid: str
    phase: Phase = Phase.PENDING
    status: MessageStatus | None = None  #: highest status reached (failures are terminal)
    history: tuple[StatusRecord, ...] = ()
    attempts: int = 0
    provider: str | None = None
    provider_message_id: str | None = None
    started_at: datetime | None = None  #: first send attempt
    sent_at: datetime | None = None  #: provider accepted the message
    deadline: datetime | None = None
    ended_at: datetime | None = None
    outcome: Outcome | None = None
    error_code: str | None = None
    error_reason: str | None = None
    usage: Usage | None = None

    @property
    def channel(self) -> Channel:
        return self.spec.channel

    @property
    def is_open(self) -> bool:
        return self.phase in (Phase.SENDING, Phase.RETRYING, Phase.WAITING)


@dataclass(frozen=True)
class Dispatch:
    dispatch_uuid: str
    application_id: str
    steps: tuple[Step, ...]
    created_at: datetime
    updated_at: datetime
    template: str = "failover"
    status: DispatchStatus = DispatchStatus.IN_PROGRESS
    current: int = 0  #: index of the step being tried
    #: The next time the dispatch needs a timer check (deadline, retry or report limit).
    due_at: datetime | None = None
    completed_by: int | None = None  #: index of the step that met its condition
    ended_at: datetime | None = None
    version: int = 0  #: optimistic-lock version; 0 means never saved
    #: How many callbacks the dispatch has decided: the next one is numbered `callbacks + 1`.
    #: Saved with the state change that decides them, so a number is never reused.
    callbacks: int = 0
    #: Callbacks decided and not yet taken in by delivery, oldest first: saved by the same write
    #: as the state change that decided them, so a crash after it cannot lose them.
    outbox: tuple[OutboxEntry, ...] = ()

    @property
    def current_step(self) -> Step:
        return self.steps[self.current]

    def step_for_message(self, message_uuid: str) -> Step | None:
        return next((s for s in self.steps if s.message_uuid == message_uuid), None)


@dataclass(frozen=True)
class Policy:
    """Tunable limits the transitions depend on; values come from configuration."""

    max_send_attempts: int = 3
    retry_backoff_seconds: tuple[int, ...] = (2, 8)
    #: How long a send attempt may stay unconfirmed before the step is given up.
    send_guard_seconds: int = 120
    #: How long the last step may go without reporting delivery before the dispatch errors.
    last_step_report_seconds: int = 86_400


@dataclass(frozen=True)
class StatusEvent:
    """A normalised status for one message, from a webhook or the sandbox."""

    status: MessageStatus
    error_code: str | None = None
    error_reason: str | None = None
    usage: Usage | None = None
    #: Provider's own event id, when it has one (for deduplication downstream).
    event_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
