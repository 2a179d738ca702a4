"""DynamoDB implementation of the DispatchRepository port.

One item per dispatch (`DSP#<uuid>` / `DSP`, layout in `dispatch_codec`) guarded by an optimistic
`version`, and one message index item per provider message id (`MSG#<provider>#<id>` / `MSG`),
written in the same transaction that records the send so a status webhook can find its dispatch
with a strongly consistent GetItem.

Every operation is exactly one DynamoDB call: `get` and `find_message` one GetItem, `add` one
PutItem, `save` one PutItem (no message refs) or one TransactWriteItems (with message refs).
Both kinds of item carry `expires_at` (epoch seconds, creation + retention) for TTL cleanup.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import dispatch_codec
from chalicelib.adapters.dynamodb_table import TTL_ATTRIBUTE, key
from chalicelib.domain.errors import ConcurrentUpdate, DispatchExists
from chalicelib.domain.model import Dispatch
from chalicelib.service.ports import MessageRef

MESSAGE_PREFIX = "MSG#"
MESSAGE_SK = "MSG"
#: TransactWriteItems takes at most 100 actions; one is the dispatch itself.
MAX_MESSAGE_REFS = 99

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
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._dispatch_item(stored),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise DispatchExists(dispatch.dispatch_uuid) from exc
            error = _translated(exc)
            if error is None:
                raise
            raise error from exc
        return stored

    def save(self, dispatch: Dispatch, message_refs: Sequence[MessageRef] = ()) -> Dispatch:
        """Replace the stored dispatch if its version is still `dispatch.version`.

        Returns the dispatch at version + 1. One PutItem, or one TransactWriteItems that also
        writes the message index items when `message_refs` is not empty (all or nothing).
        Raises `ConcurrentUpdate` when the stored version moved on (or the dispatch is absent),
        `ValueError` when a ref belongs to another dispatch or the item is too large.
        """
        stored = dataclasses.replace(dispatch, version=dispatch.version + 1)
        refs = _unique_refs(dispatch.dispatch_uuid, message_refs)
        put = {
            "TableName": self._table,
            "Item": self._dispatch_item(stored),
            **_VERSION_MATCHES,
            "ExpressionAttributeValues": {":expected": {"N": str(dispatch.version)}},
        }
        try:
            if refs:
                self._client.transact_write_items(
                    TransactItems=[{"Put": put}] + [{"Put": self._ref_put(stored, r)} for r in refs]
                )
            else:
                self._client.put_item(**put)
        except ClientError as exc:
            error = _translated(exc)
            if error is None:
                raise
            raise error from exc
        return stored

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
    """Refs without repeats (a transaction may not touch one item twice), checked for sanity."""
    unique: dict[tuple[str, str], MessageRef] = {}
    for ref in refs:
        if ref.dispatch_uuid != dispatch_uuid:
            raise ValueError("a message ref must belong to the dispatch being saved")
        seen = unique.setdefault((ref.provider, ref.provider_message_id), ref)
        if seen != ref:
            raise ValueError("one provider message id given twice with different steps")
    if len(unique) > MAX_MESSAGE_REFS:
        raise ValueError(f"at most {MAX_MESSAGE_REFS} message refs per save")
    return list(unique.values())


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _translated(exc: ClientError) -> Exception | None:
    """The error to raise instead of a failed write's ClientError; None to let it through."""
    code = _error_code(exc)
    message = exc.response.get("Error", {}).get("Message", "")
    if code == "ConditionalCheckFailedException":
        return ConcurrentUpdate("the dispatch was changed since it was read")
    if code == "ValidationException" and "item size" in message.lower():
        return _too_large()
    if code != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons") or []
    codes = [r.get("Code") for r in reasons]
    # Reason 0 is the dispatch Put; the rest are message refs, in order.
    if codes[:1] == ["ConditionalCheckFailed"]:
        return ConcurrentUpdate("the dispatch was changed since it was read")
    if any(
        r.get("Code") == "ValidationError" and "size" in (r.get("Message") or "").lower()
        for r in reasons
    ):
        return _too_large()
    if "ConditionalCheckFailed" in codes[1:]:
        return ValueError("a provider message id is already recorded for another dispatch")
    return None


def _too_large() -> ValueError:
    return ValueError("the dispatch item exceeds DynamoDB's 400 KB item size limit")
