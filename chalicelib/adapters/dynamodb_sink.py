"""The local callback sink's store: callbacks received on the local stage, kept per dispatch.

Lets a developer point an application's status URL at the service itself and then read back
what was delivered, and whether its signature checked out. Items expire after 7 days.

Item layout (see `dynamodb_table`): pk `SINK#<dispatch_uuid>` (or `SINK#unknown` when the body
names no dispatch), sk `<received_at iso>#<nanosecond counter>#<uuid4 hex>` so a Query returns
arrival order.
"""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamodb_table import TTL_ATTRIBUTE
from chalicelib.service.callback_payloads import dispatch_uuid_of, iso

__all__ = ["DynamoCallbackSink", "dispatch_uuid_of", "UNKNOWN_DISPATCH", "RETENTION"]

UNKNOWN_DISPATCH = "unknown"
RETENTION = timedelta(days=7)

_SinkRecords = list[dict[str, Any]]


def _pk(dispatch_uuid: str | None) -> str:
    return f"SINK#{dispatch_uuid or UNKNOWN_DISPATCH}"


class DynamoCallbackSink:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def store(
        self,
        dispatch_uuid: str | None,
        received_at: datetime,
        signature_valid: bool,
        body: dict[str, Any] | str,
    ) -> None:
        """Keep one received callback; `body` is the parsed JSON, or the raw text if unparseable."""
        at = iso(received_at)
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": _pk(dispatch_uuid)},
                # Callbacks in the same millisecond keep their arrival order by the process's
                # nanosecond clock; the random suffix keeps concurrent ones apart.
                "sk": {"S": f"{at}#{time.time_ns():020d}#{uuid.uuid4().hex}"},
                "received_at": {"S": at},
                "signature_valid": {"BOOL": bool(signature_valid)},
                # Always JSON-encoded, so a raw-text body round-trips as a string, not a dict.
                "body": {"S": json.dumps(body, separators=(",", ":"), ensure_ascii=False)},
                TTL_ATTRIBUTE: {"N": str(int((received_at + RETENTION).timestamp()))},
            },
        )

    def list(self, dispatch_uuid: str | None) -> _SinkRecords:
        """Everything stored for the dispatch, oldest first: received_at, signature_valid, body."""
        records: _SinkRecords = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _pk(dispatch_uuid)}},
            "ConsistentRead": True,
            "ScanIndexForward": True,
        }
        while True:
            page = self._client.query(**request)
            records.extend(_record(item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return records
            request["ExclusiveStartKey"] = last


def _record(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "received_at": item["received_at"]["S"],
        "signature_valid": item["signature_valid"]["BOOL"],
        "body": json.loads(item["body"]["S"]),
    }
