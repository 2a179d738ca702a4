"""The shape of a Messenger (`object: "page"`) webhook, as far as we read it.

`entry[].messaging[]` (and `entry[].standby[]`, the same events for an app that does not hold
the thread under the handover protocol) are kept as raw objects until their kind is known:
only the events we act on (delivery, read, message) are validated, so an unknown event never
makes a batch malformed. Unknown fields are ignored (Meta adds fields without notice); a missing
or mistyped field we rely on makes the payload malformed. Source: channels.md §2.2.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Latest millisecond a datetime can hold (9999-12-31T23:59:59.999Z): beyond it is not a time.
MAX_MS = 253_402_300_799_999


class Model(BaseModel):
    # Meta's ids are strings, but a numeric id must not make a whole batch malformed.
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class Party(Model):
    id: str = Field(min_length=1, max_length=100)


class Delivery(Model):
    #: "sometimes present": the messages this event covers by id.
    mids: list[str] = []
    #: "all messages with a timestamp before `watermark` were delivered" (ms since the epoch).
    watermark: int = Field(ge=0, le=MAX_MS)


class Read(Model):
    #: "All messages that were sent before or at this timestamp were read" (ms since the epoch).
    watermark: int = Field(ge=0, le=MAX_MS)


class ReplyTo(Model):
    mid: str | None = None


class Coordinates(Model):
    lat: float
    long: float


class AttachmentPayload(Model):
    url: str | None = None
    coordinates: Coordinates | None = None


class Attachment(Model):
    type: str
    payload: AttachmentPayload | None = None


class Message(Model):
    """A user's message (or, with `is_echo`, our own send echoed back)."""

    mid: str = Field(min_length=1)
    is_echo: bool = False
    text: str | None = None
    attachments: list[Attachment] = []
    reply_to: ReplyTo | None = None


class Addressed(Model):
    """What every event we act on has: the person (`sender`) and the Page (`recipient`)."""

    sender: Party
    recipient: Party
    timestamp: int | None = Field(default=None, ge=0, le=MAX_MS)


class DeliveryEvent(Addressed):
    delivery: Delivery

    @property
    def watermark(self) -> int:
        return self.delivery.watermark


class ReadEvent(Addressed):
    read: Read

    @property
    def watermark(self) -> int:
        return self.read.watermark


class MessageEvent(Addressed):
    message: Message


class Entry(Model):
    id: str | None = None
    time: int | None = Field(default=None, ge=0, le=MAX_MS)
    messaging: list[dict[str, Any]] = []
    standby: list[dict[str, Any]] = []
    #: Page feed and other field subscriptions: not messages, counted as ignored.
    changes: list[dict[str, Any]] = []


class Notification(Model):
    object: str
    entry: list[Entry]
