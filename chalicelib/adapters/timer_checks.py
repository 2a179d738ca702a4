"""What the AWS timer backends share: when a check is due, what it is called, what it carries.

Both backends work in whole seconds. Step Functions' Wait truncates a timestamp's milliseconds and
EventBridge Scheduler's `at()` takes whole seconds, so a due time is rounded *up*: rounded down,
the check would come before the dispatch is due, change nothing, and leave the step stranded until
the sweeper found it.

The name is derived from (dispatch, step, due second) alone, so a retried StartExecution or
CreateSchedule meets the first one instead of creating a second check, and `cancel` can find the
check again from the same three values without storing anything.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

#: What both a Step Functions execution name (<= 80 chars) and a Scheduler schedule name
#: (<= 64 chars, `[0-9a-zA-Z-_.]`) accept.
_NAME_CHARS = re.compile(r"[0-9A-Za-z_-]+")
MAX_NAME_LENGTH = 64


def due_second(at: datetime) -> datetime:
    """`at` in UTC, rounded up to the whole second (an exact second stays as it is)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("timer due times must be timezone-aware")
    utc = at.astimezone(timezone.utc)
    whole = utc.replace(microsecond=0)
    return whole if whole == utc else whole + timedelta(seconds=1)


def check_name(dispatch_uuid: str, step_index: int, at: datetime) -> str:
    """The execution / schedule name of the check of (dispatch, step) at `at`."""
    if not _NAME_CHARS.fullmatch(dispatch_uuid):
        raise ValueError("dispatch_uuid must be letters, digits, '-' or '_' to name a timer check")
    if step_index < 0:
        raise ValueError("step_index must not be negative")
    name = f"{dispatch_uuid}-{step_index}-{int(due_second(at).timestamp())}"
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"dispatch_uuid is too long to name a timer check ({len(name)} > 64 chars)")
    return name


def check_input(dispatch_uuid: str, step_index: int, at: datetime) -> dict[str, Any]:
    """The event the check receives; `due_at` is in the RFC 3339 form `TimestampPath` accepts."""
    return {
        "dispatch_uuid": dispatch_uuid,
        "step_index": step_index,
        "due_at": f"{due_second(at):%Y-%m-%dT%H:%M:%SZ}",
    }
