"""The local callback sink's store: callbacks received on the local stage, kept in memory.

Lets a developer point an application's status URL at the service itself and read back what
was delivered, and whether its signature checked out. The sink exists only in the local stack,
a single process, so memory is the right place: nothing to emulate, nothing to clean up. It
keeps the most recent callbacks up to a bound so a long-running stack cannot grow without limit.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from chalicelib.service.callback_payloads import iso

UNKNOWN_DISPATCH = "unknown"
#: Dispatches whose callbacks are kept; the ones heard from least recently go first.
MAX_DISPATCHES = 10_000
#: Callbacks kept per dispatch; the oldest go first.
MAX_PER_DISPATCH = 1_000


class InMemoryCallbackSink:
    def __init__(
        self, max_dispatches: int = MAX_DISPATCHES, max_per_dispatch: int = MAX_PER_DISPATCH
    ) -> None:
        self._max = max_dispatches
        self._max_per_dispatch = max_per_dispatch
        self._lock = threading.Lock()
        self._by_dispatch: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        #: application_id -> (until, HTTP status): a receiver outage staged by the developer.
        self._outages: dict[str, tuple[datetime, int]] = {}

    def store(
        self,
        dispatch_uuid: str | None,
        received_at: datetime,
        signature_valid: bool,
        body: Any,
    ) -> None:
        """Keep one received callback; `body` is the parsed JSON, or the raw text if unparseable."""
        record = {"received_at": iso(received_at), "signature_valid": signature_valid, "body": body}
        key = dispatch_uuid or UNKNOWN_DISPATCH
        with self._lock:
            records = self._by_dispatch.setdefault(key, [])
            records.append(record)
            del records[: -self._max_per_dispatch]
            self._by_dispatch.move_to_end(key)
            while len(self._by_dispatch) > self._max:
                self._by_dispatch.popitem(last=False)

    def stage_outage(self, application_id: str, until: datetime, status: int) -> None:
        """Answer `status` instead of accepting the application's callbacks until `until`."""
        with self._lock:
            self._outages[application_id] = (until, status)

    def outage_status(self, application_id: str, now: datetime) -> int | None:
        """The status to answer now if an outage is staged for the application, else None."""
        with self._lock:
            outage = self._outages.get(application_id)
            if outage is None or outage[0] <= now:
                self._outages.pop(application_id, None)
                return None
            return outage[1]

    def list(self, dispatch_uuid: str | None) -> list[dict[str, Any]]:
        """Everything received for the dispatch, in arrival order."""
        with self._lock:
            return list(self._by_dispatch.get(dispatch_uuid or UNKNOWN_DISPATCH, ()))
