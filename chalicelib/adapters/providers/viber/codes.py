"""Viber's codes and event names, and what each means for failover: explicit tables, no guessing.

Send `status` codes come from the Viber REST Bot API error table (0–20, identical in the official
SDK enums); `docs/providers/viber.md` lists the same mapping for operators.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from chalicelib.domain.model import MessageStatus


class SendCode(NamedTuple):
    name: str
    #: True: no retry of this message on Viber can succeed, fail over now.
    permanent: bool


#: `status` in the send_message response (HTTP 200 even when it is not 0).
SEND_CODES: Mapping[int, SendCode] = {
    1: SendCode("invalidUrl", True),
    2: SendCode("invalidAuthToken", True),  # the channel is down: retrying cannot help
    3: SendCode("badData", True),
    4: SendCode("missingData", True),
    5: SendCode("receiverNotRegistered", True),  # not a Viber user (any more)
    6: SendCode("receiverNotSubscribed", True),  # never subscribed, or unsubscribed
    7: SendCode("publicAccountBlocked", True),
    8: SendCode("publicAccountNotFound", True),
    9: SendCode("publicAccountSuspended", True),
    10: SendCode("webhookNotSet", True),  # Viber refuses sends until the webhook is set
    11: SendCode("receiverNoSuitableDevice", True),
    # 100 messages per user per hour without a reply: waiting (the retry backoff) is the cure.
    12: SendCode("tooManyRequests", False),
    13: SendCode("apiVersionNotSupported", True),
    14: SendCode("incompatibleWithVersion", True),
    15: SendCode("publicAccountNotAuthorized", True),
    16: SendCode("inchatReplyMessageNotAllowed", True),
    17: SendCode("publicAccountIsNotInline", True),
    18: SendCode("noPublicChat", True),
    19: SendCode("cannotSendBroadcast", True),
    20: SendCode("broadcastNotAllowed", True),
}

#: Any other non-zero `status` is Viber's "general error": not known to be final, so it is
#: retried (a bounded number of times) before the step fails over.
GENERAL_ERROR = SendCode("generalError", False)

#: HTTP statuses worth retrying; any other non-200 answer is final.
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})

#: Callback `event` → our status. `seen` is Viber's read receipt; `failed` means Viber could not
#: deliver the message to the user's devices.
STATUS_EVENTS: Mapping[str, MessageStatus] = {
    "delivered": MessageStatus.DELIVERED,
    "seen": MessageStatus.READ,
    "failed": MessageStatus.UNDELIVERABLE,
}

#: The callback `event` of a user's message to the bot.
INBOUND_EVENT = "message"

#: Events Viber sends that carry no message status and no user message: answered 200 (Viber
#: needs a 200 to the `webhook` check of set_webhook) and counted as ignored.
NON_MESSAGE_EVENTS = frozenset({"webhook", "subscribed", "unsubscribed", "conversation_started"})


def error_code(status: int) -> str:
    """Our `error.code` for a Viber send status: namespaced so it never reads as a Vonage code."""
    return f"viber_{status}"


#: `error.code` on a `failed` callback, which carries only a free-text `desc`.
FAILED_EVENT_CODE = "viber_failed"
