"""What the callbacks API reads and asks for: a dispatch's callbacks, a replay, the dead ones.

Delivery itself belongs to the relay (`callback_relay`); this module only reads its records and
leaves requests for it. Every call first proves the dispatch is the caller's with
`DispatchService.get`, so another application's dispatch is `DispatchNotFound`, exactly as
reading the dispatch itself answers: nobody learns whether someone else's id exists.
"""
from __future__ import annotations

from chalicelib.domain.application import Application
from chalicelib.domain.callbacks import CallbackRecord
from chalicelib.domain.model import Dispatch
from chalicelib.service.dispatches import DispatchService
from chalicelib.service.ports import CallbackQueue, CallbackStore, Clock

#: Named before the class: inside it, `list` is the method the API asks for, not the builtin.
Records = list[CallbackRecord]


class CallbackHistory:
    def __init__(
        self,
        dispatches: DispatchService,
        store: CallbackStore,
        queue: CallbackQueue,
        clock: Clock,
    ) -> None:
        self._dispatches = dispatches
        self._store = store
        self._queue = queue
        self._clock = clock

    def list(self, application: Application, dispatch_uuid: str) -> Records:
        """Every callback of the caller's dispatch, by seq: the delivery records, and the
        callbacks decided but not taken in by delivery yet (pending, no attempts)."""
        return self._callbacks(self._dispatches.get(application, dispatch_uuid))

    def replay(self, application: Application, dispatch_uuid: str) -> int:
        """Have every callback of the caller's dispatch sent again; returns how many.

        The next drain resets each record to pending with a fresh retry window and posts it
        again with its own event id and body, in seq order, so a receiver that dedupes on the
        event id sees nothing twice. The count is taken before the nudge: an inline queue
        drains inside it."""
        dispatch = self._dispatches.get(application, dispatch_uuid)
        count = len(self._callbacks(dispatch))
        self._store.request_replay(dispatch.dispatch_uuid, self._clock.now())
        self._queue.nudge(dispatch.dispatch_uuid)
        return count

    def dead(
        self, application: Application, limit: int, cursor: str | None = None
    ) -> tuple[Records, str | None]:
        """The caller's dead callbacks, latest first, and the cursor of the next page (None on
        the last). Raises `InvalidCursor` for a cursor not issued to this application."""
        return self._store.dead(application.application_id, limit, cursor)

    def _callbacks(self, dispatch: Dispatch) -> Records:
        # The dispatch was read before the records: an entry a drain takes in between is then
        # in both (the record wins), never in neither, as reading the other way round allows.
        merged = {record.seq: record for record in self._store.records(dispatch.dispatch_uuid)}
        for entry in dispatch.outbox:
            if entry.seq not in merged:
                merged[entry.seq] = CallbackRecord.from_outbox(
                    dispatch.dispatch_uuid, dispatch.application_id, entry
                )
        return [merged[seq] for seq in sorted(merged)]
