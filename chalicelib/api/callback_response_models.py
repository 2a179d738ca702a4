"""Pydantic models of what the callbacks API answers, for the OpenAPI document and the tests.

Same conventions as `response_models.py`: `extra="forbid"`, fields typed `X | None` without a default are
always present and may be null, a `None` default means optional and never null when present.
Kept apart from `response_models.py` so the callbacks API is one small module to read.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.api.response_models import TIMESTAMP_PATTERN, ViewModel
from chalicelib.domain.callbacks import CallbackKind, DeliveryState

CALLBACKS_HREF_PATTERN = r"^/v0\.1/callbacks\?\S+$"


class CallbackAttempt(ViewModel):
    """One try at delivering a callback."""

    at: str = Field(pattern=TIMESTAMP_PATTERN, description="When the attempt was made.")
    http_status: int | None = Field(description="The receiver's answer; null when there was none.")
    error: str | None = Field(
        description="Why there was no answer, or no attempt could be made: timeout, connection, "
        "invalid_url, signature_secret_unavailable, no_status_url, no_inbound_url, "
        "unknown_application or internal. Null when the receiver answered."
    )
    duration_ms: int | None = Field(ge=0, description="How long the receiver took to answer.")


class CallbackView(ViewModel):
    """One callback of a dispatch and the story of its delivery."""

    seq: int = Field(ge=1, description="Its number within the dispatch, from 1, in decision order.")
    event_id: str = Field(description="Sent as `X-Dispatch-Event-Id`: the same on every attempt.")
    type: CallbackKind
    state: DeliveryState = Field(
        description="pending: not delivered yet and will be tried (again); delivered: a 2xx came "
        "back; dead: no more attempts (an answer that is never retried, or a retry window spent "
        "on failures) until it is replayed."
    )
    decided_at: str = Field(
        pattern=TIMESTAMP_PATTERN, description="When the dispatch decided to send it."
    )
    next_attempt_at: str | None = Field(
        pattern=TIMESTAMP_PATTERN,
        description="Pending after a failed attempt: not tried again before this. Null otherwise.",
    )
    dead_at: str | None = Field(pattern=TIMESTAMP_PATTERN, description="When it was given up on.")
    dead_reason: str | None = Field(
        description="Why it was given up on: the last answer's HTTP status (e.g. `410`), the "
        "last error, or `retry_window_exhausted`."
    )
    replays: int = Field(ge=0, description="How many times it was replayed.")
    attempts: list[CallbackAttempt] = Field(description="Every attempt, oldest first.")
    payload: dict[str, Any] = Field(
        description="The JSON body exactly as it is sent: a message status or a final report "
        "(see `webhooks`), or an inbound message."
    )


class DispatchCallbacks(ViewModel):
    """Body of `GET /v0.1/dispatch/{dispatch_uuid}/callbacks`."""

    dispatch_uuid: str
    callbacks: list[CallbackView] = Field(description="By seq.")


class DeadCallbackView(CallbackView):
    """A callback in a list that spans dispatches: it also names its dispatch."""

    dispatch_uuid: str


class CallbacksLink(ViewModel):
    href: str = Field(pattern=CALLBACKS_HREF_PATTERN)


class CallbackListLinks(ViewModel):
    self_: CallbacksLink = Field(alias="self")
    next: CallbacksLink = Field(  # type: ignore[assignment]
        default=None, description="The next page; absent on the last one."
    )


class CallbackList(ViewModel):
    """Body of `GET /v0.1/callbacks`."""

    callbacks: list[DeadCallbackView] = Field(description="The latest given up on first.")
    links: CallbackListLinks = Field(alias="_links")


class ReplayAccepted(ViewModel):
    """Body of `POST /v0.1/dispatch/{dispatch_uuid}/callbacks/replay`."""

    dispatch_uuid: str
    replaying: int = Field(ge=0, description="How many callbacks will be sent again.")
