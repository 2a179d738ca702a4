"""DynamoDB implementation of the TokenUses port: one item per client JWT used,
`JTI#<jti>` / `APP#<application_id>`, kept until the token could no longer be accepted.

The jti, random in practice, leads the key so that one application's tokens spread over
partitions; the application in the sort key keeps each pair apart whatever either holds. The
item's TTL (`expires_at`) is the token's end of acceptance: DynamoDB removes it some time after,
and until then the condition still finds it, which is harmless (the token is refused for its age
by then anyway).
A use writes a fresh `use_id` and reads the item back when the condition fails: a write that
was applied but whose answer was lost meets itself on botocore's retry, and must not be taken
for a replay of the token.
Calls: `first_use` one conditional PutItem.
"""
from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import CONDITION_FAILED, error_code
from chalicelib.adapters.dynamodb_table import TTL_ATTRIBUTE, key

USE_ID_ATTRIBUTE = "use_id"


def token_use_key(application_id: str, jti: str) -> dict[str, dict[str, str]]:
    return key(f"JTI#{jti}", f"APP#{application_id}")


class DynamoTokenUses:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def first_use(self, application_id: str, jti: str, until: datetime) -> bool:
        use_id = {"S": uuid.uuid4().hex}
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **token_use_key(application_id, jti),
                    TTL_ATTRIBUTE: {"N": str(math.ceil(until.timestamp()))},
                    USE_ID_ATTRIBUTE: use_id,
                },
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return (exc.response.get("Item") or {}).get(USE_ID_ATTRIBUTE) == use_id
            raise
        return True
