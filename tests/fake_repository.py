"""In-memory DispatchRepository with the same contract as the DynamoDB one.

The contract test in `tests/integration/test_dispatch_repository.py` runs against both, so
service tests can rely on this fake behaving like the real table: version checks, DispatchExists,
ConcurrentUpdate, message refs written before the dispatch (they stay if its save fails), and an
outbox pruned without a new version.

Service tests can also stage a lost race: `fail_next_save_with_conflict()` makes the next `save`
behave as if another writer saved first, and `concurrent_update()` is that other writer.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from chalicelib.domain.errors import ConcurrentUpdate, DispatchExists
from chalicelib.domain.model import Dispatch
from chalicelib.domain.transitions import pending_check
from chalicelib.service.ports import MessageRef, OverdueCheck

Mutator = Callable[[Dispatch], Dispatch]


class InMemoryDispatchRepository:
    def __init__(self) -> None:
        # Dispatch and MessageRef are frozen, so storing the objects themselves is safe.
        self._dispatches: dict[str, Dispatch] = {}
        self._refs: dict[tuple[str, str], MessageRef] = {}
        self._recipients: dict[tuple[str, str], MessageRef] = {}
        self._pending_conflict: list[Mutator | None] = []
        self.saves = 0  #: successful saves, for tests that count writes

    def get(self, dispatch_uuid: str) -> Dispatch | None:
        return self._dispatches.get(dispatch_uuid)

    def add(self, dispatch: Dispatch) -> Dispatch:
        if dispatch.version != 0:
            raise ValueError(f"add() takes version 0, not version {dispatch.version}")
        if dispatch.dispatch_uuid in self._dispatches:
            raise DispatchExists(dispatch.dispatch_uuid)
        stored = dataclasses.replace(dispatch, version=1)
        self._dispatches[dispatch.dispatch_uuid] = stored
        return stored

    def save(self, dispatch: Dispatch, message_refs: Sequence[MessageRef] = ()) -> Dispatch:
        # As in DynamoDB: the refs are checked, then written, then the dispatch's version.
        checked = self._checked_refs(dispatch.dispatch_uuid, message_refs)
        self._refs.update(checked)
        for ref in checked.values():
            self._remember_recipient(ref)
        if self._pending_conflict:
            self.concurrent_update(dispatch.dispatch_uuid, self._pending_conflict.pop())
        current = self._dispatches.get(dispatch.dispatch_uuid)
        if current is None or current.version != dispatch.version:
            raise ConcurrentUpdate("the dispatch was changed since it was read")
        stored = dataclasses.replace(dispatch, version=dispatch.version + 1)
        self._dispatches[dispatch.dispatch_uuid] = stored
        self.saves += 1
        return stored

    def find_message(self, provider: str, provider_message_id: str) -> MessageRef | None:
        return self._refs.get((provider, provider_message_id))

    def find_recipient(self, provider: str, recipient: str) -> MessageRef | None:
        return self._recipients.get((provider, recipient))

    def _remember_recipient(self, ref: MessageRef) -> None:
        if ref.recipient is None or ref.sent_at is None:
            return
        key = (ref.provider, ref.recipient)
        known = self._recipients.get(key)
        if known is None or known.sent_at is None or known.sent_at <= ref.sent_at:
            self._recipients[key] = ref

    def overdue(self, cutoff: datetime, since: datetime) -> list[OverdueCheck]:
        due = sorted(
            (d.due_at, d.dispatch_uuid, d)
            for d in self._dispatches.values()
            if d.due_at is not None and since <= d.due_at <= cutoff
        )
        checks = []
        for _, dispatch_uuid, dispatch in due:
            check = pending_check(dispatch)
            backstop = check is not None and check.backstop
            checks.append(OverdueCheck(dispatch_uuid, dispatch.current, backstop))
        return checks

    def prune_outbox(self, dispatch: Dispatch, seqs: Collection[int]) -> None:
        current = self._dispatches.get(dispatch.dispatch_uuid)
        if current is None:
            return
        # Prunes what is stored now, not `dispatch`: entries a later save added are kept, as
        # the table's per-key REMOVE keeps them; the version stays as it is.
        drop = set(seqs)
        kept = tuple(entry for entry in current.outbox if entry.seq not in drop)
        self._dispatches[dispatch.dispatch_uuid] = dataclasses.replace(current, outbox=kept)

    def unrelayed(self, cutoff: datetime, since: datetime) -> list[str]:
        oldest = sorted(
            (min(e.decided_at for e in d.outbox), d.dispatch_uuid)
            for d in self._dispatches.values()
            if d.outbox
        )
        return [uuid for decided_at, uuid in oldest if since <= decided_at <= cutoff]

    # --- test controls ---------------------------------------------------------------------

    def fail_next_save_with_conflict(self, mutator: Mutator | None = None) -> None:
        """Make the next `save` lose a race: the stored dispatch is first changed by `mutator`
        (if given) and moved to the next version, so that save raises ConcurrentUpdate."""
        self._pending_conflict.append(mutator)

    def concurrent_update(self, dispatch_uuid: str, mutator: Mutator | None = None) -> Dispatch:
        """Another writer saves the dispatch now: apply `mutator` and bump the stored version."""
        current = self._dispatches[dispatch_uuid]
        changed = mutator(current) if mutator else current
        stored = dataclasses.replace(changed, version=current.version + 1)
        self._dispatches[dispatch_uuid] = stored
        return stored

    def _checked_refs(
        self, dispatch_uuid: str, refs: Sequence[MessageRef]
    ) -> dict[tuple[str, str], MessageRef]:
        """Validate every ref before anything is written, as the transaction would."""
        checked: dict[tuple[str, str], MessageRef] = {}
        for ref in refs:
            ref_key = (ref.provider, ref.provider_message_id)
            if ref.dispatch_uuid != dispatch_uuid:
                raise ValueError("a message ref must belong to the dispatch being saved")
            if checked.setdefault(ref_key, ref) != ref:
                raise ValueError("one provider message id given twice with different steps")
            existing = self._refs.get(ref_key)
            if existing is not None and existing.dispatch_uuid != dispatch_uuid:
                raise ValueError("a provider message id is already recorded for another dispatch")
        return checked


class InMemorySweepMarks:
    """The SweepMarks port in memory; shares its contract tests with DynamoDB."""

    def __init__(self) -> None:
        self._swept_to: datetime | None = None

    def swept_to(self) -> datetime | None:
        return self._swept_to

    def mark_swept(self, cutoff: datetime) -> None:
        if self._swept_to is None or self._swept_to < cutoff:
            self._swept_to = cutoff
