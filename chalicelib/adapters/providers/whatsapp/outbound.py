"""The Cloud API request body for one validated workflow item (Messages v0.1 content).

Meta names a file `document` and takes media by `link`; a template's v0.1 positional parameters
become one body component; the v0.1 `whatsapp.locale` (BCP 47, `en-GB`) becomes Meta's `en_GB`.
"""
from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from chalicelib.domain.model import Channel, StepSpec

#: What this provider carries on each channel it serves. Every type the API accepts on whatsapp.
CONTENT_TYPES: Mapping[Channel, frozenset[str]] = {
    Channel.WHATSAPP: frozenset({"text", "image", "audio", "video", "file", "template"}),
}

#: v0.1 content type → Cloud API message type.
MESSAGE_TYPES: Mapping[str, str] = {
    "text": "text",
    "image": "image",
    "audio": "audio",
    "video": "video",
    "file": "document",
    "template": "template",
}

#: Messages v0.1 defaults a template's locale to en_US; so do we, so a client moving from
#: Vonage sends the same template.
DEFAULT_LOCALE = "en_US"


class UnsupportedContent(ValueError):
    """The item holds content this provider cannot express (validation should have refused it)."""


def message_body(spec: StepSpec) -> dict[str, Any]:
    """The JSON body of `POST /{version}/{phone-number-id}/messages` for `spec`."""
    content = spec.message.get("content") or {}
    kind = str(content.get("type"))
    if kind not in MESSAGE_TYPES:
        raise UnsupportedContent(f"whatsapp cannot carry content type {kind}")
    payload = content.get(kind) or {}
    if kind == "text":
        body: Any = {"preview_url": False, "body": payload if isinstance(payload, str) else ""}
    elif kind == "template":
        body = _template(payload, spec.message.get("whatsapp") or {})
    else:
        body = _media(kind, payload)
    wa_type = MESSAGE_TYPES[kind]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        # Validated E.164 digits without "+": the form Meta's wa_id takes too.
        "to": str(spec.to.get("number", "")),
        "type": wa_type,
        wa_type: body,
    }


def _media(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    media: dict[str, Any] = {"link": payload.get("url", "")}
    if payload.get("caption"):
        media["caption"] = payload["caption"]
    if kind == "file":
        # Without a filename WhatsApp shows the document as "Untitled" with a generic icon.
        filename = _filename(str(payload.get("url", "")))
        if filename:
            media["filename"] = filename
    return media


def _filename(url: str) -> str | None:
    name = unquote(posixpath.basename(urlsplit(url).path))
    return name or None


def _template(template: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    locale = str(options.get("locale") or DEFAULT_LOCALE).replace("-", "_")
    body: dict[str, Any] = {"name": template.get("name", ""), "language": {"code": locale}}
    parameters = [
        {"type": "text", "text": str(p.get("default", ""))}
        for p in template.get("parameters") or []
        if isinstance(p, Mapping)
    ]
    # A template without variables is sent without components, as Meta's examples do.
    if parameters:
        body["components"] = [{"type": "body", "parameters": parameters}]
    return body
