"""A callback queue inside the process: a nudge for now drains at once, a later one waits.

For the `inline` delivery mode (tests through `chalice.test.Client`, and any single-process use).
Waiting nudges live in memory and go when `pump()` is called at or after their time; a process
that stops loses them, and the sweeper makes up for that as it does for a lost SQS message.
"""
from __future__ import annotations

import logging
from datetime import datetime

from chalicelib.service.ports import Clock

logger = logging.getLogger(__name__)


class InlineCallbackQueue:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._relay: object | None = None
        #: dispatch_uuid -> when its next drain is due
        self.pending: dict[str, datetime] = {}
        self._draining = False

    def bind(self, relay: object) -> None:
        """The relay whose `drain` this queue runs (built after the queue it nudges)."""
        self._relay = relay

    def nudge(self, dispatch_uuid: str, at: datetime | None = None) -> None:
        now = self._clock.now()
        due = at if at is not None and at > now else now
        if self._draining or due > now or self._relay is None:
            # A drain asking for another (a retry, a busy lease) runs after it, never inside it.
            known = self.pending.get(dispatch_uuid)
            self.pending[dispatch_uuid] = due if known is None else min(known, due)
            return
        self._drain(dispatch_uuid)

    def pump(self) -> int:
        """Run every waiting drain that is due now, oldest first; returns how many ran."""
        ran = 0
        while True:
            now = self._clock.now()
            due = sorted((at, uuid) for uuid, at in self.pending.items() if at <= now)
            if not due:
                return ran
            _, dispatch_uuid = due[0]
            del self.pending[dispatch_uuid]
            self._drain(dispatch_uuid)
            ran += 1

    def _drain(self, dispatch_uuid: str) -> None:
        self._draining = True
        try:
            self._relay.drain(dispatch_uuid)  # type: ignore[union-attr]
        except Exception:  # as a lost queue message: the sweeper finds the dispatch again
            logger.exception("callback drain failed", extra={"dispatch_uuid": dispatch_uuid})
        finally:
            self._draining = False
