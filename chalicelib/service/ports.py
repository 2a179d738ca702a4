"""Ports: what the service needs from the outside world, as Protocols.

Concrete adapters live in `chalicelib.adapters` and are built only in `chalicelib.bootstrap`;
fakes for tests live in `tests/fakes.py`, `tests/fake_repository.py` and
`tests/fake_applications.py`.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from chalicelib.domain.application import Application
from chalicelib.domain.callbacks import AttemptResult, CallbackRecord
from chalicelib.domain.model import Dispatch, Step


@dataclass(frozen=True)
class MessageRef:
    """Where a provider's message id belongs: written with the send, read on every webhook."""

    provider: str
    provider_message_id: str
    dispatch_uuid: str
    step_index: int
    #: The provider's address of the person (`ChannelProvider.recipient_key`), when it has one:
    #: the repository then also remembers this as the latest message sent to them.
    recipient: str | None = None
    #: When the send began: before the provider stamped the message, never after.
    sent_at: datetime | None = None


@dataclass(frozen=True)
class MessageHint:
    """Where a provider message is thought to be, before the message index says so."""

    dispatch_uuid: str
    step_index: int


class DispatchRepository(Protocol):
    def get(self, dispatch_uuid: str) -> Dispatch | None:
        """Strongly consistent read; None when absent."""

    def add(self, dispatch: Dispatch) -> Dispatch:
        """Store a new dispatch (version 0) and return it at version 1.

        Raises `DispatchExists` if the id is taken.
        """

    def save(self, dispatch: Dispatch, message_refs: Sequence[MessageRef] = ()) -> Dispatch:
        """Store `dispatch` if the stored version still equals `dispatch.version`.

        Writes the message index items in the same transaction. Returns the dispatch at
        version + 1. Raises `ConcurrentUpdate` when the version moved on; the index items are
        written even then, since the messages they name were sent.
        """

    def find_message(self, provider: str, provider_message_id: str) -> MessageRef | None:
        """Strongly consistent lookup of a message index item."""

    def find_recipient(self, provider: str, recipient: str) -> MessageRef | None:
        """The latest message sent to `recipient` through `provider` (strongly consistent)."""

    def overdue(self, cutoff: datetime, since: datetime) -> list[OverdueCheck]:
        """The pending check of every dispatch whose due_at is in [since, cutoff].

        Oldest first, each dispatch once. Final dispatches have no due_at, so they never appear.
        May lag the latest saves (an eventually consistent index): callers re-read before acting.
        """

    def prune_outbox(self, dispatch: Dispatch, seqs: Collection[int]) -> None:
        """Drop the outbox entries numbered `seqs` from the stored dispatch (delivery has taken
        them in). Does not change the version: it is not a state change. `dispatch` is the one
        the caller read; entries saved since by another writer are left alone."""

    def unrelayed(self, cutoff: datetime, since: datetime) -> list[str]:
        """Dispatches whose oldest outbox entry was decided in [since, cutoff], oldest first.

        An entry that old was never taken in by delivery (a lost nudge, a crash after the save).
        May lag the latest writes (an eventually consistent index)."""


class SweepMarks(Protocol):
    """How far the scheduled sweeps have got: the cutoff of the last run that finished cleanly."""

    def swept_to(self) -> datetime | None:
        """The latest cutoff marked; None before any run finished."""

    def mark_swept(self, cutoff: datetime) -> None:
        """Record `cutoff`, unless a later one is already recorded."""


class ApplicationLookup(Protocol):
    def get(self, application_id: str) -> Application | None: ...


class ApplicationRepository(Protocol):
    def get(self, application_id: str) -> Application | None: ...

    def get_by_api_key(self, api_key: str) -> Application | None: ...

    def add(self, application: Application) -> None: ...

    def update(self, application: Application) -> None: ...

    def list(self) -> list[Application]: ...


class SecretStore(Protocol):
    def get(self, name: str) -> str:
        """The secret's current value; raises KeyError when it does not exist."""

    def put(self, name: str, value: str) -> None:
        """Create the secret or store a new value for it."""


class TokenUses(Protocol):
    """The client JWTs already used, for deployments that accept each token once."""

    def first_use(self, application_id: str, jti: str, until: datetime) -> bool:
        """Record a use of the token (application_id, jti); False if it was used before.

        `until` is when the token stops being accepted anyway: the record may go after it. One
        atomic step, so of two concurrent uses exactly one is the first."""


class OverdueCheck(NamedTuple):
    """A live dispatch's pending check, as the sweeper's index lists it."""

    dispatch_uuid: str
    step_index: int
    #: A check AWS timers leave to the sweeper; an overdue one that is not means a timer lost it.
    backstop: bool


class Timer(Protocol):
    """Wakes the dispatch up at a given time by invoking the failover check.

    A check is named by (dispatch, step, at). `backstop` marks a check that only catches what
    went wrong; the sweeper re-drives those too, so a backend may leave them to it.
    """

    def schedule(
        self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False
    ) -> None:
        """Arrange one check of (dispatch, step) at `at` (never before it). Repeating is harmless.

        Earlier checks of the same step may stay pending: one that comes when the dispatch is
        not due changes nothing.
        """

    def cancel(
        self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False
    ) -> None:
        """Drop the pending check of (dispatch, step) at `at`, if any; one that fires anyway is a no-op."""


class ProviderError(Exception):
    """A send that did not go through; `permanent` says whether retrying could help."""

    def __init__(self, reason: str, *, permanent: bool, code: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.code = code


class ChannelProvider(Protocol):
    name: str

    def send(self, dispatch_uuid: str, step: Step) -> str:
        """Send the step's message; return the provider's message id or raise ProviderError."""

    def recipient_key(self, step: Step) -> str | None:
        """The provider's own address of the step's recipient (e.g. page#psid), or None.

        Webhooks that name a person rather than a message (Messenger's watermarks, inbound
        messages) are matched through it to the latest message sent to that person."""


@dataclass(frozen=True)
class CallbackStream:
    """A dispatch's delivery state, as a drain that has just claimed it sees it."""

    #: A replay asked for and not yet applied: every callback is to be sent again.
    replay_at: datetime | None = None


class CallbackStore(Protocol):
    """Delivery records of callbacks, and the lease that lets one drain at a time work a
    dispatch's callbacks (which keeps them in order)."""

    def claim(
        self, dispatch_uuid: str, owner: str, now: datetime, until: datetime
    ) -> CallbackStream | None:
        """Take the dispatch's lease until `until`; None while another owner holds it.

        Also marks the dispatch's callbacks due at `until`, so that if this drain dies before
        `release`, the sweeper finds them once the lease has run out."""

    def release(
        self,
        dispatch_uuid: str,
        owner: str,
        *,
        next_at: datetime | None,
        replay_applied: datetime | None = None,
    ) -> None:
        """Give the lease back. `next_at`: when a callback is next due (the sweeper looks again a
        while after it if no drain has), None when nothing is pending. `replay_applied`: the
        replay this drain carried out. A lease already taken by another owner is left alone."""

    def records(self, dispatch_uuid: str) -> list[CallbackRecord]:
        """Every record of the dispatch, by seq (strongly consistent)."""

    def put(self, record: CallbackRecord) -> None:
        """Create or replace one record (the lease holder's write). A dead one has `dead_at`."""

    def request_replay(self, dispatch_uuid: str, at: datetime) -> None:
        """Mark every callback of the dispatch for sending again; the next drain does it. Also
        marks them due at `at`, so the sweeper carries the replay out if no drain comes."""

    def dead(
        self, application_id: str, limit: int, cursor: str | None = None
    ) -> tuple[list[CallbackRecord], str | None]:
        """The application's dead callbacks, latest first, and the cursor of the next page (the
        last page may be empty: a page that is exactly full still gives a cursor).

        Raises `InvalidCursor` for a cursor this store did not issue to this application."""

    def stalled(self, cutoff: datetime, since: datetime) -> list[str]:
        """Dispatches with a callback due (`next_at`) in [since, cutoff] whose drain never came."""


class InvalidCursor(ValueError):
    """A page cursor that is malformed, or was issued for another application."""


class CallbackQueue(Protocol):
    def nudge(self, dispatch_uuid: str, at: datetime | None = None) -> None:
        """Have the dispatch's callbacks drained at `at` (now when None). Never raises: a nudge
        that is lost is made up for by the sweeper."""


class CallbackTransport(Protocol):
    def attempt(self, application: Application, record: CallbackRecord) -> AttemptResult:
        """Sign and post the record's body once to the URL its kind goes to. Never raises."""


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
