"""DynamoDB implementation of the SweepMarks port: one small item, `SWEEP#scheduled` / `MARK`.

`swept_to` is the cutoff of the last scheduled sweep that finished cleanly, in the codec's ISO
format (which sorts as text), so "unless a later one is recorded" is a condition on the string.
Calls: `swept_to` one strongly consistent GetItem, `mark_swept` one conditional PutItem.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import dispatch_codec
from chalicelib.adapters.aws_errors import CONDITION_FAILED, error_code
from chalicelib.adapters.dynamodb_table import key

_KEY = key("SWEEP#scheduled", "MARK")


class DynamoSweepMarks:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def swept_to(self) -> datetime | None:
        item = self._client.get_item(TableName=self._table, Key=_KEY, ConsistentRead=True).get("Item")
        return dispatch_codec.parse_time(item["swept_to"]["S"]) if item else None

    def mark_swept(self, cutoff: datetime) -> None:
        value = {"S": dispatch_codec.format_time(cutoff)}
        try:
            self._client.put_item(
                TableName=self._table,
                Item={**_KEY, "swept_to": value},
                ConditionExpression="attribute_not_exists(pk) OR swept_to < :c",
                ExpressionAttributeValues={":c": value},
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise  # a later run already marked further: that mark stands
