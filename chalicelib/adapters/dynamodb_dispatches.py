"""DynamoDB implementation of the DispatchRepository port.

One item per dispatch (`DSP#<uuid>` / `DSP`, layout in `dispatch_codec`) guarded by an optimistic
`version`, and one message index item per provider message id (`MSG#<provider>#<id>` / `MSG`)
so a status webhook can find its dispatch with a strongly consistent GetItem.

A save that records a send writes the dispatch and its message index items in one
TransactWriteItems: one round trip instead of one per item, and no index item ever points at a
send its dispatch does not record. When the dispatch's version moved on, the transaction is
cancelled and the index items are then written on their own (plain puts, the rare path): the
message was sent, so a webhook for it must find its step whoever won the race. Transactional
writes cost twice the write units of plain ones; at a few items per send that is a fraction of a
cent per thousand dispatches, against two round trips saved on every send.

A ref that names its recipient also points `RCPT#<provider>#<recipient>` at the message, unless a
later send already did (a condition on `sent_at`): webhooks that name a person rather than a
message (Messenger's watermarks, a user's reply) find the latest message sent to them there. A
transaction cancelled only by that condition (a later send won) is retried without it.

Calls: `get`, `find_message` and `find_recipient` one GetItem; `add` one PutItem; `save` one
PutItem, or with message refs one TransactWriteItems (plus, only on a lost race, one PutItem per
index item); `overdue` and `unrelayed` one
Query per minute; `prune_outbox` one UpdateItem, two or three when a save came in since the
caller's read (none when given no seqs). Every item carries `expires_at` (creation + retention,
epoch seconds) for TTL.

Every add and save also writes `write_id`, a fresh id per call. botocore retries a write whose
answer was lost (a read timeout, a dropped connection), and the retry meets that very write: its
condition fails on the write's own result. The failed condition returns the item as it stands
(`ReturnValuesOnConditionCheckFailure`), and a `write_id` that is this call's own means the write
did land: the call succeeds, instead of reporting a clash that never happened (which dropped a
save's effects, or answered a stored dispatch's client with an error). A transaction needs none
of this: botocore sends one `ClientRequestToken` for all its attempts, which DynamoDB honours.

A live dispatch item also carries `due_minute`, the minute of its `due_at`, which puts it in the
sparse `due` index (see `dynamodb_table`). `overdue` reads that index one minute at a time: one
Query (more only when a minute holds over 1 MB of index entries) per minute it covers, never a
Scan, so a sweep costs the same however many dispatches the table holds.

A dispatch with callbacks in its outbox also carries `relay_minute` (`outbox#` and the minute its
oldest entry was decided) and `relay_at` (that time), which put it in the sparse `relay` index;
`unrelayed` reads it the same way. `prune_outbox` drops the entries delivery took in without a
new version (it is not a state change). When nobody saved since the caller's read, it removes
them and fixes the index keys in one conditional UpdateItem. When somebody did, that save may
have added entries: it then removes only the named map keys, and corrects the index keys to the
oldest entry left (or removes them with an emptied outbox) under that save's version.
"""
from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import dispatch_codec
from chalicelib.adapters.aws_errors import (
    CONDITION_FAILED,
    TRANSACTION_CONDITION_FAILED,
    error_code,
    error_message,
)
from chalicelib.adapters.dynamodb_table import (
    DUE_AT_ATTRIBUTE,
    DUE_BACKSTOP_ATTRIBUTE,
    DUE_INDEX,
    DUE_MINUTE_ATTRIBUTE,
    RELAY_AT_ATTRIBUTE,
    RELAY_INDEX,
    RELAY_MINUTE_ATTRIBUTE,
    TTL_ATTRIBUTE,
    key,
)
from chalicelib.domain.errors import ConcurrentUpdate, DispatchExists, DispatchTooLarge
from chalicelib.domain.model import Dispatch
from chalicelib.domain.transitions import pending_check
from chalicelib.service.ports import MessageRef, OverdueCheck

MESSAGE_PREFIX = "MSG#"
MESSAGE_SK = "MSG"
RECIPIENT_PREFIX = "RCPT#"
RECIPIENT_SK = "RCPT"
#: Which add or save wrote the dispatch item (see the module's docstring).
WRITE_ID_ATTRIBUTE = "write_id"
#: `relay` index bucket prefix of a dispatch whose outbox holds callbacks not taken in yet.
OUTBOX_BUCKET = "outbox#"
#: What each write of a save's transaction is, to read its cancellation reason.
_REF, _RECIPIENT, _DISPATCH = "ref", "recipient", "dispatch"

_VERSION_MATCHES = {
    "ConditionExpression": "#v = :expected",
    "ExpressionAttributeNames": {"#v": "version"},
}
#: A retried save of the same ref must succeed; a ref owned by another dispatch must not move.
_REF_FREE_OR_OURS = "attribute_not_exists(pk) OR dispatch_uuid = :d"
#: One minute of the `due` index, cut to [since, cutoff]; `current` is a reserved word.
_DUE_IN_MINUTE = {
    "IndexName": DUE_INDEX,
    "KeyConditionExpression": "#m = :m AND #d BETWEEN :since AND :cutoff",
    "ProjectionExpression": "pk, #c, #b",
    "ExpressionAttributeNames": {
        "#m": DUE_MINUTE_ATTRIBUTE,
        "#d": DUE_AT_ATTRIBUTE,
        "#c": "current",
        "#b": DUE_BACKSTOP_ATTRIBUTE,
    },
}
#: One minute of the `relay` index (any bucket prefix), cut to [since, cutoff].
RELAY_IN_MINUTE = {
    "IndexName": RELAY_INDEX,
    "KeyConditionExpression": "#m = :m AND #d BETWEEN :since AND :cutoff",
    "ProjectionExpression": "pk",
    "ExpressionAttributeNames": {"#m": RELAY_MINUTE_ATTRIBUTE, "#d": RELAY_AT_ATTRIBUTE},
}
#: Removing these takes a dispatch out of the `relay` index along with its whole outbox.
_REMOVE_OUTBOX = f"REMOVE outbox, {RELAY_MINUTE_ATTRIBUTE}, {RELAY_AT_ATTRIBUTE}"


def message_key(provider: str, provider_message_id: str) -> dict[str, dict[str, str]]:
    return key(f"{MESSAGE_PREFIX}{provider}#{provider_message_id}", MESSAGE_SK)


def recipient_key(provider: str, recipient: str) -> dict[str, dict[str, str]]:
    return key(f"{RECIPIENT_PREFIX}{provider}#{recipient}", RECIPIENT_SK)


class DynamoDispatchRepository:
    """Dispatches and the message index in the single table."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        retention_days: int = 90,
        *,
        query_page_size: int | None = None,
    ) -> None:
        self._client = client
        self._table = table_name
        self._retention = timedelta(days=retention_days)
        #: Items per Query page; None leaves it to DynamoDB (1 MB). Tests set it to page early.
        self._page_size = query_page_size

    def get(self, dispatch_uuid: str) -> Dispatch | None:
        """Strongly consistent read. One GetItem."""
        item = self._consistent_get(dispatch_codec.dispatch_key(dispatch_uuid))
        return None if item is None else dispatch_codec.decode(item)

    def add(self, dispatch: Dispatch) -> Dispatch:
        """Store a never-saved dispatch and return it at version 1. One PutItem.

        Raises `DispatchExists` when the id is taken, `ValueError` when the dispatch is not at
        version 0 or its item is too large for DynamoDB.
        """
        if dispatch.version != 0:
            raise ValueError(f"add() takes version 0, not version {dispatch.version}")
        stored = dataclasses.replace(dispatch, version=1)
        put = {
            "TableName": self._table,
            "Item": self._dispatch_item(stored),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        self._write(put, on_condition=lambda: DispatchExists(dispatch.dispatch_uuid), own=True)
        return stored

    def save(self, dispatch: Dispatch, message_refs: Sequence[MessageRef] = ()) -> Dispatch:
        """Replace the stored dispatch if its version is still `dispatch.version`.

        Returns the dispatch at version + 1. With message refs, the dispatch and their index items
        are written in one transaction; if the version moved on, the index items are still
        written (the message was sent) before `ConcurrentUpdate` is raised. Raises
        `ConcurrentUpdate` when the stored version moved on (or the dispatch is absent),
        `ValueError` when a ref belongs to another dispatch (nothing is written) or the item is
        too large.
        """
        stored = dataclasses.replace(dispatch, version=dispatch.version + 1)
        refs = _unique_refs(dispatch.dispatch_uuid, message_refs)
        put = {
            "TableName": self._table,
            "Item": self._dispatch_item(stored),
            **_VERSION_MATCHES,
            "ExpressionAttributeValues": {":expected": {"N": str(dispatch.version)}},
        }
        if refs:
            self._save_with_refs(stored, put, refs)
        else:
            self._write(put, on_condition=_version_moved, own=True)
        return stored

    def _save_with_refs(self, stored: Dispatch, put: dict[str, Any], refs: list[MessageRef]) -> None:
        """One transaction: every index item, then the dispatch."""
        writes: list[tuple[str, dict[str, Any]]] = []
        for ref in refs:
            writes.append((_REF, self._ref_put(stored, ref)))
            if ref.recipient is not None and ref.sent_at is not None:
                writes.append((_RECIPIENT, self._recipient_put(stored, ref)))
        writes.append((_DISPATCH, put))
        while True:
            try:
                self._client.transact_write_items(TransactItems=[{"Put": w} for _, w in writes])
                return
            except ClientError as exc:
                if _too_large_item(exc):
                    raise _too_large() from exc
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = _cancellation_codes(exc, len(writes))
            causes = {(kind, code) for (kind, _), code in zip(writes, reasons, strict=True) if code}
            if (_REF, TRANSACTION_CONDITION_FAILED) in causes:
                raise _ref_taken()
            if any(code == "ValidationException" for _, code in causes):
                raise _too_large()
            if causes == {(_RECIPIENT, TRANSACTION_CONDITION_FAILED)}:
                # A later send to the same person is recorded: it stays the latest.
                writes = [w for w, code in zip(writes, reasons, strict=True) if not code]
                continue
            # The dispatch moved on (or a concurrent write held an item): the refs still go in.
            for kind, write in writes:
                if kind == _REF:
                    self._write(write, on_condition=_ref_taken)
                elif kind == _RECIPIENT:
                    self._put_unless_later(write)
            raise _version_moved()

    def _write(self, put: dict[str, Any], on_condition: Callable[[], Exception], own: bool = False) -> None:
        """One conditional PutItem; a failed condition raises what `on_condition` builds.

        `own`: a dispatch item (it has a `write_id`); a condition failed on this very write, by
        a retry after its answer was lost, is the success it is."""
        if own:
            put = {**put, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        try:
            self._client.put_item(**put)
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                if own and _written_by(exc, put["Item"][WRITE_ID_ATTRIBUTE]):
                    return
                raise on_condition() from exc
            if _too_large_item(exc):
                raise _too_large() from exc
            raise

    def find_message(self, provider: str, provider_message_id: str) -> MessageRef | None:
        """Strongly consistent lookup of a message index item. One GetItem."""
        item = self._consistent_get(message_key(provider, provider_message_id))
        if item is None:
            return None
        return MessageRef(
            provider=provider,
            provider_message_id=provider_message_id,
            dispatch_uuid=item["dispatch_uuid"]["S"],
            step_index=int(item["step_index"]["N"]),
        )

    def overdue(self, cutoff: datetime, since: datetime) -> list[OverdueCheck]:
        """The pending check of every live dispatch due in [since, cutoff], oldest first.

        One Query per minute from `since` to `cutoff`, each followed to its last page. The index
        is eventually consistent: an entry may lag its dispatch by a moment, which is harmless to
        a caller that re-reads the dispatch before acting (as `DispatchService.check` does).
        """
        found: dict[OverdueCheck, None] = {}  # ordered, and an entry seen twice counts once
        query = {"TableName": self._table, **_DUE_IN_MINUTE}
        for item in query_by_minute(self._client, query, since, cutoff, page_size=self._page_size):
            dispatch_uuid = item["pk"]["S"].removeprefix(dispatch_codec.DISPATCH_PREFIX)
            backstop = item.get(DUE_BACKSTOP_ATTRIBUTE, {}).get("BOOL", False)
            found[OverdueCheck(dispatch_uuid, int(item["current"]["N"]), backstop)] = None
        return list(found)

    def unrelayed(self, cutoff: datetime, since: datetime) -> list[str]:
        """Dispatches whose oldest outbox entry was decided in [since, cutoff], oldest first.

        One Query of the `relay` index per minute, each followed to its last page; eventually
        consistent, like `overdue`: the drain a caller sets off re-reads the dispatch.
        """
        query = {"TableName": self._table, **RELAY_IN_MINUTE}
        items = query_by_minute(
            self._client, query, since, cutoff, prefix=OUTBOX_BUCKET, page_size=self._page_size
        )
        found = {item["pk"]["S"].removeprefix(dispatch_codec.DISPATCH_PREFIX): None for item in items}
        return list(found)

    def prune_outbox(self, dispatch: Dispatch, seqs: Collection[int]) -> None:
        """Drop the outbox entries numbered `seqs`; the version stays as it is.

        One UpdateItem conditioned on `dispatch.version`. If a save came in since, it may have
        added entries, so only the named keys are removed (one more UpdateItem) and the `relay`
        index keys are then put right for what is left (a third, only when they changed).
        """
        dropped = set(seqs)
        if not dropped:
            return
        drop = sorted(dropped)
        remaining = [entry for entry in dispatch.outbox if entry.seq not in dropped]
        if remaining:
            # Keys by name, and the index moves on to the oldest entry left.
            names = _seq_names(drop)
            update = {
                "UpdateExpression": f"{_remove_entries(names)} SET #rm = :rm, #ra = :ra",
                "ExpressionAttributeNames": {**names, **_RELAY_NAMES, **_VERSION_NAME},
                "ExpressionAttributeValues": {
                    **_relay_values(min(e.decided_at for e in remaining)),
                    ":expected": {"N": str(dispatch.version)},
                },
            }
        else:
            update = {
                "UpdateExpression": _REMOVE_OUTBOX,
                "ExpressionAttributeNames": _VERSION_NAME,
                "ExpressionAttributeValues": {":expected": {"N": str(dispatch.version)}},
            }
        key_of = dispatch_codec.dispatch_key(dispatch.dispatch_uuid)
        try:
            self._client.update_item(
                TableName=self._table, Key=key_of, ConditionExpression="#v = :expected", **update
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            self._prune_after_a_save(key_of, drop)

    def _prune_after_a_save(self, key_of: dict[str, Any], drop: list[int]) -> None:
        """Remove just the named entries from whatever outbox a later save left, then put the
        `relay` index keys right for the entries that remain."""
        names = _seq_names(drop)
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=key_of,
                UpdateExpression=_remove_entries(names),
                # Removing a key of an absent map is a ValidationException, not a no-op.
                ConditionExpression="attribute_exists(outbox)",
                ExpressionAttributeNames=names,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            return  # no outbox (or no dispatch) any more: nothing to drop, no index keys
        self._reindex_outbox(key_of, response["Attributes"])

    def _reindex_outbox(self, key_of: dict[str, Any], item: Mapping[str, Any]) -> None:
        """Point the `relay` keys at the oldest entry left, or drop them with an empty outbox.

        Conditioned on the version just read back: a save after it wrote keys of its own."""
        entries = item.get("outbox", {}).get("M", {})
        oldest = min((e["M"]["decided_at"]["S"] for e in entries.values()), default=None)
        indexed = item.get(RELAY_AT_ATTRIBUTE, {}).get("S")
        if entries and oldest == indexed:
            return
        update: dict[str, Any] = {
            "ExpressionAttributeNames": dict(_VERSION_NAME),
            "ExpressionAttributeValues": {":expected": item["version"]},
        }
        if oldest is None:
            update["UpdateExpression"] = _REMOVE_OUTBOX
        else:
            update["UpdateExpression"] = "SET #rm = :rm, #ra = :ra"
            update["ExpressionAttributeNames"].update(_RELAY_NAMES)
            update["ExpressionAttributeValues"].update(_relay_values(dispatch_codec.parse_time(oldest)))
        try:
            self._client.update_item(
                TableName=self._table, Key=key_of, ConditionExpression="#v = :expected", **update
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise

    def find_recipient(self, provider: str, recipient: str) -> MessageRef | None:
        """The latest message sent to `recipient` through `provider`. One consistent GetItem."""
        item = self._consistent_get(recipient_key(provider, recipient))
        if item is None:
            return None
        return MessageRef(
            provider=provider,
            provider_message_id=item["provider_message_id"]["S"],
            dispatch_uuid=item["dispatch_uuid"]["S"],
            step_index=int(item["step_index"]["N"]),
            recipient=recipient,
            sent_at=dispatch_codec.parse_time(item["sent_at"]["S"]),
        )

    def _recipient_put(self, dispatch: Dispatch, ref: MessageRef) -> dict[str, Any]:
        """Point the recipient's item at this message unless a later send already did."""
        assert ref.recipient is not None and ref.sent_at is not None
        sent_at = {"S": dispatch_codec.format_time(ref.sent_at)}
        return {
            "TableName": self._table,
            "Item": {
                **recipient_key(ref.provider, ref.recipient),
                "provider_message_id": {"S": ref.provider_message_id},
                "dispatch_uuid": {"S": ref.dispatch_uuid},
                "step_index": {"N": str(ref.step_index)},
                "sent_at": sent_at,
                TTL_ATTRIBUTE: self._expires_at(dispatch),
            },
            # ISO times in one format sort as strings.
            "ConditionExpression": "attribute_not_exists(pk) OR sent_at <= :s",
            "ExpressionAttributeValues": {":s": sent_at},
        }

    def _put_unless_later(self, put: dict[str, Any]) -> None:
        try:
            self._client.put_item(**put)
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise  # lost to a later send: that one is the latest, as it should be

    def _consistent_get(self, item_key: dict[str, dict[str, str]]) -> dict[str, Any] | None:
        """One strongly consistent GetItem: the item, or None."""
        response = self._client.get_item(TableName=self._table, Key=item_key, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _expires_at(self, dispatch: Dispatch) -> dict[str, str]:
        return {"N": str(int((dispatch.created_at + self._retention).timestamp()))}

    def _dispatch_item(self, dispatch: Dispatch) -> dict[str, Any]:
        item = {
            **dispatch_codec.encode(dispatch),
            TTL_ATTRIBUTE: self._expires_at(dispatch),
            WRITE_ID_ATTRIBUTE: {"S": uuid.uuid4().hex},
        }
        # Cut from the stored string itself, so the bucket and the sort key can never disagree.
        # A final dispatch has no due_at, so it gets no due_minute and leaves the index.
        if DUE_AT_ATTRIBUTE in item:
            item[DUE_MINUTE_ATTRIBUTE] = {"S": due_minute(item[DUE_AT_ATTRIBUTE]["S"])}
            check = pending_check(dispatch)
            item[DUE_BACKSTOP_ATTRIBUTE] = {"BOOL": check is not None and check.backstop}
        # An outbox puts the dispatch in the `relay` index at its oldest entry; none, out of it.
        if dispatch.outbox:
            item.update(relay_keys(OUTBOX_BUCKET, min(e.decided_at for e in dispatch.outbox)))
        return item

    def _ref_put(self, dispatch: Dispatch, ref: MessageRef) -> dict[str, Any]:
        item = {
            **message_key(ref.provider, ref.provider_message_id),
            "provider": {"S": ref.provider},
            "provider_message_id": {"S": ref.provider_message_id},
            "dispatch_uuid": {"S": ref.dispatch_uuid},
            "step_index": {"N": str(ref.step_index)},
            TTL_ATTRIBUTE: self._expires_at(dispatch),
        }
        return {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": _REF_FREE_OR_OURS,
            "ExpressionAttributeValues": {":d": {"S": ref.dispatch_uuid}},
        }


def due_minute(stored_time: str) -> str:
    """The `due` index bucket of a stored time: `YYYY-MM-DDTHH:MM`, UTC."""
    return stored_time[:16]


def relay_keys(bucket: str, at: datetime) -> dict[str, dict[str, str]]:
    """The `relay` index keys of an item due at `at` in the bucket named by its prefix."""
    stored = dispatch_codec.format_time(at)
    return {
        RELAY_MINUTE_ATTRIBUTE: {"S": bucket + due_minute(stored)},
        RELAY_AT_ATTRIBUTE: {"S": stored},
    }


def query_by_minute(
    client: Any,
    query: Mapping[str, Any],
    since: datetime,
    cutoff: datetime,
    *,
    prefix: str = "",
    page_size: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every item of a minute-bucketed index in [since, cutoff], oldest minute first.

    `query` names the table, the index and a key condition on `:m` (the bucket, `prefix` and
    the minute) and `:since`/`:cutoff`. One Query per minute, each followed to its last page.
    """
    if since > cutoff:
        return  # DynamoDB refuses a BETWEEN whose bounds are reversed
    bounds = {
        ":since": {"S": dispatch_codec.format_time(since)},
        ":cutoff": {"S": dispatch_codec.format_time(cutoff)},
    }
    for minute in _minutes(since, cutoff):
        request: dict[str, Any] = {
            **query,
            "ExpressionAttributeValues": {":m": {"S": prefix + minute}, **bounds},
        }
        if page_size is not None:
            request["Limit"] = page_size
        while True:
            page = client.query(**request)
            yield from page.get("Items", ())
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _minutes(since: datetime, cutoff: datetime) -> list[str]:
    """Every minute bucket from the one holding `since` to the one holding `cutoff`."""
    minute = since.astimezone(timezone.utc).replace(second=0, microsecond=0)
    buckets = []
    while minute <= cutoff:
        buckets.append(due_minute(dispatch_codec.format_time(minute)))
        minute += timedelta(minutes=1)
    return buckets


_VERSION_NAME = {"#v": "version"}
_RELAY_NAMES = {"#rm": RELAY_MINUTE_ATTRIBUTE, "#ra": RELAY_AT_ATTRIBUTE}


def _relay_values(oldest: datetime) -> dict[str, dict[str, str]]:
    keys = relay_keys(OUTBOX_BUCKET, oldest)
    return {":rm": keys[RELAY_MINUTE_ATTRIBUTE], ":ra": keys[RELAY_AT_ATTRIBUTE]}


def _seq_names(seqs: Sequence[int]) -> dict[str, str]:
    """Placeholders for outbox keys: `outbox.12` would not parse, `outbox.#s0` does."""
    return {f"#s{i}": str(seq) for i, seq in enumerate(seqs)}


def _remove_entries(names: Mapping[str, str]) -> str:
    return "REMOVE " + ", ".join(f"outbox.{placeholder}" for placeholder in names)


def _unique_refs(dispatch_uuid: str, refs: Sequence[MessageRef]) -> list[MessageRef]:
    """Refs without repeats, all checked before anything is written."""
    unique: dict[tuple[str, str], MessageRef] = {}
    for ref in refs:
        if ref.dispatch_uuid != dispatch_uuid:
            raise ValueError("a message ref must belong to the dispatch being saved")
        seen = unique.setdefault((ref.provider, ref.provider_message_id), ref)
        if seen != ref:
            raise ValueError("one provider message id given twice with different steps")
    return list(unique.values())


def _cancellation_codes(exc: ClientError, count: int) -> list[str | None]:
    """The code that cancelled each of a transaction's `count` writes; None where it did not."""
    reasons = exc.response.get("CancellationReasons") or []
    codes = [reason.get("Code") for reason in reasons][:count]
    codes += [None] * (count - len(codes))
    return [None if code in (None, "None") else code for code in codes]


def _too_large_item(exc: ClientError) -> bool:
    # A transaction may report it either way: at the top, or as one write's cancellation reason.
    return error_code(exc) == "ValidationException" and "item size" in error_message(exc).lower()


def _written_by(exc: ClientError, write_id: dict[str, str]) -> bool:
    """The failed condition's item (ALL_OLD) is the one this call wrote."""
    item = exc.response.get("Item") or {}
    return bool(item.get(WRITE_ID_ATTRIBUTE) == write_id)


def _version_moved() -> ConcurrentUpdate:
    return ConcurrentUpdate("the dispatch was changed since it was read")


def _ref_taken() -> ValueError:
    return ValueError("a provider message id is already recorded for another dispatch")


def _too_large() -> DispatchTooLarge:
    return DispatchTooLarge("the dispatch item exceeds DynamoDB's 400 KB item size limit")
