"""The single DynamoDB table: its key schema, and how to create it (tests and the local stack).

Items (all keys are strings):
    APP#<application_id> / APP          application
    KEY#<api_key> / KEY                 api key index (Basic auth)
    DSP#<dispatch_uuid> / DSP           dispatch aggregate
    MSG#<provider>#<message_id> / MSG   message index (webhook correlation, strongly consistent)
    RCPT#<provider>#<recipient> / RCPT  latest message sent to a person (watermarks, replies)

One global secondary index, `due`, serves the safety sweeper: a live dispatch carries
`due_minute` (its `due_at` cut to the minute) and `due_at`; a final one carries neither, so only
live dispatches are in the index. It projects `current` and `due_backstop` (whether the pending
check is one the AWS timers leave to the sweeper) so a sweep never reads the items.

`infra/dispatch.json` declares the same table for AWS; a test keeps the two equal.
"""
from __future__ import annotations

from typing import Any

TTL_ATTRIBUTE = "expires_at"
DUE_INDEX = "due"
DUE_MINUTE_ATTRIBUTE = "due_minute"
DUE_AT_ATTRIBUTE = "due_at"
DUE_BACKSTOP_ATTRIBUTE = "due_backstop"


def key(pk: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def create_table(client: Any, table_name: str) -> None:
    """Create the table on demand with its TTL attribute and wait until it is active."""
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": DUE_MINUTE_ATTRIBUTE, "AttributeType": "S"},
            {"AttributeName": DUE_AT_ATTRIBUTE, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": DUE_INDEX,
                "KeySchema": [
                    {"AttributeName": DUE_MINUTE_ATTRIBUTE, "KeyType": "HASH"},
                    {"AttributeName": DUE_AT_ATTRIBUTE, "KeyType": "RANGE"},
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": ["current", DUE_BACKSTOP_ATTRIBUTE],
                },
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
