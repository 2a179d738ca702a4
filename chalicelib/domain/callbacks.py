"""Callbacks as durable records: what was decided, every attempt to deliver it, and what is next.

A callback is decided with the state change that causes it and saved in the dispatch item's
outbox (`OutboxEntry`) by the same write. Delivery moves it into a `CallbackRecord`, which keeps
every attempt. Pure: times come in as arguments, randomness as a function.

Retry rules (documented in the README, "Callbacks"):
- delivered on any 2xx;
- retried on timeouts, connection errors, 408, 429 and 5xx, with exponential backoff and equal
  jitter (`RetryPolicy.backoff`), honouring `Retry-After`, until the window from when the
  callback was decided (or last replayed) runs out;
- dead at once on any other answer (other 4xx, a redirect), or when the window runs out.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


class CallbackKind(str, enum.Enum):
    MESSAGE_STATUS = "message_status"
    FINAL_REPORT = "final_report"
    INBOUND = "inbound"

    @property
    def target(self) -> str:
        """Which of the application's URLs receives it: `status_url` or `inbound_url`."""
        return "inbound_url" if self is CallbackKind.INBOUND else "status_url"


class DeliveryState(str, enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


#: Errors (no HTTP answer) worth another attempt: the receiver or the network may recover, a
#: signing secret that could not be read now may be readable in a moment, and a fault of our own
#: (`internal`) is no reason to give up on the receiver.
RETRYABLE_ERRORS = frozenset({"timeout", "connection", "signature_secret_unavailable", "internal"})


def retryable_status(status_code: int) -> bool:
    """408 and 429 ask for patience; 5xx is the receiver's own failure. All may pass later."""
    return status_code in (408, 429) or 500 <= status_code <= 599


@dataclass(frozen=True)
class OutboxEntry:
    """A callback decided and not yet taken in by delivery; saved inside the dispatch item."""

    seq: int
    event_id: str
    kind: CallbackKind
    decided_at: datetime
    #: The JSON body, serialised once: every attempt and every replay sends these very bytes.
    body: str


@dataclass(frozen=True)
class AttemptResult:
    """What one delivery attempt came to, as the transport saw it."""

    status_code: int | None = None
    #: Set when there was no HTTP answer, or no attempt could be made: `timeout`, `connection`,
    #: `invalid_url`, `signature_secret_unavailable`, `no_status_url`, `no_inbound_url`,
    #: `unknown_application`, `internal` (a fault of ours, logged).
    error: str | None = None
    #: Seconds the receiver asked us to wait (`Retry-After`), if it said.
    retry_after: float | None = None
    duration_ms: int | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code <= 299

    @property
    def retryable(self) -> bool:
        if self.status_code is not None:
            return retryable_status(self.status_code)
        return self.error in RETRYABLE_ERRORS


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, as the callbacks API lists it."""

    at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    #: The first retry waits between half this and this; each further one doubles it.
    base_seconds: float = 10.0
    #: No single wait exceeds this (jitter applied below it).
    cap_seconds: float = 3600.0
    #: How long a callback is retried, from when it was decided or last replayed.
    window_seconds: float = 86_400.0
    #: The most a receiver's `Retry-After` may defer the next attempt.
    max_retry_after_seconds: float = 21_600.0

    def backoff(self, failures: int, random: Callable[[], float]) -> float:
        """The wait after `failures` consecutive failed attempts (1, 2, ...): "equal jitter",
        uniform in [d/2, d] for d = min(cap, base * 2^(failures-1)). Never less than d/2, so the
        schedule is bounded below; the random half spreads receivers' recoveries apart."""
        # Doublings stop at 64: by then any base is past any cap, and an unbounded 2**n overflows
        # float near n = 1024, which a long window with a small cap reaches.
        doublings = min(max(0, failures - 1), 64)
        ceiling = min(self.cap_seconds, self.base_seconds * 2**doublings)
        return ceiling / 2 + random() * ceiling / 2


@dataclass(frozen=True)
class CallbackRecord:
    """A callback taken in by delivery: its body, its attempts and its state."""

    dispatch_uuid: str
    application_id: str
    seq: int
    event_id: str
    kind: CallbackKind
    decided_at: datetime
    body: str
    state: DeliveryState = DeliveryState.PENDING
    attempts: tuple[Attempt, ...] = ()
    #: For a pending callback that failed: not before this. None means as soon as its turn comes.
    next_at: datetime | None = None
    #: When its retry window began: when it was decided, or its last replay.
    window_from: datetime | None = None
    dead_at: datetime | None = None
    #: Why it is dead: the HTTP status or error of the last attempt, or `retry_window_exhausted`.
    dead_reason: str | None = None
    replays: int = 0

    @classmethod
    def from_outbox(
        cls, dispatch_uuid: str, application_id: str, entry: OutboxEntry
    ) -> CallbackRecord:
        return cls(
            dispatch_uuid=dispatch_uuid,
            application_id=application_id,
            seq=entry.seq,
            event_id=entry.event_id,
            kind=entry.kind,
            decided_at=entry.decided_at,
            body=entry.body,
            window_from=entry.decided_at,
        )

    @property
    def ids(self) -> dict[str, object]:
        """What the record may be logged with: identifiers, never the body (message text)."""
        return {
            "application_id": self.application_id,
            "dispatch_uuid": self.dispatch_uuid,
            "seq": self.seq,
            "event_id": self.event_id,
        }

    @property
    def window_start(self) -> datetime:
        return self.window_from or self.decided_at

    def after_attempt(
        self,
        result: AttemptResult,
        now: datetime,
        policy: RetryPolicy,
        random: Callable[[], float],
    ) -> CallbackRecord:
        """This record once `result` is known: delivered, due again later, or dead."""
        attempt = Attempt(now, result.status_code, result.error, result.duration_ms)
        attempts = self.attempts + (attempt,)
        if result.delivered:
            return replace(self, state=DeliveryState.DELIVERED, attempts=attempts, next_at=None)
        reason = str(result.status_code) if result.status_code is not None else result.error
        if not result.retryable:
            return self._dead(attempts, now, reason or "rejected")
        failures = sum(1 for a in attempts if a.at >= self.window_start)
        wait = policy.backoff(failures, random)
        if result.retry_after is not None:
            wait = max(wait, min(result.retry_after, policy.max_retry_after_seconds))
        next_at = now + timedelta(seconds=wait)
        if next_at > self.window_start + timedelta(seconds=policy.window_seconds):
            return self._dead(attempts, now, "retry_window_exhausted")
        return replace(self, attempts=attempts, next_at=next_at)

    def replayed(self, at: datetime) -> CallbackRecord:
        """Due again as soon as its turn comes, with a fresh retry window; attempts are kept."""
        return replace(
            self,
            state=DeliveryState.PENDING,
            next_at=None,
            window_from=at,
            dead_at=None,
            dead_reason=None,
            replays=self.replays + 1,
        )

    def _dead(self, attempts: tuple[Attempt, ...], now: datetime, reason: str) -> CallbackRecord:
        return replace(
            self,
            state=DeliveryState.DEAD,
            attempts=attempts,
            next_at=None,
            dead_at=now,
            dead_reason=reason,
        )
