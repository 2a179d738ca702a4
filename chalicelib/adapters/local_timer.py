"""The Timer port for the local stack: one daemon thread that fires failover checks when due.

Pending checks sit in a heap ordered by due time. The thread sleeps on a condition variable until
the earliest one is due (no polling interval), and `schedule`/`cancel`/`stop` wake it so it can
re-evaluate. When a check is due it calls `fire({"dispatch_uuid": ..., "step_index": ...})`, the
same event the AWS timers pass to the `failover_check` Lambda.

`fire` runs on the timer thread, outside the lock, so it may schedule or cancel checks itself;
while it runs, later checks wait, so it should be quick. Checks pending at shutdown are lost,
which the sweeper covers for. For the local stack only: a single process, nothing persisted.
"""
from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone

logger = logging.getLogger(__name__)

_Key = tuple[str, int]
#: Longest single wait; `threading` refuses timeouts above TIMEOUT_MAX.
_MAX_WAIT_SECONDS = 3600.0


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class LocalTimer:
    def __init__(
        self,
        fire: Callable[[dict], object],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._fire = fire
        self._clock = clock or _utc_now
        self._cond = threading.Condition()
        #: (at, seq, dispatch_uuid, step_index); seq keeps equal times in scheduling order and
        #: tells a live entry from a stale one left behind by a reschedule or cancel.
        self._heap: list[tuple[datetime, int, str, int]] = []
        self._live: dict[_Key, tuple[datetime, int]] = {}
        self._seq = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- Timer port --------------------------------------------------------------------------

    def schedule(
        self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False
    ) -> None:
        """Fire a check of (dispatch, step) at `at`, replacing any pending one for the pair.

        Backstops are kept like any other check: here they cost nothing.
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("timer due times must be timezone-aware")
        with self._cond:
            self._seq += 1
            self._live[(dispatch_uuid, step_index)] = (at, self._seq)
            heapq.heappush(self._heap, (at, self._seq, dispatch_uuid, step_index))
            self._compact_locked()
            self._cond.notify()

    def cancel(
        self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False
    ) -> None:
        """Drop the pending check of (dispatch, step) if it is the one at `at`.

        A check scheduled since for the same pair replaced that one and stays; the dropped
        entry goes stale in the heap.
        """
        with self._cond:
            live = self._live.get((dispatch_uuid, step_index))
            if live is not None and live[0] == at:
                del self._live[(dispatch_uuid, step_index)]
                self._compact_locked()
                self._cond.notify()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the firing thread; checks scheduled before this are kept. Idempotent."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="local-timer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread and wait for it (and any check it is firing) to finish."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pending(self) -> int:
        """How many checks are waiting to fire."""
        with self._cond:
            return len(self._live)

    # --- the firing thread -------------------------------------------------------------------

    def _run(self) -> None:
        while (due := self._next_due()) is not None:
            dispatch_uuid, step_index = due
            try:
                self._fire({"dispatch_uuid": dispatch_uuid, "step_index": step_index})
            except Exception:
                # The loop must outlive a failing check; the sweeper will re-drive the dispatch.
                logger.exception(
                    "local timer check failed",
                    extra={"dispatch_uuid": dispatch_uuid, "step_index": step_index},
                )

    def _next_due(self) -> _Key | None:
        """Block until a check is due and take it off the heap; None once stopping."""
        with self._cond:
            while not self._stopping:
                self._drop_stale_head_locked()
                if not self._heap:
                    self._cond.wait()
                    continue
                at, _, dispatch_uuid, step_index = self._heap[0]
                delay = (at - self._clock()).total_seconds()
                if delay > 0:
                    self._cond.wait(min(delay, _MAX_WAIT_SECONDS))
                    continue
                heapq.heappop(self._heap)
                del self._live[(dispatch_uuid, step_index)]
                return dispatch_uuid, step_index
            return None

    def _drop_stale_head_locked(self) -> None:
        while self._heap:
            at, seq, dispatch_uuid, step_index = self._heap[0]
            if self._live.get((dispatch_uuid, step_index)) == (at, seq):
                return
            heapq.heappop(self._heap)

    def _compact_locked(self) -> None:
        """Rebuild the heap when stale entries dominate, so heavy rescheduling stays bounded."""
        if len(self._heap) <= 2 * len(self._live) + 64:
            return
        self._heap = [(at, seq, d, s) for (d, s), (at, seq) in self._live.items()]
        heapq.heapify(self._heap)
