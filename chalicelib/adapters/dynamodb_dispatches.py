"""DynamoDB implementation of the DispatchRepository port.

One item per dispatch (`DSP#<uuid>` / `DSP`, layout in `dispatch_codec`) guarded by an optimistic
`version`, and one message index item per provider message id (`MSG#<provider>#<id>` / `MSG`)
so a status webhook can find its dispatch with a strongly consistent GetItem.

A message index item is written just before the dispatch that records its send, not in one
transaction with it: a status webhook can then never arrive before its index item, and an index
item left behind by a save that lost a race only points at a step, whose later statuses are
recorded as they come. Plain writes also cost half the write units of transactional ones (and
moto's transactions copy the whole table, which would slow the local stack down as it fills).

A ref that names its recipient also points `RCPT#<provider>#<recipient>` at the message, unless a
later send already did (a conditional put on `sent_at`): webhooks that name a person rather than a
message (Messenger's watermarks, a user's reply) find the latest message sent to them there.

Calls: `get`, `find_message` and `find_recipient` one GetItem; `add` one PutItem; `save` one
PutItem plus one per message ref (two when it names a recipient); `overdue` one Query per minute.
Every item carries `expires_at` (creation + retention, epoch seconds) for TTL.

A live dispatch item also carries `due_minute`, the minute of its `due_at`, which puts it in the
sparse `due` index (see `dynamodb_table`). `overdue` reads that index one minute at a time: one
Query (more only when a minute holds over 1 MB of index entries) per minute it covers, never a
Scan, so a sweep costs the same however many dispatches the table holds.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import dispatch_codec
from chalicelib.adapters.aws_errors import error_code, error_message
from chalicelib.adapters.dynamodb_table import (
    DUE_AT_ATTRIBUTE,
    DUE_BACKSTOP_ATTRIBUTE,
    DUE_INDEX,
    DUE_MINUTE_ATTRIBUTE,
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
        self._write(put, on_condition=lambda: DispatchExists(dispatch.dispatch_uuid))
        return stored

    def save(self, dispatch: Dispatch, message_refs: Sequence[MessageRef] = ()) -> Dispatch:
        """Replace the stored dispatch if its version is still `dispatch.version`.

        Returns the dispatch at version + 1. The message index items go first, one PutItem each,
        so they stay even when the dispatch's own PutItem then loses to a concurrent writer.
        Raises `ConcurrentUpdate` when the stored version moved on (or the dispatch is absent),
        `ValueError` when a ref belongs to another dispatch (nothing is written) or the item is
        too large.
        """
        stored = dataclasses.replace(dispatch, version=dispatch.version + 1)
        for ref in _unique_refs(dispatch.dispatch_uuid, message_refs):
            self._write(self._ref_put(stored, ref), on_condition=_ref_taken)
            if ref.recipient is not None and ref.sent_at is not None:
                self._remember_recipient(stored, ref)
        put = {
            "TableName": self._table,
            "Item": self._dispatch_item(stored),
            **_VERSION_MATCHES,
            "ExpressionAttributeValues": {":expected": {"N": str(dispatch.version)}},
        }
        self._write(put, on_condition=_version_moved)
        return stored

    def _write(self, put: dict[str, Any], on_condition: Callable[[], Exception]) -> None:
        """One conditional PutItem; a failed condition raises what `on_condition` builds."""
        try:
            self._client.put_item(**put)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise on_condition() from exc
            if error_code(exc) == "ValidationException" and "item size" in error_message(exc).lower():
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
        if since > cutoff:
            return []  # DynamoDB refuses a BETWEEN whose bounds are reversed
        bounds = {
            ":since": {"S": dispatch_codec.format_time(since)},
            ":cutoff": {"S": dispatch_codec.format_time(cutoff)},
        }
        found: dict[OverdueCheck, None] = {}  # ordered, and an entry seen twice counts once
        for minute in _minutes(since, cutoff):
            query: dict[str, Any] = {
                "TableName": self._table,
                **_DUE_IN_MINUTE,
                "ExpressionAttributeValues": {":m": {"S": minute}, **bounds},
            }
            if self._page_size is not None:
                query["Limit"] = self._page_size
            while True:
                page = self._client.query(**query)
                for item in page.get("Items", ()):
                    dispatch_uuid = item["pk"]["S"].removeprefix(dispatch_codec.DISPATCH_PREFIX)
                    backstop = item.get(DUE_BACKSTOP_ATTRIBUTE, {}).get("BOOL", False)
                    found[OverdueCheck(dispatch_uuid, int(item["current"]["N"]), backstop)] = None
                if "LastEvaluatedKey" not in page:
                    break
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return list(found)

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

    def _remember_recipient(self, dispatch: Dispatch, ref: MessageRef) -> None:
        """Point the recipient's item at this message unless a later send already did."""
        assert ref.recipient is not None and ref.sent_at is not None
        item = {
            **recipient_key(ref.provider, ref.recipient),
            "provider_message_id": {"S": ref.provider_message_id},
            "dispatch_uuid": {"S": ref.dispatch_uuid},
            "step_index": {"N": str(ref.step_index)},
            "sent_at": {"S": dispatch_codec.format_time(ref.sent_at)},
            TTL_ATTRIBUTE: self._expires_at(dispatch),
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                # ISO times in one format sort as strings.
                ConditionExpression="attribute_not_exists(pk) OR sent_at <= :s",
                ExpressionAttributeValues={":s": item["sent_at"]},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise  # lost to a later send: that one is the latest, as it should be

    def _consistent_get(self, item_key: dict[str, dict[str, str]]) -> dict[str, Any] | None:
        """One strongly consistent GetItem: the item, or None."""
        response = self._client.get_item(TableName=self._table, Key=item_key, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _expires_at(self, dispatch: Dispatch) -> dict[str, str]:
        return {"N": str(int((dispatch.created_at + self._retention).timestamp()))}

    def _dispatch_item(self, dispatch: Dispatch) -> dict[str, Any]:
        item = {**dispatch_codec.encode(dispatch), TTL_ATTRIBUTE: self._expires_at(dispatch)}
        # Cut from the stored string itself, so the bucket and the sort key can never disagree.
        # A final dispatch has no due_at, so it gets no due_minute and leaves the index.
        if DUE_AT_ATTRIBUTE in item:
            item[DUE_MINUTE_ATTRIBUTE] = {"S": due_minute(item[DUE_AT_ATTRIBUTE]["S"])}
            check = pending_check(dispatch)
            item[DUE_BACKSTOP_ATTRIBUTE] = {"BOOL": check is not None and check.backstop}
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


def _minutes(since: datetime, cutoff: datetime) -> list[str]:
    """Every minute bucket from the one holding `since` to the one holding `cutoff`."""
    minute = since.astimezone(timezone.utc).replace(second=0, microsecond=0)
    buckets = []
    while minute <= cutoff:
        buckets.append(due_minute(dispatch_codec.format_time(minute)))
        minute += timedelta(minutes=1)
    return buckets


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


def _version_moved() -> ConcurrentUpdate:
    return ConcurrentUpdate("the dispatch was changed since it was read")


def _ref_taken() -> ValueError:
    return ValueError("a provider message id is already recorded for another dispatch")


def _too_large() -> DispatchTooLarge:
    return DispatchTooLarge("the dispatch item exceeds DynamoDB's 400 KB item size limit")
