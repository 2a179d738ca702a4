"""Callback delivery: what the `deliver_callbacks` function runs for each message of the callback
queue. Each message names a dispatch; its callbacks are drained (`CallbackRelay.drain`).

It never raises. A drain that fails part way leaves its dispatch's lease to expire with the
dispatch still listed for the sweeper (an outbox entry not taken in, or a retry time), which
nudges it again within a few minutes: sooner than the queue would redeliver the message, and
without sending the batch's other messages round again.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)


class DrainMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    dispatch_uuid: str = Field(min_length=1, max_length=64)


def run_deliveries(bodies: Iterable[str]) -> dict[str, Any]:
    from chalicelib.bootstrap import get_services

    relay = get_services().callbacks
    counts = {"drained": 0, "delivered": 0, "retrying": 0, "dead": 0, "busy": 0, "failed": 0, "invalid": 0}
    for body in bodies:
        try:
            message = DrainMessage.model_validate(json.loads(body))
        except (ValueError, ValidationError):
            # Nothing we queue looks like this; retrying it could never succeed.
            counts["invalid"] += 1
            logger.error("invalid callback queue message")
            continue
        try:
            result = relay.drain(message.dispatch_uuid)
        except Exception:
            counts["failed"] += 1
            logger.exception("callback drain failed", extra={"dispatch_uuid": message.dispatch_uuid})
            continue
        counts["drained"] += 1
        counts["delivered"] += result.delivered
        counts["retrying"] += result.failed
        counts["dead"] += result.dead
        counts["busy"] += int(result.busy)
    return counts
