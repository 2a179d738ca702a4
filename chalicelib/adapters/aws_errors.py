"""Reading what an AWS call's ClientError says, in one place for every adapter."""
from __future__ import annotations

from botocore.exceptions import ClientError

#: A write's condition failed: the code of a single write's error...
CONDITION_FAILED = "ConditionalCheckFailedException"
#: ...and of one write's reason in a cancelled transaction (no "Exception" suffix there).
TRANSACTION_CONDITION_FAILED = "ConditionalCheckFailed"


def error_code(error: ClientError) -> str:
    """The service's error code, e.g. "ConditionalCheckFailedException"; "" if absent."""
    return str(error.response.get("Error", {}).get("Code", ""))


def error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))
