"""The single DynamoDB table: its key schema, and how to create it (tests and the local stack).

Items (all keys are strings):
    APP#<application_id> / APP          application
    KEY#<api_key> / KEY                 api key index (Basic auth)
    DSP#<dispatch_uuid> / DSP           dispatch aggregate
    MSG#<provider>#<message_id> / MSG   message index (webhook correlation, strongly consistent)
    RCPT#<provider>#<recipient> / RCPT  latest message sent to a person (watermarks, replies)
    CB#<dispatch_uuid> / SEQ#<seq:08d>  a callback's delivery record (attempts, state)
    CB#<dispatch_uuid> / STREAM         a dispatch's callback lease, replay marks, next retry
    JTI#<jti> / APP#<application_id>    a client JWT used (only with DISPATCH_JWT_SINGLE_USE)

Three sparse global secondary indexes; an item is in one only while it carries both its keys.

`due` serves the safety sweeper: a live dispatch carries `due_minute` (its `due_at` cut to the
minute) and `due_at`; a final one carries neither, so only live dispatches are in the index. It
projects `current` and `due_backstop` (whether the pending check is one the AWS timers leave to
the sweeper) so a sweep never reads the items.

`relay` serves the sweeper's callback recovery, keyed by `relay_minute` and `relay_at`. A
dispatch with callbacks in its outbox is in bucket `outbox#<minute>` of its oldest entry; a
callback stream with a retry due is in bucket `retry#<minute>` of that retry. Only keys are
projected: the sweeper needs the dispatch id, which the pk holds.

`dead` lists an application's dead callbacks, latest first: a dead record carries `dead_app`
(its application) and `dead_at`. It projects every attribute so a page is one Query.

`infra/dispatch.json` declares the same table for AWS; a test keeps the two equal.
"""
from __future__ import annotations

from typing import Any

TTL_ATTRIBUTE = "expires_at"
DUE_INDEX = "due"
DUE_MINUTE_ATTRIBUTE = "due_minute"
DUE_AT_ATTRIBUTE = "due_at"
DUE_BACKSTOP_ATTRIBUTE = "due_backstop"
RELAY_INDEX = "relay"
RELAY_MINUTE_ATTRIBUTE = "relay_minute"
RELAY_AT_ATTRIBUTE = "relay_at"
DEAD_INDEX = "dead"
DEAD_APP_ATTRIBUTE = "dead_app"
DEAD_AT_ATTRIBUTE = "dead_at"


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
            {"AttributeName": RELAY_MINUTE_ATTRIBUTE, "AttributeType": "S"},
            {"AttributeName": RELAY_AT_ATTRIBUTE, "AttributeType": "S"},
            {"AttributeName": DEAD_APP_ATTRIBUTE, "AttributeType": "S"},
            {"AttributeName": DEAD_AT_ATTRIBUTE, "AttributeType": "S"},
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
            },
            {
                "IndexName": RELAY_INDEX,
                "KeySchema": [
                    {"AttributeName": RELAY_MINUTE_ATTRIBUTE, "KeyType": "HASH"},
                    {"AttributeName": RELAY_AT_ATTRIBUTE, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": DEAD_INDEX,
                "KeySchema": [
                    {"AttributeName": DEAD_APP_ATTRIBUTE, "KeyType": "HASH"},
                    {"AttributeName": DEAD_AT_ATTRIBUTE, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
