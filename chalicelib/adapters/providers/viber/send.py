"""One Viber bot message: the send_message request built from a validated workflow item, and
the answer read into a message token or a classified `ProviderError`.

Viber answers HTTP 200 even when it refuses a message; the JSON `status` says which (codes.py).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.adapters.providers import http
from chalicelib.adapters.providers.viber.codes import (
    GENERAL_ERROR,
    SEND_CODES,
    TRANSIENT_HTTP,
    error_code,
)
from chalicelib.domain.model import Step
from chalicelib.service.ports import ProviderError

logger = logging.getLogger(__name__)

SEND_URL = "https://chatapi.viber.com/pa/send_message"
AUTH_HEADER = "X-Viber-Auth-Token"
#: Viber refuses a longer `sender.name`.
SENDER_NAME_LIMIT = 28

#: ProviderError codes of our own (Viber's own codes are `viber_<status>`).
USER_ID_REQUIRED = "viber_user_id_required"
NOT_CONFIGURED = "viber_not_configured"
NOT_CARRIED = "viber_content_not_carried"
BAD_RESPONSE = "viber_bad_response"


def recipient(step: Step) -> str | None:
    """The Viber user id the step is addressed to (`to.id`), or None.

    A bot can only message users who subscribed to it or wrote to it, and only by the id Viber
    gave them: it cannot address a phone number (that is Viber Business Messages, a partner
    product).
    """
    user_id = step.spec.to.get("id")
    return user_id if isinstance(user_id, str) and user_id else None


def _text(content: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "text", "text": content["text"]}


def _picture(content: Mapping[str, Any]) -> dict[str, Any]:
    image = content["image"]
    # `text` is required on a picture; Viber documents "" as the value for no description.
    return {"type": "picture", "text": image.get("caption") or "", "media": image["url"]}


#: v0.1 content type → the Viber message fields. Video and file are not here: Viber requires
#: their byte `size` (and a `file_name`), which a v0.1 message does not give; audio and template
#: have no Viber bot equivalent.
CONTENT: Mapping[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "text": _text,
    "image": _picture,
}


def build_message(step: Step, credentials: Mapping[str, str]) -> dict[str, Any]:
    """The send_message body for `step`; ProviderError(permanent) if Viber could never take it."""
    receiver = recipient(step)
    if receiver is None:
        raise ProviderError(
            "a Viber bot sends to a Viber user id (to.id), not to a phone number",
            permanent=True,
            code=USER_ID_REQUIRED,
        )
    content = step.spec.message.get("content", {})
    convert = CONTENT.get(content.get("type", ""))
    if convert is None:
        raise ProviderError(
            f"a Viber bot cannot carry {content.get('type')} content", permanent=True, code=NOT_CARRIED
        )
    return {
        "receiver": receiver,
        "sender": _sender(step, credentials),
        # Our id for the message: Viber returns it with the user's next reply.
        "tracking_data": step.message_uuid,
        **convert(content),
    }


def _sender(step: Step, credentials: Mapping[str, str]) -> dict[str, str]:
    # The bot's name by default; the item's `from.id` only when none is configured, since a bot
    # has no sender id of its own (the auth token names the bot).
    name = credentials.get("sender_name") or str(step.spec.sender.get("id", ""))
    sender = {"name": name[:SENDER_NAME_LIMIT]}
    if credentials.get("sender_avatar"):
        sender["avatar"] = credentials["sender_avatar"]
    return sender


def post_message(session: Any, timeout: Any, auth_token: str, body: Mapping[str, Any]) -> str:
    """POST one message; its message token, or ProviderError classified for failover."""
    response = http.post(
        session, "Viber", SEND_URL, json=dict(body), headers={AUTH_HEADER: auth_token}, timeout=timeout
    )
    return read_answer(response)


def read_answer(response: Any) -> str:
    """The message token of an accepted message; ProviderError for anything else."""
    status_code = response.status_code
    if status_code != 200:
        permanent = status_code not in TRANSIENT_HTTP and status_code < 500
        reason = f"Viber answered HTTP {status_code}"
        raise ProviderError(reason, permanent=permanent, code=f"viber_http_{status_code}")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        answer = {}
    status = answer.get("status")
    if not isinstance(status, int) or isinstance(status, bool):
        logger.warning("viber send answer has no status", extra={"provider": "viber"})
        raise ProviderError("Viber's answer has no status", permanent=False, code=BAD_RESPONSE)
    if status != 0:
        known = SEND_CODES.get(status, GENERAL_ERROR)
        message = answer.get("status_message")
        reason = f"{known.name}: {message}" if isinstance(message, str) and message else known.name
        raise ProviderError(reason[:200], permanent=known.permanent, code=error_code(status))
    token = answer.get("message_token")
    if isinstance(token, bool) or not isinstance(token, (int, str)) or str(token) == "":
        logger.warning("viber accepted a message without a token", extra={"provider": "viber"})
        raise ProviderError("Viber's answer has no message_token", permanent=False, code=BAD_RESPONSE)
    # A 64-bit integer in JSON: kept as a string so no JSON consumer rounds it.
    return str(token)
