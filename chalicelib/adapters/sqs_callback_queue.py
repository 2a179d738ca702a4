"""The callback queue on Amazon SQS: a nudge is a message `{"dispatch_uuid": ...}`.

The `deliver_callbacks` function consumes the queue and drains the dispatch it names. A message
carries no callback, only which dispatch to look at, so a duplicate or stale one costs a drain
that finds nothing due. SQS delays a message by at most 15 minutes; a drain woken before its
callback is due simply asks again for the rest of the wait.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

#: SQS's limit on DelaySeconds.
MAX_DELAY_SECONDS = 900


def message_body(dispatch_uuid: str) -> str:
    return json.dumps({"dispatch_uuid": dispatch_uuid})


class SqsCallbackQueue:
    def __init__(self, client: Any, queue_url: str, clock: Callable[[], datetime]) -> None:
        self._client = client
        self._url = queue_url
        self._clock = clock

    def nudge(self, dispatch_uuid: str, at: datetime | None = None) -> None:
        delay = 0
        if at is not None:
            seconds = math.ceil((at - self._clock()).total_seconds())
            delay = min(MAX_DELAY_SECONDS, max(0, seconds))
        try:
            self._client.send_message(
                QueueUrl=self._url, MessageBody=message_body(dispatch_uuid), DelaySeconds=delay
            )
        except Exception:
            # The outbox entry or the retry time is saved: the sweeper nudges it again.
            logger.exception("callback nudge not queued", extra={"dispatch_uuid": dispatch_uuid})
