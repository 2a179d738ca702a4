"""The shape of a WhatsApp Business Account webhook, as far as we read it.

Unknown fields are ignored (Meta adds fields without notice); a missing or mistyped field we rely
on makes the payload malformed. Source: channels.md §1.3 and Meta's messages webhook reference.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ErrorData(Model):
    details: str | None = None


class Error(Model):
    code: int | None = None
    title: str | None = None
    message: str | None = None
    error_data: ErrorData | None = None


class Pricing(Model):
    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None
    type: str | None = None


class Status(Model):
    id: str = Field(min_length=1)
    status: str
    timestamp: str | None = None
    recipient_id: str | None = None
    errors: list[Error] = []
    pricing: Pricing | None = None
    #: Echoed from the send: our `message_hints` reference.
    biz_opaque_callback_data: str | None = None


class Context(Model):
    id: str | None = None


class Text(Model):
    body: str = ""


class Media(Model):
    """image, audio (voice notes too), video, document, sticker: Meta sends a media id, no URL."""

    id: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    filename: str | None = None


class Location(Model):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


class Button(Model):
    """A template's quick-reply button the user tapped."""

    payload: str | None = None
    text: str | None = None


class Message(Model):
    """One user message (`value.messages[]`)."""

    from_: str = Field(alias="from", min_length=1)
    id: str = Field(min_length=1)
    timestamp: str
    type: str
    context: Context | None = None
    text: Text | None = None
    image: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    document: Media | None = None
    location: Location | None = None
    button: Button | None = None


class Metadata(Model):
    display_phone_number: str | None = None
    phone_number_id: str | None = None


class Value(Model):
    metadata: Metadata | None = None
    statuses: list[Status] = []
    messages: list[Message] = []
    errors: list[Error] = []


class Change(Model):
    field: str
    #: Read as a `Value` only for `field == "messages"`: other fields have other shapes.
    value: dict[str, Any] = {}


class Entry(Model):
    id: str | None = None
    changes: list[Change] = []


class Notification(Model):
    object: str
    entry: list[Entry]
