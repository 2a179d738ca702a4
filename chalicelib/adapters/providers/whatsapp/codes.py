"""WhatsApp Cloud API tables: which status is which, and which error codes are worth retrying.

Kept as plain tables so a code Meta adds later is one line here, and so the tests can walk them.
Sources: channels.md §1.2 and §8 (Meta's error-code page, pywa's errors.py); codes marked
"not in channels.md" come from Meta's error-code page alone.
"""
from __future__ import annotations

from collections.abc import Mapping

from chalicelib.domain.model import MessageStatus

#: `statuses[].status` → our status. `failed` is refined by `failed_status` from its error code.
#: Anything else (Meta documents a "played" trigger for voice messages, and adds values without
#: notice) is not in this table: it is counted as ignored, never guessed at.
STATUSES: Mapping[str, MessageStatus] = {
    "sent": MessageStatus.SUBMITTED,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "failed": MessageStatus.REJECTED,
}

#: A `failed` status with one of these codes means the *person* could not be reached (not on
#: WhatsApp, marketing limits or opt-out on their side, an experiment group): `undeliverable`.
#: Every other failure is Meta refusing *our* message (window closed, template, quality, rate
#: limits, account or parameter problems): `rejected`. Either way the message is dead and the
#: dispatch fails over at once; the split only tells the application why.
UNDELIVERABLE_CODES: frozenset[int] = frozenset(
    {
        131026,  # message undeliverable: not a WhatsApp user, old client, ToS not accepted
        131049,  # not delivered "to maintain healthy ecosystem engagement" (per-user marketing cap)
        131050,  # the user stopped marketing messages from this business
        130472,  # the user's number is part of an experiment
    }
)

#: Send errors that may pass on a later attempt on the same channel: rate limits, Meta's own
#: outages. `retry same channel` in channels.md §8.
TRANSIENT_CODES: frozenset[int] = frozenset(
    {
        1,  # API unknown
        2,  # API service
        4,  # application request limit
        80007,  # WABA rate limit
        130429,  # throughput rate limit
        131000,  # something went wrong
        131016,  # service unavailable
        131056,  # pair rate limit: too many messages to this user in a short time
        131057,  # account in maintenance mode (not in channels.md)
        133004,  # server temporarily unavailable (not in channels.md)
    }
)

#: Send errors no retry can fix: fail over now. Listed rather than implied so the tests pin the
#: decision for each code channels.md names; a code in neither table is judged by HTTP status.
PERMANENT_CODES: frozenset[int] = frozenset(
    {
        10,  # permission denied
        100,  # invalid parameter
        190,  # access token expired or invalid
        368,  # temporarily blocked for policy violations
        130472,
        131008,  # required parameter missing
        131009,  # parameter value invalid
        131021,  # recipient is the sender
        131026,
        131030,  # recipient not in the test number's allowed list
        131031,  # business account locked
        131042,  # payment issue
        131047,  # 24-hour window closed: only a template may be sent
        131048,  # spam rate limit: the number's quality is too low
        131049,
        131050,
        131051,  # unsupported message type (not in channels.md)
    }
)

#: 132000–132999: template errors (missing, paused, disabled, wrong parameter count or format).
TEMPLATE_CODES = range(132000, 133000)


def failed_status(code: int | None) -> MessageStatus:
    """What a `failed` status with this error code means for the application."""
    return MessageStatus.UNDELIVERABLE if code in UNDELIVERABLE_CODES else MessageStatus.REJECTED


def is_permanent_send_error(code: int | None, http_status: int, is_transient: bool = False) -> bool:
    """Whether a refused send should fail over now (True) or be retried on this channel (False).

    The Graph error code decides when we know it; then Meta's own `is_transient` flag; then the
    HTTP status (429 and 5xx are retried, any other refusal is final).
    """
    if code is not None:
        if code in TRANSIENT_CODES:
            return False
        if code in PERMANENT_CODES or code in TEMPLATE_CODES:
            return True
    if is_transient:
        return False
    return not (http_status == 429 or http_status >= 500)
