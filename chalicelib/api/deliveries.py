"""Callback delivery: what the `deliver_callbacks` function runs for each message of the callback
queue. Each message names a dispatch; its callbacks are drained (`CallbackRelay.drain`).

Messages naming the same dispatch are drained once. The batch shares the function's time: each
drain gets a fair share of what is left (at most the relay's own budget), and when too little is
left to start one, the remaining dispatches are queued again rather than cut off by the timeout.

It never raises. A drain that fails part way leaves its dispatch's lease to expire with the
dispatch still listed for the sweeper (an outbox entry not taken in, or a retry time), which
nudges it again within a few minutes: sooner than the queue would redeliver the message, and
without sending the batch's other messages round again.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)


class DrainMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    dispatch_uuid: str = Field(min_length=1, max_length=64)


#: Time kept back from the function's timeout: one attempt's timeouts plus the writes after it.
RESERVE_SECONDS = 15.0
#: The first drain of a batch gets at least this long, however little time is left: every batch
#: makes progress, even under a timeout shorter than the reserve.
MIN_BUDGET_SECONDS = 5.0


def run_deliveries(
    bodies: Iterable[str], remaining_ms: Callable[[], int] | None = None
) -> dict[str, Any]:
    """Drain the dispatch each message names. `remaining_ms` is the Lambda context's
    `get_remaining_time_in_millis` (None when there is no deadline)."""
    from chalicelib.bootstrap import get_services

    services = get_services()
    relay = services.callback_relay
    counts = {
        "drained": 0, "delivered": 0, "retrying": 0, "dead": 0,
        "busy": 0, "failed": 0, "invalid": 0, "deferred": 0,
    }
    dispatches: dict[str, None] = {}
    for body in bodies:
        try:
            dispatches[DrainMessage.model_validate(json.loads(body)).dispatch_uuid] = None
        except (ValueError, ValidationError):
            # Nothing we queue looks like this; retrying it could never succeed.
            counts["invalid"] += 1
            logger.error("invalid callback queue message")
    pending = list(dispatches)
    for position, dispatch_uuid in enumerate(pending):
        budget = None
        if remaining_ms is not None:
            spare = remaining_ms() / 1000 - RESERVE_SECONDS
            if spare <= 0 and position > 0:
                for later in pending[position:]:
                    services.callback_queue.nudge(later)
                counts["deferred"] += len(pending) - position
                break
            budget = max(spare, 0.0) / (len(pending) - position)
            if position == 0:
                budget = max(budget, MIN_BUDGET_SECONDS)
        try:
            result = relay.drain(dispatch_uuid, budget_seconds=budget)
        except Exception:
            counts["failed"] += 1
            logger.exception("callback drain failed", extra={"dispatch_uuid": dispatch_uuid})
            continue
        counts["drained"] += 1
        counts["delivered"] += result.delivered
        counts["retrying"] += result.failed
        counts["dead"] += result.dead
        counts["busy"] += int(result.busy)
    return counts
