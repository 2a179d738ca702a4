"""The single DynamoDB table: its key schema, and how to create it (tests and the local stack).

Items (all keys are strings):
    APP#<application_id> / APP          application
    KEY#<api_key> / KEY                 api key index (Basic auth)
    DSP#<dispatch_uuid> / DSP           dispatch aggregate
    MSG#<provider>#<message_id> / MSG   message index (webhook correlation, strongly consistent)
"""
from __future__ import annotations

from typing import Any

TTL_ATTRIBUTE = "expires_at"


def key(pk: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def create_table(client: Any, table_name: str) -> None:
    """Create the table on demand with its TTL attribute and wait until it is active."""
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
