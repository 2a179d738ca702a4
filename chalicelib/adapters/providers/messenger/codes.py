"""Messenger tables: which webhook event is which status, which send errors are worth retrying.

Plain tables, so a code Meta adds later is one line here and the tests can walk them. Sources:
channels.md §2.1, §2.2 and §8, and Meta's Messenger "Common Error Codes" page.
"""
from __future__ import annotations

from collections.abc import Mapping

from chalicelib.domain.model import MessageStatus

#: `entry[].messaging[]` event key → our status. Both are watermarks ("everything before this
#: time"); a `delivery` may also list the `mids` it covers. Messenger has no failure event: a
#: message that is never delivered fails over when its expiry passes. `message` events are user
#: messages or echoes of our own sends (not statuses); every other key (postback, reaction,
#: optin, referral, message_edit, handover...) is counted as ignored, never guessed at.
EVENT_STATUSES: Mapping[str, MessageStatus] = {
    "delivery": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
}

#: Rate limits and Meta's own hiccups: retry on Messenger (with the engine's backoff), whatever
#: the subcode says. Checked first, because some rate limits carry a 2018xxx subcode too
#: (4/2018022 "too many send requests to phone numbers", 9/2018352, 4/2018354).
TRANSIENT_CODES: frozenset[int] = frozenset(
    {
        4,  # application request limit reached
        9,  # user is performing too many actions
        17,  # user request limit reached
        32,  # page request limit reached
        613,  # calls to this API have exceeded the rate limit
        1200,  # "Temporary send message failure. Please try again later."
    }
)

#: Refusals no retry fixes: fail over now. Listed rather than implied so the tests pin the
#: decision for each code channels.md names; a code in neither table is judged by HTTP status.
PERMANENT_CODES: frozenset[int] = frozenset(
    {
        # "An unexpected error", which Meta also answers when the person blocked the Page;
        # channels.md §8 counts it as terminal. Meta's `is_transient: true` still wins.
        2,
        10,  # permission: outside the 24-hour window without a tag (2018065, 2018278)
        100,  # invalid parameter: no matching user (2018001), attachment too big (2018109)
        190,  # invalid or expired page access token
        368,  # temporarily blocked for policy violations
        551,  # "This person isn't available right now": the user turned messages off
    }
)

#: 200-299: permission errors (pages_messaging not granted, user not a tester, not reachable).
PERMISSION_CODES = range(200, 300)

#: Subcodes of the Send API's own refusals (no such user, window closed, tag not allowed...).
SEND_API_SUBCODES = range(2018000, 2019000)

#: Subcodes that name a permanent cause under a code that is otherwise ambiguous.
PERMANENT_SUBCODES: frozenset[int] = frozenset(
    {
        99,  # code 1: "unknown error", caused by missing permissions or app review
        1545041,  # "This person isn't available right now" (under 551 or 200)
    }
)


def is_permanent_send_error(
    code: int | None, subcode: int | None, http_status: int, is_transient: bool = False
) -> bool:
    """Whether a refused send should fail over now (True) or be retried on Messenger (False).

    In order: rate limits and temporary failures retry; Meta's own `is_transient` flag retries;
    a Send API subcode or a permanent code fails over; otherwise the HTTP status decides (429
    and 5xx are retried, any other refusal is final).
    """
    if code in TRANSIENT_CODES or is_transient:
        return False
    if subcode is not None and (subcode in SEND_API_SUBCODES or subcode in PERMANENT_SUBCODES):
        return True
    if code is not None and (code in PERMANENT_CODES or code in PERMISSION_CODES):
        return True
    return not (http_status == 429 or http_status >= 500)
