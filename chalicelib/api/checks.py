"""The failover check: what a timer invokes when a step's deadline, retry or report limit is due.

The `failover_check` Lambda and the local timer both call `run_check`, so the local stack runs
exactly the code that runs in AWS.
"""
from __future__ import annotations

import logging
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)


class CheckEvent(BaseModel):
    """The small event every timer backend passes; extra keys (timer metadata) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    dispatch_uuid: str = Field(min_length=1, max_length=64)
    step_index: int = Field(ge=0, le=99)
    #: When the check was due; the AWS timers pass it, the local timer does not. Naive times are
    #: refused: lateness against an unknown zone would be meaningless.
    due_at: AwareDatetime | None = None


def run_check(event: Any) -> dict[str, Any]:
    from chalicelib.bootstrap import get_services

    try:
        check = CheckEvent.model_validate(event)
    except ValidationError as exc:
        # A malformed event can never succeed: retrying it would only repeat the failure.
        logger.error("invalid check event: %s", exc.errors(include_input=False))
        return {"ok": False, "error": "invalid check event"}
    services = get_services()
    if check.due_at is not None:
        # How late timers really are (Scheduler's precision is 60 s), as a field a log query
        # can aggregate.
        lateness = services.clock.now() - check.due_at
        logger.info(
            "failover check running",
            extra={
                "dispatch_uuid": check.dispatch_uuid,
                "step_index": check.step_index,
                "lateness_ms": round(lateness.total_seconds() * 1000),
            },
        )
    services.dispatches.run_check(check.dispatch_uuid, check.step_index)
    return {"ok": True, "dispatch_uuid": check.dispatch_uuid, "step_index": check.step_index}
