"""One send through the Cloud API: the HTTP call, and what its answer means for failover.

A 200 carries the message id (`wamid.…`) that every status webhook names, and the person's
`wa_id`, which can differ from the number we sent to (Brazilian and Mexican numbers). Anything
else becomes a `ProviderError` classified by `codes`; nothing here logs message text or tokens.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.providers import http
from chalicelib.adapters.providers.whatsapp import codes
from chalicelib.adapters.providers.whatsapp.settings import WhatsAppSettings
from chalicelib.service.ports import ProviderError

logger = logging.getLogger(__name__)

GRAPH_URL = "https://graph.facebook.com"
#: Longest reason kept from Meta's error text (it ends up in callbacks, not in logs).
MAX_REASON = 300


@dataclass(frozen=True)
class Sent:
    message_id: str
    #: The person's WhatsApp id as Meta resolved it; statuses and replies name them by it.
    wa_id: str | None = None


def messages_url(settings: WhatsAppSettings) -> str:
    return f"{GRAPH_URL}/{settings.api_version}/{settings.phone_number_id}/messages"


def post_message(
    session: Any, timeout: Any, settings: WhatsAppSettings, body: dict[str, Any]
) -> Sent:
    """POST one message; its ids, or ProviderError (permanent or not) saying why not."""
    if not (settings.access_token and settings.phone_number_id):
        # Retrying cannot conjure credentials: fail over to the next channel now.
        raise ProviderError(
            "whatsapp access_token or phone_number_id is not configured",
            permanent=True,
            code="not_configured",
        )
    headers = {
        "Authorization": f"Bearer {settings.access_token}",
        "Content-Type": "application/json",
    }
    response = http.post(
        session, "whatsapp", messages_url(settings), headers=headers, json=body, timeout=timeout
    )
    if 200 <= response.status_code < 300:
        return _accepted(response)
    raise _refused(response)


def _accepted(response: Any) -> Sent:
    data = _json(response)
    messages = data.get("messages") if isinstance(data, dict) else None
    first = messages[0] if isinstance(messages, list) and messages else None
    message_id = first.get("id") if isinstance(first, dict) else None
    if not isinstance(message_id, str) or not message_id:
        # Not retried: the message may well have been sent, and we could not track a second one
        # any better than this one.
        raise ProviderError(
            "whatsapp accepted the message but returned no message id",
            permanent=True,
            code="no_message_id",
        )
    # Missing means `accepted`; `held_for_quality_assessment` and `paused` (marketing sends) are
    # still tracked: their outcome arrives as a status webhook.
    message_status = first.get("message_status") if isinstance(first, dict) else None
    if message_status not in (None, "accepted"):
        logger.info(
            "whatsapp message not yet accepted",
            extra={"provider_message_id": message_id, "message_status": str(message_status)},
        )
    return Sent(message_id, _wa_id(data))


def _wa_id(data: dict[str, Any]) -> str | None:
    contacts = data.get("contacts")
    first = contacts[0] if isinstance(contacts, list) and contacts else None
    wa_id = first.get("wa_id") if isinstance(first, dict) else None
    return wa_id if isinstance(wa_id, str) and wa_id else None


def _refused(response: Any) -> ProviderError:
    data = _json(response)
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    permanent = codes.is_permanent_send_error(
        code, response.status_code, is_transient=error.get("is_transient") is True
    )
    logger.warning(
        "whatsapp send refused",
        extra={
            "http_status": response.status_code,
            "code": code,
            "error_subcode": error.get("error_subcode"),
            "fbtrace_id": error.get("fbtrace_id"),
            "permanent": permanent,
        },
    )
    return ProviderError(
        _reason(error, response.status_code),
        permanent=permanent,
        code=str(code) if code is not None else f"http_{response.status_code}",
    )


def _reason(error: dict[str, Any], http_status: int) -> str:
    # Meta advises building on `details` (its titles, inside `message`, are being deprecated).
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    for text in (details, error.get("message")):
        if isinstance(text, str) and text.strip():
            return text.strip()[:MAX_REASON]
    return f"whatsapp answered HTTP {http_status}"


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:  # an HTML error page from a proxy, or an empty body
        return None
