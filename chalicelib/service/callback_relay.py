"""Delivery of a dispatch's callbacks: take them in from its outbox, post them in order, retry.

`drain(dispatch_uuid)` is what a queue message (or the sweeper, or a replay) sets off. It holds
the dispatch's lease while it works, so one drain at a time posts a dispatch's callbacks. Per
destination URL, callbacks go strictly in sequence order: one that must be retried holds back
the later ones until it is delivered or dead, so a receiver never gets seq 5 before seq 4. A
dead callback does not hold anything back.

Every attempt is recorded as soon as it is made. A drain that dies part way leaves its lease to
expire; the next drain starts from the records, so a callback may be posted twice (receivers
dedupe on the event id) but never skipped.
"""
from __future__ import annotations

import logging
import random as _random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain.application import Application
from chalicelib.domain.callbacks import (
    AttemptResult,
    CallbackRecord,
    DeliveryState,
    RetryPolicy,
)
from chalicelib.domain.model import Dispatch
from chalicelib.service.ports import (
    ApplicationLookup,
    CallbackQueue,
    CallbackStore,
    CallbackTransport,
    Clock,
    DispatchRepository,
)

logger = logging.getLogger(__name__)

#: How long a drain may hold a dispatch's lease; a drain that dies frees it after this.
LEASE_SECONDS = 120
#: A drain starts no new attempt after this long, so it ends well inside its lease.
BUDGET_SECONDS = 60
#: When another drain holds the lease, look again this much later.
BUSY_RETRY_SECONDS = 2
DEFAULT_RETRY_POLICY = RetryPolicy()


@dataclass(frozen=True)
class DrainResult:
    delivered: int = 0
    failed: int = 0  #: attempts that will be retried
    dead: int = 0
    #: When the dispatch's callbacks next need a drain; None when nothing is pending.
    next_at: datetime | None = None
    #: The lease was held by another drain: nothing was done, a retry is queued.
    busy: bool = False


class CallbackRelay:
    def __init__(
        self,
        repository: DispatchRepository,
        store: CallbackStore,
        transport: CallbackTransport,
        applications: ApplicationLookup,
        queue: CallbackQueue,
        clock: Clock,
        policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        random: Callable[[], float] = _random.random,
        new_owner: Callable[[], str] = lambda: uuid.uuid4().hex,
        lease_seconds: float = LEASE_SECONDS,
        budget_seconds: float = BUDGET_SECONDS,
    ) -> None:
        self._repo = repository
        self._store = store
        self._transport = transport
        self._apps = applications
        self._queue = queue
        self._clock = clock
        self._policy = policy
        self._random = random
        self._new_owner = new_owner
        self._lease = timedelta(seconds=lease_seconds)
        self._budget = timedelta(seconds=budget_seconds)

    def drain(self, dispatch_uuid: str, budget_seconds: float | None = None) -> DrainResult:
        """Post every callback of the dispatch that is due, in order; queue the next drain.

        No attempt starts once `budget_seconds` (at most the relay's own budget) have passed;
        what is left is queued for a drain at once."""
        now = self._clock.now()
        owner = self._new_owner()
        stream = self._store.claim(dispatch_uuid, owner, now, now + self._lease)
        if stream is None:
            retry_at = now + timedelta(seconds=BUSY_RETRY_SECONDS)
            self._queue.nudge(dispatch_uuid, retry_at)
            return DrainResult(next_at=retry_at, busy=True)
        # Read under the lease, so entries a drain that just let go took in are pruned. If
        # anything below raises, the lease is not given back: it runs out, and the claim's mark
        # (due at the lease's end) has the sweeper send a drain then. Releasing it here would
        # erase that mark and could strand callbacks already taken in.
        dispatch = self._repo.get(dispatch_uuid)
        result = DrainResult()
        if dispatch is None:
            logger.warning("callbacks of an unknown dispatch", extra={"dispatch_uuid": dispatch_uuid})
        else:
            budget = self._budget
            if budget_seconds is not None:
                budget = min(budget, timedelta(seconds=max(0.0, budget_seconds)))
            result = self._drain(dispatch, stream.replay_at, now, now + budget)
            if dispatch.outbox:
                self._repo.prune_outbox(dispatch, [entry.seq for entry in dispatch.outbox])
        self._store.release(
            dispatch_uuid, owner, next_at=result.next_at, replay_applied=stream.replay_at
        )
        if result.next_at is not None:
            self._queue.nudge(dispatch_uuid, result.next_at)
        return result

    def _drain(
        self, dispatch: Dispatch, replay_at: datetime | None, now: datetime, stop_at: datetime
    ) -> DrainResult:
        records = {r.seq: r for r in self._store.records(dispatch.dispatch_uuid)}
        unsaved: set[int] = set()
        if replay_at is not None:
            for seq, record in records.items():
                records[seq] = record.replayed(replay_at)
                unsaved.add(seq)
        for entry in dispatch.outbox:
            if entry.seq not in records:
                records[entry.seq] = CallbackRecord.from_outbox(
                    dispatch.dispatch_uuid, dispatch.application_id, entry
                )
                unsaved.add(entry.seq)
        application = self._apps.get(dispatch.application_id)
        held: dict[str, datetime] = {}  # destination -> when its held-back callbacks may go
        delivered = failed = dead = 0
        for seq in sorted(records):
            record = records[seq]
            if record.state is not DeliveryState.PENDING:
                continue
            target = record.kind.target
            if target in held:
                continue  # an earlier callback to the same URL must go first
            current = self._clock.now()
            if record.next_at is not None and record.next_at > current:
                held[target] = record.next_at
                continue
            if current >= stop_at:
                held[target] = current  # out of time: the next drain carries on at once
                continue
            record = record.after_attempt(
                self._attempt(application, record), self._clock.now(), self._policy, self._random
            )
            self._store.put(record)
            records[seq] = record
            unsaved.discard(seq)
            if record.state is DeliveryState.DELIVERED:
                delivered += 1
            elif record.state is DeliveryState.DEAD:
                dead += 1
                logger.warning("callback dead", extra={**record.ids, "reason": record.dead_reason})
            else:
                failed += 1
                held[target] = record.next_at or current
        for seq in sorted(unsaved):  # taken in (or replayed) but not attempted: keep them
            self._store.put(records[seq])
        next_at = min(held.values()) if held else None
        return DrainResult(delivered, failed, dead, next_at)

    def _attempt(self, application: Application | None, record: CallbackRecord) -> AttemptResult:
        if application is None:
            return AttemptResult(error="unknown_application")
        return self._transport.attempt(application, record)

