"""Pydantic models of what clients send: the dispatch create request and the sandbox status.

These models hold only the rules a JSON Schema can state (types, enums, lengths, ranges, patterns,
no unknown fields), so the OpenAPI document generated from them accepts exactly what they accept.
Rules that depend on the channel (addressing, content types per channel, text limits, `read` on
SMS…) live in `validation.py`, which runs them on the raw body so every error is reported at once.

Optional request fields are typed as their value with a `None` default rather than `X | None`:
an omitted field is fine, but an explicit `null` is refused, and the JSON Schema says so. mypy
calls that `None` default a type error, hence each such field's `# type: ignore`; code reading
one must still allow for None.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from chalicelib.domain.model import Channel, Condition

#: Most messages one dispatch may chain; the contract sets no limit, a runaway chain costs money.
MAX_WORKFLOW_ITEMS = 10

# What no URL may hold: whitespace, control characters, and the invisible format characters
# that make one URL look like another (zero-width ones, bidi controls, the BOM).
_NOT_IN_URL = r"\s\x00-\x1F\x7F-\x9F\u200B-\u200F\u202A-\u202E\u2060-\u206F\uFEFF"
#: Absolute http(s) URL with a host; written for the Rust, Python and ECMA regex engines.
URL_PATTERN = rf"^https?://[^{_NOT_IN_URL}/?#]+([/?#][^{_NOT_IN_URL}]*)?$"
#: BCP 47-ish tag (en, en-GB, zh-Hant-TW); the provider maps `-` to its own `_`.
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
# Free text (docs/input-rules.md): no control character (C0, DEL, C1) but tab, line feed and
# carriage return, and none of the bidi embeddings and overrides U+202A to U+202E, which can
# show characters in an order other than the one stored ("Trojan Source" spoofing). Isolates
# (U+2066 to U+2069) and marks (U+200E, U+200F), which Unicode recommends instead, stay. Written
# for the Rust, Python and ECMA regex engines alike.
TEXT_PATTERN = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\u202A-\u202E]*$"
#: One line of text (names, tags, codes): the same, and no tab or line break either.
LINE_PATTERN = r"^[^\x00-\x1F\x7F-\x9F\u202A-\u202E]*$"
#: An id: printable ASCII, no space. The channel rules in `validation.py` narrow it further.
ID_PATTERN = r"^[\x21-\x7E]+$"


def _refuse_strings_and_booleans(value: Any) -> Any:
    if isinstance(value, (str, bool)):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


#: A JSON Schema "integer": 600 and 600.0 (the same JSON number), never "600" or true. pydantic's
#: StrictInt would also refuse 600.0, which the published schema accepts.
JsonInt = Annotated[int, BeforeValidator(_refuse_strings_and_booleans)]

#: `custom` is in the contract's shape, so it stays in the enum, but no channel accepts it: see
#: `CONTENT_TYPES`. A request naming it gets the channel's reason, not a structural one.
ContentType = Literal["text", "image", "audio", "video", "file", "template", "custom"]
#: Every content key that carries a payload, i.e. every value `content.type` may name.
CONTENT_KEYS: tuple[str, ...] = ("text", "image", "audio", "video", "file", "template", "custom")


# What each channel takes. The models below cannot say it per channel; `validation.py` enforces
# these tables and the model docstrings (the OpenAPI descriptions) repeat them for clients.

#: Which address field each channel takes on its (`from`, `to`) side.
ADDRESS_FIELDS: Mapping[Channel, tuple[str, str]] = {
    Channel.SMS: ("number", "number"),
    Channel.MMS: ("number", "number"),
    Channel.WHATSAPP: ("number", "number"),
    Channel.MESSENGER: ("id", "id"),
    Channel.VIBER: ("id", "number"),
}

#: The content types each channel accepts, in the order its error message lists them. None
#: accepts `custom`.
CONTENT_TYPES: Mapping[Channel, tuple[str, ...]] = {
    Channel.SMS: ("text",),
    Channel.MMS: ("image",),
    Channel.VIBER: ("text", "image"),
    Channel.MESSENGER: ("text", "image", "audio", "video", "file"),
    Channel.WHATSAPP: ("text", "image", "audio", "video", "file", "template"),
}

TEXT_LIMITS: Mapping[Channel, int] = {
    Channel.MESSENGER: 640,
    Channel.SMS: 1000,
    Channel.VIBER: 1000,
    Channel.WHATSAPP: 4096,
}

#: The channel each optional `message` block belongs to.
CHANNEL_BLOCKS: Mapping[str, Channel] = {
    "viber_service_msg": Channel.VIBER,
    "messenger": Channel.MESSENGER,
    "whatsapp": Channel.WHATSAPP,
}


class RequestModel(BaseModel):
    """Base of every request model: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Address(RequestModel):
    """A `to` or `from`. sms, mms and whatsapp use `number` on both sides; messenger uses `id` on
    both sides; viber_service_msg sends from an `id` to a `number`. Numbers are E.164 without `+`
    or `00`; an sms `from` may instead be an alphanumeric sender id of up to 11 characters."""

    type: Channel
    number: str = Field(default=None, min_length=1, max_length=50)  # type: ignore[assignment]
    id: str = Field(  # type: ignore[assignment]
        default=None, min_length=1, max_length=50, pattern=ID_PATTERN
    )


class Media(RequestModel):
    """Audio and video: a URL only (no caption on these)."""

    url: str = Field(min_length=1, max_length=2000, pattern=URL_PATTERN)


class CaptionedMedia(Media):
    """Image and file: a URL and an optional caption."""

    caption: str = Field(  # type: ignore[assignment]
        default=None, min_length=1, max_length=3000, pattern=TEXT_PATTERN
    )


class TemplateParameter(RequestModel):
    default: str = Field(max_length=4096, pattern=TEXT_PATTERN)


class Template(RequestModel):
    """A WhatsApp message template; parameters fill {{1}}, {{2}}… in order."""

    name: str = Field(min_length=1, max_length=512, pattern=LINE_PATTERN)
    parameters: list[TemplateParameter]


class Content(RequestModel):
    """`type` names the one payload object that must be present; no other may be.

    Per channel: sms text; mms image; viber_service_msg text, image; messenger text, image,
    audio, video, file; whatsapp text, image, audio, video, file, template. No channel accepts
    `custom`. Text limits: messenger 640, sms and viber_service_msg 1000, whatsapp 4096
    characters."""

    type: ContentType
    text: str = Field(  # type: ignore[assignment]
        default=None, min_length=1, max_length=4096, pattern=TEXT_PATTERN
    )
    image: CaptionedMedia = Field(default=None)  # type: ignore[assignment]
    audio: Media = Field(default=None)  # type: ignore[assignment]
    video: Media = Field(default=None)  # type: ignore[assignment]
    file: CaptionedMedia = Field(default=None)  # type: ignore[assignment]
    template: Template = Field(default=None)  # type: ignore[assignment]
    # Any JSON object, so that `type: custom` is refused for the channel, not for its shape.
    custom: dict[str, Any] = Field(
        default=None,  # type: ignore[arg-type]
        description="Not accepted on any channel.",
    )


class ViberOptions(RequestModel):
    category: Literal["transaction", "promotion"] = Field(default=None)  # type: ignore[arg-type]
    ttl: JsonInt = Field(default=None, ge=30, le=86_400)  # type: ignore[assignment]


class MessengerOptions(RequestModel):
    category: Literal["response", "update", "message_tag"] = Field(default=None)  # type: ignore[arg-type]
    tag: str = Field(  # type: ignore[assignment]
        default=None, min_length=1, max_length=100, pattern=LINE_PATTERN
    )


class WhatsAppOptions(RequestModel):
    # Messages v0.1 answers 400 to the `fallback` policy WhatsApp withdrew; so do we.
    policy: Literal["deterministic"] = Field(default=None)  # type: ignore[arg-type]
    locale: str = Field(default=None, pattern=LOCALE_PATTERN)  # type: ignore[assignment]


class Message(RequestModel):
    content: Content
    viber_service_msg: ViberOptions = Field(default=None)  # type: ignore[assignment]
    messenger: MessengerOptions = Field(default=None)  # type: ignore[assignment]
    whatsapp: WhatsAppOptions = Field(default=None)  # type: ignore[assignment]


class Failover(RequestModel):
    """Move on to the next message unless this one reaches `condition_status` within
    `expiry_time` seconds, or at once if it fails. sms and mms cannot report `read`."""

    # The contract's tutorial sends "600" as a string; we refuse it rather than guess.
    expiry_time: JsonInt = Field(ge=15, le=86_400, description="Seconds.")
    condition_status: Condition


class WorkflowItem(RequestModel):
    """One message of the chain. Every item but the last must have `failover`; the last must
    not. `from.type` and `to.type` must match; a channel block in `message` must be its own."""

    sender: Address = Field(alias="from")
    to: Address
    message: Message
    failover: Failover = Field(default=None)  # type: ignore[assignment]


class CreateDispatchRequest(RequestModel):
    """Body of `POST /v0.1/dispatch` and `POST /beta/workflows`."""

    template: Literal["failover"]
    workflow: list[WorkflowItem] = Field(
        min_length=1,
        max_length=MAX_WORKFLOW_ITEMS,
        description=f"1 to {MAX_WORKFLOW_ITEMS} messages, tried in this order.",
    )


class SandboxError(RequestModel):
    code: str = Field(min_length=1, max_length=50, pattern=LINE_PATTERN)
    reason: str = Field(min_length=1, max_length=500, pattern=TEXT_PATTERN)


class SandboxStatusRequest(RequestModel):
    """Body of `POST /sandbox/messages/{message_uuid}/status`: a status as a provider would send."""

    status: Literal["delivered", "read", "rejected", "undeliverable"]
    error: SandboxError | None = None


class SandboxOutageRequest(RequestModel):
    """Body of `POST /sandbox/callbacks/outage`: how long the sink plays a receiver that is down,
    and what it answers meanwhile: 503 (retried) by default; 410, say, to see a callback go
    straight to the dead letters."""

    seconds: JsonInt = Field(ge=1, le=3600)
    status: JsonInt = Field(default=503, ge=400, le=599)
