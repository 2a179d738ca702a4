"""Ports: what the service needs from the outside world, as Protocols.

Concrete adapters live in `chalicelib.adapters` and are built only in `chalicelib.bootstrap`;
fakes for tests live in `tests/fakes.py`, `tests/fake_repository.py` and
`tests/fake_applications.py`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from chalicelib.domain.application import Application
from chalicelib.domain.model import Dispatch, Step


@dataclass(frozen=True)
class CallbackId:
    """Who a callback is: a per-dispatch sequence number and an event id receivers dedupe on.

    Both are fixed when the callback is decided, so a redelivery carries the same ones."""

    event_id: str
    seq: int


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
        version + 1. Raises `ConcurrentUpdate` when the version moved on.
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


class CallbackSender(Protocol):
    def deliver(
        self,
        application: Application,
        payload: Mapping[str, Any],
        *,
        inbound: bool = False,
        callback_id: CallbackId | None = None,
    ) -> None:
        """Sign and post one callback to the application's status URL (its inbound URL for a
        relayed user message). Never raises."""


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
