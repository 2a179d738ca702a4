"""Pydantic models of what the service emits: responses, problems and the two callbacks.

The routes and the callback sender build plain dicts; these models describe those dicts for the
OpenAPI document, and tests validate emitted dicts against them. `extra="forbid"` everywhere, so a
field added in code but not here fails a test instead of drifting silently out of the document.

Fields typed `X | None` without a default are always present and may be null; fields with a
`None` default but no `| None` are optional and never null when present (the `# type: ignore` they
carry is mypy objecting to that `None` default).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.request_models import Address
from chalicelib.domain.model import (
    Channel,
    Condition,
    DispatchStatus,
    MessageStatus,
    Outcome,
    Phase,
)

#: ISO 8601 UTC with milliseconds and "Z", e.g. 2026-11-24T06:22:36.123Z.
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
DISPATCH_HREF_PATTERN = r"^/v0\.1/dispatch/[^/]+$"


def _time(description: str = "ISO 8601 UTC time with milliseconds.") -> str:
    """A required timestamp field; typed `str` so callers' annotations stay plain."""
    return Field(pattern=TIMESTAMP_PATTERN, description=description)


def _nullable_time(description: str) -> str | None:
    """A timestamp field that is always present but may be null."""
    return Field(pattern=TIMESTAMP_PATTERN, description=description)


class ViewModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Usage(ViewModel):
    price: str = Field(description="Decimal amount as a string, e.g. 0.0333.")
    currency: str


class ErrorInfo(ViewModel):
    code: str | None
    reason: str | None


class Link(ViewModel):
    href: str = Field(pattern=DISPATCH_HREF_PATTERN)


class CreateDispatchResponse(ViewModel):
    dispatch_uuid: str


class CreateWorkflowResponse(ViewModel):
    """The 2018 Workflows API name for the same resource."""

    workflow_uuid: str


class InvalidParameter(ViewModel):
    name: str = Field(description="JSON path of the field, e.g. workflow[0].failover.expiry_time.")
    reason: str


class Problem(ViewModel):
    """An RFC 7807 problem (`application/problem+json`)."""

    type: str
    title: str
    detail: str
    instance: str = Field(description="Trace id to quote when reporting the problem.")
    invalid_parameters: list[InvalidParameter] = Field(default=None)  # type: ignore[arg-type]


class HistoryEntry(ViewModel):
    """One status a provider reported, in arrival order."""

    status: MessageStatus
    timestamp: str = _time("When the status was received.")
    late: bool = Field(description="Arrived after the message's step had ended; recorded only.")
    error: ErrorInfo | None


class MessageView(ViewModel):
    index: int = Field(ge=0)
    channel: Channel
    message_uuid: str
    to: Address
    sender: Address = Field(alias="from")
    phase: Phase
    status: MessageStatus | None = Field(description="Highest status reached.")
    condition_status: Condition | None
    expiry_time: int | None
    attempts: int = Field(ge=0)
    sent_at: str | None = _nullable_time("When the provider accepted the message.")
    deadline: str | None = _nullable_time("When the condition stops counting.")
    ended_at: str | None = _nullable_time("When this message's step ended.")
    outcome: Outcome | None = Field(description="Why the step ended.")
    error: ErrorInfo | None
    usage: Usage | None
    history: list[HistoryEntry]


class DispatchLinks(ViewModel):
    self_: Link = Field(alias="self")


class DispatchView(ViewModel):
    """Body of `GET /v0.1/dispatch/{dispatch_uuid}`."""

    dispatch_uuid: str
    template: Literal["failover"]
    status: DispatchStatus
    created_at: str = _time()
    updated_at: str = _time()
    ended_at: str | None = _nullable_time("When the dispatch reached a final status.")
    completed_by: str | None = Field(description="message_uuid of the message that succeeded.")
    usage: Usage | None
    messages: list[MessageView]
    links: DispatchLinks = Field(alias="_links")


class WorkflowLink(ViewModel):
    dispatch_uuid: str
    href: str = Field(pattern=DISPATCH_HREF_PATTERN)


class MessageStatusLinks(ViewModel):
    workflow: WorkflowLink


class MessageStatusCallback(ViewModel):
    """Sent to the application's status URL for every status of every message."""

    message_uuid: str
    to: Address
    sender: Address = Field(alias="from")
    timestamp: str = _time()
    status: MessageStatus
    error: ErrorInfo = Field(default=None)  # type: ignore[assignment]
    usage: Usage = Field(default=None)  # type: ignore[assignment]
    links: MessageStatusLinks = Field(alias="_links")


class ReportedMessage(ViewModel):
    message_uuid: str
    href: str = Field(pattern=DISPATCH_HREF_PATTERN)
    channel: Channel
    status: MessageStatus | None
    usage: Usage = Field(default=None)  # type: ignore[assignment]


class FinalReportLinks(ViewModel):
    messages: list[ReportedMessage]


class FinalReportCallback(ViewModel):
    """Sent once per dispatch, to the same status URL, when it completes or errors."""

    dispatch_uuid: str
    template: Literal["failover"]
    status: Literal["completed", "error"]
    timestamp: str = _time()
    usage: Usage = Field(  # type: ignore[assignment]
        default=None, description="Total of the messages' known prices."
    )
    completed_by: str | None = Field(description="message_uuid of the message that succeeded.")
    links: FinalReportLinks = Field(alias="_links")


class ReceivedCallback(ViewModel):
    """One callback the sandbox sink received (`GET /sandbox/callbacks`)."""

    received_at: str = _time()
    signature_valid: bool
    body: Any = Field(description="The callback body as parsed JSON, or its raw text if invalid.")
