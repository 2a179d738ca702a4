"""One workflow item as one Messages API v1 request, and Vonage's answer as an id or an error.

The v0.1 item (`to`/`from` objects, `message.content`, channel blocks) maps field by field onto
the v1 body (contract §5, channels.md §5):

- `to`/`from` become bare strings; `channel` is Vonage's name (`viber_service`, not `_msg`);
- `content.type` becomes `message_type`, and its payload object moves to the top level;
- template parameters `[{"default": "x"}]` become v1's `["x"]`, and `whatsapp.locale` goes from
  BCP 47 (`en-GB`) to Meta's form (`en_GB`); v1 requires the locale, so it defaults to `en_US`;
- `messenger` keeps its name, `viber_service_msg` becomes `viber_service`;
- `client_ref` is our `message_hints` reference (dispatch and step): every status echoes it, so
  applying one needs no message index read.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from chalicelib.adapters.providers import http
from chalicelib.domain.model import Channel, Step
from chalicelib.service.message_hints import reference
from chalicelib.service.ports import ProviderError

from .addresses import VONAGE_CHANNELS
from .codes import error_code, error_reason, is_transient_http

logger = logging.getLogger(__name__)

#: What each channel carries, per v0.1 content type (Messages API v1 spec 1.4.0). It equals what
#: the Dispatch contract accepts: nothing the API takes is refused here.
CONTENT_TYPES: Mapping[Channel, frozenset[str]] = {
    Channel.SMS: frozenset({"text"}),
    Channel.MMS: frozenset({"image"}),
    Channel.WHATSAPP: frozenset({"text", "image", "audio", "video", "file", "template"}),
    Channel.MESSENGER: frozenset({"text", "image", "audio", "video", "file"}),
    Channel.VIBER: frozenset({"text", "image"}),
}

#: Media fields v1 takes per (channel, type). Messenger's media take a URL only, so a v0.1
#: caption there (which v0.1 itself documents as WhatsApp and MMS only) is not sent.
MEDIA_FIELDS: Mapping[tuple[Channel, str], tuple[str, ...]] = {
    (Channel.MMS, "image"): ("url", "caption"),
    (Channel.WHATSAPP, "image"): ("url", "caption"),
    (Channel.WHATSAPP, "audio"): ("url",),
    (Channel.WHATSAPP, "video"): ("url",),
    (Channel.WHATSAPP, "file"): ("url", "caption"),
    (Channel.MESSENGER, "image"): ("url",),
    (Channel.MESSENGER, "audio"): ("url",),
    (Channel.MESSENGER, "video"): ("url",),
    (Channel.MESSENGER, "file"): ("url",),
    (Channel.VIBER, "image"): ("url", "caption"),
}

#: v0.1 channel block → v1 block name, and the fields it keeps.
CHANNEL_BLOCKS: Mapping[Channel, tuple[str, str, tuple[str, ...]]] = {
    Channel.MESSENGER: ("messenger", "messenger", ("category", "tag")),
    Channel.VIBER: ("viber_service_msg", "viber_service", ("category", "ttl")),
}

DEFAULT_TEMPLATE_LOCALE = "en_US"


class UnsupportedContent(ValueError):
    """A content type this channel cannot carry through Vonage (validation should stop it)."""


def message_body(step: Step, dispatch_uuid: str) -> dict[str, Any]:
    """The `POST /v1/messages` body for `step`."""
    spec = step.spec
    channel = spec.channel
    content = spec.message.get("content", {})
    kind = content.get("type")
    if kind not in CONTENT_TYPES[channel]:
        raise UnsupportedContent(f"{channel.value} cannot carry {kind}")
    body: dict[str, Any] = {
        "message_type": kind,
        "channel": VONAGE_CHANNELS[channel],
        "to": _address(spec.to),
        "from": _address(spec.sender),
    }
    if kind == "text":
        body["text"] = content["text"]
    elif kind == "template":
        body.update(_template(content["template"], spec.message.get("whatsapp") or {}))
    else:
        fields = MEDIA_FIELDS[(channel, kind)]
        media = content[kind]
        body[kind] = {key: media[key] for key in fields if media.get(key) is not None}
    if channel in CHANNEL_BLOCKS:
        ours, theirs, fields = CHANNEL_BLOCKS[channel]
        block = spec.message.get(ours) or {}
        options = {key: block[key] for key in fields if block.get(key) is not None}
        if options:
            body[theirs] = options
    body["client_ref"] = reference(dispatch_uuid, step.index)
    return body


def _address(address: Mapping[str, Any]) -> str:
    return str(address.get("number") or address.get("id"))


def _template(template: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    parameters = [parameter["default"] for parameter in template.get("parameters", [])]
    whatsapp: dict[str, str] = {}
    if options.get("policy"):
        whatsapp["policy"] = options["policy"]
    whatsapp["locale"] = str(options.get("locale") or DEFAULT_TEMPLATE_LOCALE).replace("-", "_")
    return {"template": {"name": template["name"], "parameters": parameters}, "whatsapp": whatsapp}


def post_message(
    session: Any, url: str, token: str, body: Mapping[str, Any], timeout: Any
) -> str:
    """POST the body; Vonage's `message_uuid`, or ProviderError saying whether to retry."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    response = http.post(session, "Vonage", url, json=body, headers=headers, timeout=timeout)
    if 200 <= response.status_code < 300:
        return _message_uuid(response)
    raise _error(response)


def _message_uuid(response: Any) -> str:
    answer = _json(response)
    message_uuid = answer.get("message_uuid") if isinstance(answer, dict) else None
    if not isinstance(message_uuid, str) or not message_uuid:
        # Accepted but unnamed: a retry may send twice, failing over surely sends twice; the
        # same channel is the lesser risk.
        raise ProviderError(
            "Vonage accepted the message without a message_uuid", permanent=False, code="no_message_uuid"
        )
    return message_uuid


def _error(response: Any) -> ProviderError:
    """An RFC 7807 error answer as a ProviderError, classified by HTTP status."""
    status = response.status_code
    problem = _json(response)
    problem = problem if isinstance(problem, dict) else {}
    code = error_code(problem) or str(status)
    reason = error_reason(problem) or f"HTTP {status}"
    permanent = not is_transient_http(status)
    logger.warning(
        "vonage send refused", extra={"http_status": status, "code": code, "permanent": permanent}
    )
    return ProviderError(f"Vonage answered {status}: {reason}", permanent=permanent, code=code)


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:  # requests' JSONDecodeError is a ValueError
        return None
