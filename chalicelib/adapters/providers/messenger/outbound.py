"""The Send API request for one validated workflow item (Messages v0.1 content), and who it is to.

A Messenger address is a pair: the Page (`from.id`) and the person's page-scoped id (`to.id`,
PSID). Webhooks name the person by that same pair (the Page as `recipient.id`, the PSID as
`sender.id`), which is what `recipient_key` is built from.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.model import Channel, StepSpec

#: What this provider carries on each channel it serves: every type the API accepts on
#: messenger. Captions on image and file are not carried (Send API attachments have none; v0.1
#: documents captions for WhatsApp and MMS only).
CONTENT_TYPES: Mapping[Channel, frozenset[str]] = {
    Channel.MESSENGER: frozenset({"text", "image", "audio", "video", "file"}),
}

#: v0.1 media content type → Send API attachment type (the same names).
ATTACHMENT_TYPES: Mapping[str, str] = {
    "image": "image",
    "audio": "audio",
    "video": "video",
    "file": "file",
}

#: v0.1 `messenger.category` → Send API `messaging_type`.
MESSAGING_TYPES: Mapping[str, str] = {
    "response": "RESPONSE",
    "update": "UPDATE",
    "message_tag": "MESSAGE_TAG",
}

#: Messages v0.1 sends `response` when the item has no category; so do we.
DEFAULT_CATEGORY = "response"

#: Page ids are numeric. The id goes into the URL path, so nothing else may: "me/feed" would
#: post somewhere else with the Page's token.
PAGE_ID = re.compile(r"[0-9]{1,30}")


class UnsupportedContent(ValueError):
    """The item cannot be sent as it is (validation should have refused it)."""


def page_id(spec: StepSpec) -> str:
    """The sending Page: the item's `from.id`."""
    page = str(spec.sender.get("id") or "")
    if not PAGE_ID.fullmatch(page):
        raise UnsupportedContent("messenger from.id must be a numeric Page id")
    return page


def recipient_key(spec: StepSpec) -> str | None:
    """`<page id>:<PSID>`, the pair Messenger's webhooks name a person by; None without both."""
    page, psid = spec.sender.get("id"), spec.to.get("id")
    return f"{page}:{psid}" if page and psid else None


def message_body(spec: StepSpec) -> dict[str, Any]:
    """The JSON body of `POST /{version}/{page-id}/messages` for `spec`."""
    content = spec.message.get("content") or {}
    kind = str(content.get("type"))
    if kind == "text":
        message: dict[str, Any] = {"text": str(content.get("text") or "")}
    elif kind in ATTACHMENT_TYPES:
        media = content.get(kind) or {}
        payload = {
            "url": str(media.get("url") or ""),
            # We never send by attachment_id, so there is nothing to gain from Meta keeping it.
            "is_reusable": False,
        }
        message = {"attachment": {"type": ATTACHMENT_TYPES[kind], "payload": payload}}
    else:
        raise UnsupportedContent(f"messenger cannot carry content type {kind}")
    body: dict[str, Any] = {"recipient": {"id": str(spec.to.get("id") or "")}}
    body.update(_messaging_type(spec.message.get("messenger") or {}))
    body["message"] = message
    return body


def _messaging_type(options: Mapping[str, Any]) -> dict[str, str]:
    category = str(options.get("category") or DEFAULT_CATEGORY)
    fields = {"messaging_type": MESSAGING_TYPES.get(category, MESSAGING_TYPES[DEFAULT_CATEGORY])}
    if fields["messaging_type"] == "MESSAGE_TAG":
        # Meta's tags are upper-case enums (ACCOUNT_UPDATE...); v0.1 examples write them lower.
        fields["tag"] = str(options.get("tag") or "").upper()
    return fields
