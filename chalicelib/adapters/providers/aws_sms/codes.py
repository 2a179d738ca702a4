"""The aws_sms tables: EUM SMS event types to our statuses, and send errors to failover actions.

Sources: the `EventType` enum of the pinpoint-sms-voice-v2 model and the AWS event-type and
event-format pages (channels.md §4a, §8).
"""
from __future__ import annotations

from collections.abc import Mapping

from chalicelib.domain.model import MessageStatus

#: Event type -> status. Failures split by what they say about the message:
#: - `undeliverable`: the number cannot be reached (invalid, switched off, network down);
#: - `rejected`: the message was refused for what it is or where it came from (content,
#:   spam filter, block list, our own protect configuration, TTL ran out before hand-off; the
#:   contract files TTL expiry under `rejected` too).
#: Either way the next message goes out at once. TEXT_UNKNOWN ("may be temporary or permanent",
#: also what AWS reports when no carrier answer came in 72 h) is deliberately absent: it is
#: counted as ignored, and the step's own deadline decides. So are VOICE_*, MEDIA_* and RCS_*
#: events, which a shared configuration set may also send.
EVENT_STATUSES: Mapping[str, MessageStatus] = {
    "TEXT_QUEUED": MessageStatus.SUBMITTED,
    "TEXT_PENDING": MessageStatus.SUBMITTED,
    "TEXT_SENT": MessageStatus.SUBMITTED,
    # "Depending on the destination country the TEXT_DELIVERED and TEXT_SUCCESSFUL events may
    # be used interchangeably" (AWS), so both are success.
    "TEXT_SUCCESSFUL": MessageStatus.DELIVERED,
    "TEXT_DELIVERED": MessageStatus.DELIVERED,
    "TEXT_INVALID": MessageStatus.UNDELIVERABLE,
    "TEXT_UNREACHABLE": MessageStatus.UNDELIVERABLE,
    "TEXT_CARRIER_UNREACHABLE": MessageStatus.UNDELIVERABLE,
    "TEXT_INVALID_MESSAGE": MessageStatus.REJECTED,
    "TEXT_BLOCKED": MessageStatus.REJECTED,
    "TEXT_CARRIER_BLOCKED": MessageStatus.REJECTED,
    "TEXT_SPAM": MessageStatus.REJECTED,
    "TEXT_TTL_EXPIRED": MessageStatus.REJECTED,
    "TEXT_PROTECT_BLOCKED": MessageStatus.REJECTED,
}

# --- send errors (botocore ClientError codes) -------------------------------------------------

#: Codes that retrying the same message cannot fix: fail over now.
#: ServiceQuotaExceededException is here although a quota is not forever: its reasons
#: (MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT, DAILY_..._LIMIT) last hours or weeks, far beyond our
#: retry backoff, so waiting would only delay the next channel.
PERMANENT_ERRORS: frozenset[str] = frozenset(
    {
        "ValidationException",  # bad number, country blocked, sender id not registered, ...
        "ConflictException",  # recipient opted out, destination not verified (sandbox), ...
        "ResourceNotFoundException",  # configuration set or origination identity missing
        "AccessDeniedException",  # IAM, or the account is disabled / lacks reputation
        "ServiceQuotaExceededException",
    }
)

#: Codes worth retrying the same channel for (the service's retry policy, then failover).
TRANSIENT_ERRORS: frozenset[str] = frozenset({"ThrottlingException", "InternalServerException"})

#: What a failed send says about itself, by code: AWS's own error message can quote the
#: destination number, so it is never stored or logged.
ERROR_REASONS: Mapping[str, str] = {
    "ValidationException": "AWS End User Messaging refused the request as invalid",
    "ConflictException": "AWS End User Messaging cannot send to this recipient now",
    "ResourceNotFoundException": "the configuration set or origination identity does not exist",
    "AccessDeniedException": "not allowed to send through AWS End User Messaging",
    "ServiceQuotaExceededException": "an AWS End User Messaging quota or spend limit is reached",
    "ThrottlingException": "AWS End User Messaging throttled the send",
    "InternalServerException": "AWS End User Messaging failed internally",
}


def is_transient_status(http_status: int | None) -> bool:
    """For a code in neither table: 429 and 5xx are worth a retry, anything else is not."""
    return http_status is not None and (http_status == 429 or http_status >= 500)
