"""In-memory CallbackStore with the same contract as the DynamoDB one.

The contract tests in `tests/integration/test_callback_store.py` run against both.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime

from chalicelib.domain.callbacks import CallbackRecord, DeliveryState
from chalicelib.service.ports import CallbackStream, InvalidCursor


class _Stream:
    def __init__(self) -> None:
        self.owner: str | None = None
        self.until: datetime | None = None
        self.replay_at: datetime | None = None
        self.replayed: datetime | None = None
        self.next_at: datetime | None = None


class InMemoryCallbackStore:
    def __init__(self) -> None:
        self._records: dict[tuple[str, int], CallbackRecord] = {}
        self._streams: dict[str, _Stream] = {}

    def claim(
        self, dispatch_uuid: str, owner: str, now: datetime, until: datetime
    ) -> CallbackStream | None:
        stream = self._streams.setdefault(dispatch_uuid, _Stream())
        if stream.until is not None and stream.until > now:
            return None
        stream.owner, stream.until = owner, until
        # As the port says: due when the lease runs out, in case this drain dies holding it.
        stream.next_at = until
        replay = stream.replay_at
        if replay is not None and stream.replayed is not None and replay <= stream.replayed:
            replay = None
        return CallbackStream(replay_at=replay)

    def release(
        self,
        dispatch_uuid: str,
        owner: str,
        *,
        next_at: datetime | None,
        replay_applied: datetime | None = None,
    ) -> None:
        stream = self._streams.get(dispatch_uuid)
        if stream is None or stream.owner != owner:
            return
        stream.owner = stream.until = None
        stream.next_at = next_at
        if replay_applied is not None:
            stream.replayed = replay_applied

    def records(self, dispatch_uuid: str) -> list[CallbackRecord]:
        return sorted(
            (r for (d, _), r in self._records.items() if d == dispatch_uuid), key=lambda r: r.seq
        )

    def put(self, record: CallbackRecord) -> None:
        if record.state is DeliveryState.DEAD and record.dead_at is None:
            raise ValueError("a dead callback record needs dead_at")
        self._records[(record.dispatch_uuid, record.seq)] = record

    def request_replay(self, dispatch_uuid: str, at: datetime) -> None:
        stream = self._streams.setdefault(dispatch_uuid, _Stream())
        stream.replay_at = at
        stream.next_at = at

    def dead(
        self, application_id: str, limit: int, cursor: str | None = None
    ) -> tuple[list[CallbackRecord], str | None]:
        dead = sorted(
            (
                r
                for r in self._records.values()
                if r.state is DeliveryState.DEAD and r.application_id == application_id
            ),
            key=lambda r: (r.dead_at, r.dispatch_uuid, r.seq),
            reverse=True,
        )
        start = 0
        if cursor is not None:
            try:
                position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
                start = int(position["offset"])
                valid = position["app"] == application_id and start >= 0
            except Exception:
                valid = False
            if not valid:
                raise InvalidCursor("not a cursor of this list")
        page = dead[start : start + limit]
        more = start + limit < len(dead)
        token = {"app": application_id, "offset": start + limit}
        next_cursor = base64.urlsafe_b64encode(json.dumps(token).encode()).decode() if more else None
        return page, next_cursor

    def stalled(self, cutoff: datetime, since: datetime) -> list[str]:
        due = sorted(
            (s.next_at, d)
            for d, s in self._streams.items()
            if s.next_at is not None and since <= s.next_at <= cutoff
        )
        return [d for _, d in due]
