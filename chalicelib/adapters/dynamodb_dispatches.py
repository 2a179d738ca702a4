"""DynamoDB implementation of the DispatchRepository port.

One item per dispatch (`DSP#<uuid>` / `DSP`, layout in `dispatch_codec`) guarded by an optimistic
`version`, and one message index item per provider message id (`MSG#<provider>#<id>` / `MSG`)
so a status webhook can find its dispatch with a strongly consistent GetItem.

A message index item is written just before the dispatch that records its send, not in one
transaction with it: a status webhook can then never arrive before its index item, and an index
item left behind by a save that lost a race only points at a step, whose later statuses are
recorded as they come. Plain writes also cost half the write units of transactional ones (and
moto's transactions copy the whole table, which would slow the local stack down as it fills).

Calls: `get` and `find_message` one GetItem, `add` one PutItem, `save` one PutItem plus one per
message ref. Both kinds of item carry `expires_at` (creation + retention, epoch seconds) for TTL.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import dispatch_codec
from chalicelib.adapters.aws_errors import error_code, error_message
from chalicelib.adapters.dynamodb_table import TTL_ATTRIBUTE, key
from chalicelib.domain.errors import ConcurrentUpdate, DispatchExists, DispatchTooLarge
from chalicelib.domain.model import Dispatch
from chalicelib.service.ports import MessageRef

MESSAGE_PREFIX = "MSG#"
MESSAGE_SK = "MSG"

_VERSION_MATCHES = {
    "ConditionExpression": "#v = :expected",
    "ExpressionAttributeNames": {"#v": "version"},
}
#: A retried save of the same ref must succeed; a ref owned by another dispatch must not move.
_REF_FREE_OR_OURS = "attribute_not_exists(pk) OR dispatch_uuid = :d"



def message_key(provider: str, provider_message_id: str) -> dict[str, dict[str, str]]:
    return key(f"{MESSAGE_PREFIX}{provider}#{provider_message_id}", MESSAGE_SK)


class DynamoDispatchRepository:
    """Dispatches and the message index in the single table."""

    def __init__(self, client: Any, table_name: str, retention_days: int = 90) -> None:
        self._client = client
        self._table = table_name
        self._retention = timedelta(days=retention_days)

    def get(self, dispatch_uuid: str) -> Dispatch | None:
        """Strongly consistent read. One GetItem."""
        response = self._client.get_item(
            TableName=self._table,
            Key=dispatch_codec.dispatch_key(dispatch_uuid),
            ConsistentRead=True,
        )
        item = response.get("Item")
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
        response = self._client.get_item(
            TableName=self._table,
            Key=message_key(provider, provider_message_id),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            return None
        return MessageRef(
            provider=provider,
            provider_message_id=provider_message_id,
            dispatch_uuid=item["dispatch_uuid"]["S"],
            step_index=int(item["step_index"]["N"]),
        )

    def _expires_at(self, dispatch: Dispatch) -> dict[str, str]:
        return {"N": str(int((dispatch.created_at + self._retention).timestamp()))}

    def _dispatch_item(self, dispatch: Dispatch) -> dict[str, Any]:
        return {**dispatch_codec.encode(dispatch), TTL_ATTRIBUTE: self._expires_at(dispatch)}

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
