"""The safety sweeper: re-drives the checks a timer lost, so no dispatch is ever stranded.

A timer backend can drop a check (a failed StartExecution, a crash between save and schedule, a
local stack restarted) and the AWS backends deliberately leave backstop checks to this sweep.
Every live dispatch keeps `due_at`, the time of its pending check, so anything still due long
after that time has lost its check. The sweeper runs the very same `DispatchService.check` the
timer would have run; a check is idempotent, so a timer firing at the same moment is harmless.

Callbacks get the same safety net. A dispatch whose outbox still holds an entry long after it
was decided lost its nudge (or the process died between the save and the nudge); a dispatch
whose callback retry came due long ago lost its delayed queue message. Both are nudged again; a
drain is idempotent, so a nudge that was merely slow costs one drain that finds nothing to do.

The grace period keeps the sweeper out of the timers' way: a check only a little late (EventBridge
Scheduler's can be up to a minute) still belongs to its timer. The look-back bounds each sweep's
cost; a dispatch stranded for longer than that needs `dispatch_admin sweep --lookback-minutes`.

Most runs look back only as far as the last run that finished cleanly (`SweepMarks`), and at
least `recent_minutes` (an index that lags a little): one index Query per minute covered, instead
of one per minute of the whole look-back. A run that died part way (a Lambda timeout while
re-driven sends hang) or whose checks raised leaves the mark where it was, so the next run covers
its minutes again. Every `full_every_minutes` (on the minutes of the hour it divides) a run looks
back the whole look-back regardless. About 23 Queries a run instead of 183 for the three indexes,
plus one read and one write of the mark.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.service.dispatches import DispatchService
from chalicelib.service.ports import (
    CallbackQueue,
    CallbackStore,
    Clock,
    DispatchRepository,
    SweepMarks,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    #: Overdue (dispatch, step) pairs the index listed.
    found: int
    #: Checks that ran to the end. A check that found nothing left to do counts too: the index
    #: may lag a save that already moved the dispatch on.
    redriven: int
    #: Checks that raised; the next sweep tries them again while they stay overdue.
    failed: int
    #: Overdue checks that were not backstops: a timer should have run them, and lost them.
    lost: int = 0
    #: Dispatches whose callbacks were nudged again: a decided callback never taken in, or a
    #: retry whose queue message never came.
    callbacks_recovered: int = 0
    #: Index reads that raised (the overdue checks, the outboxes, the callback retries): the run
    #: goes on without that list, and the next run reads those minutes again.
    unread: int = 0


class Sweeper:
    def __init__(
        self,
        repository: DispatchRepository,
        dispatches: DispatchService,
        clock: Clock,
        grace_seconds: int,
        lookback_minutes: int,
        callback_store: CallbackStore | None = None,
        callback_queue: CallbackQueue | None = None,
        *,
        marks: SweepMarks | None = None,
        recent_minutes: int | None = None,
        full_every_minutes: int = 15,
    ) -> None:
        self._repo = repository
        self._callback_store = callback_store
        self._callback_queue = callback_queue
        self._dispatches = dispatches
        self._clock = clock
        self._grace = timedelta(seconds=grace_seconds)
        self._lookback_minutes = lookback_minutes
        #: Without marks, or with recent_minutes None, every run looks back the whole look-back.
        self._marks = marks
        self._recent_minutes = recent_minutes
        self._full_every = full_every_minutes

    def sweep(self, lookback_minutes: int | None = None) -> SweepResult:
        """Run the check of every step due more than the grace period ago, within the look-back
        (`lookback_minutes`, else this run's: the recent minutes, or the whole on a full run)."""
        now = self._clock.now()
        cutoff = now - self._grace
        lookback = self._lookback(now, cutoff) if lookback_minutes is None else lookback_minutes
        since = cutoff - timedelta(minutes=lookback)
        unread = 0
        try:
            overdue = self._repo.overdue(cutoff, since)
        except Exception:
            # One failed Query (throttled past botocore's retries, say) must not cost the rest
            # of the run: the callbacks below are recovered all the same.
            unread += 1
            overdue = []
            logger.exception("overdue checks not read", extra={"lookback_minutes": lookback})
        failed = 0
        for dispatch_uuid, step_index, _ in overdue:
            try:
                self._dispatches.run_check(dispatch_uuid, step_index)
            except Exception:
                # One broken dispatch must not strand the rest behind it; it stays overdue, so
                # the next sweep tries it again.
                failed += 1
                logger.exception(
                    "overdue check failed",
                    extra={"dispatch_uuid": dispatch_uuid, "step_index": step_index},
                )
        recovered, missed = self._recover_callbacks(cutoff, since)
        unread += missed
        if self._marks is not None and lookback_minutes is None and not failed and not unread:
            # Everything up to the cutoff was seen and handled: later runs may start from here.
            self._marks.mark_swept(cutoff)
        result = SweepResult(
            found=len(overdue),
            redriven=len(overdue) - failed,
            failed=failed,
            lost=sum(1 for check in overdue if not check.backstop),
            callbacks_recovered=recovered,
            unread=unread,
        )
        if overdue or recovered:
            # Silent when idle: it runs every minute, and a found step means a timer lost one.
            logger.info(
                "sweep re-drove overdue checks",
                extra={
                    "found": result.found,
                    "redriven": result.redriven,
                    "failed": result.failed,
                    "lost": result.lost,
                    "callbacks_recovered": recovered,
                    "lookback_minutes": lookback,
                },
            )
        return result

    def _lookback(self, now: datetime, cutoff: datetime) -> int:
        full = self._lookback_minutes
        if self._marks is None or self._recent_minutes is None:
            return full
        if (now.hour * 60 + now.minute) % self._full_every == 0:
            return full
        swept_to = self._marks.swept_to()
        if swept_to is None:
            return full  # no run has finished yet
        behind = math.ceil(max(0.0, (cutoff - swept_to).total_seconds()) / 60)
        return min(full, max(self._recent_minutes, behind + 1))

    def _recover_callbacks(self, cutoff: datetime, since: datetime) -> tuple[int, int]:
        """(dispatches nudged, lists that could not be read); each list on its own, so one
        failed read leaves the other's dispatches recovered."""
        if self._callback_store is None or self._callback_queue is None:
            return 0, 0
        stranded: dict[str, None] = {}
        missed = 0
        for source in (self._repo.unrelayed, self._callback_store.stalled):
            try:
                stranded.update(dict.fromkeys(source(cutoff, since)))
            except Exception:
                missed += 1
                logger.exception("stranded callbacks not read")
        for dispatch_uuid in stranded:
            self._callback_queue.nudge(dispatch_uuid)
        return len(stranded), missed
