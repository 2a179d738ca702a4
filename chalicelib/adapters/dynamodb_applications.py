"""Applications in the single DynamoDB table, through the low-level boto3 client.

Two items per application, always written together in one transaction:
    APP#<application_id> / APP   the application
    KEY#<api_key> / KEY          the api key index, a full copy of the application (so it holds
                                 application_id and api_secret_hash, and everything else)

Read cost (all reads strongly consistent):
    get(application_id)   1 GetItem
    get_by_api_key(key)   1 GetItem, found or not: the index item is a full copy, so Basic auth
                          never needs a second read, and an unknown key costs exactly what a
                          known one does (the read count does not reveal whether a key exists)
    list()                a Scan of the whole table (operator command only)
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import TRANSACTION_CONDITION_FAILED, error_code
from chalicelib.adapters.dynamodb_table import key
from chalicelib.domain.application import Application
from chalicelib.service.applications import ApplicationNotFound

APP_PREFIX = "APP#"
APP_SK = "APP"
KEY_PREFIX = "KEY#"
KEY_SK = "KEY"

_STRING_FIELDS = (
    "application_id",
    "name",
    "api_key",
    "api_secret_hash",
    "public_key_pem",
    "signature_secret_ref",
)
_OPTIONAL_FIELDS = ("status_url", "inbound_url")


def app_key(application_id: str) -> dict[str, dict[str, str]]:
    return key(APP_PREFIX + application_id, APP_SK)


def api_key_key(api_key: str) -> dict[str, dict[str, str]]:
    return key(KEY_PREFIX + api_key, KEY_SK)


def _attributes(application: Application) -> dict[str, dict[str, str]]:
    item = {name: {"S": getattr(application, name)} for name in _STRING_FIELDS}
    for name in _OPTIONAL_FIELDS:
        value = getattr(application, name)
        if value is not None:
            item[name] = {"S": value}
    item["created_at"] = {"S": application.created_at.isoformat()}
    return item


def _from_item(item: dict[str, dict[str, str]]) -> Application:
    fields: dict[str, Any] = {name: item[name]["S"] for name in _STRING_FIELDS}
    for name in _OPTIONAL_FIELDS:
        fields[name] = item[name]["S"] if name in item else None
    fields["created_at"] = datetime.fromisoformat(item["created_at"]["S"])
    return Application(**fields)


def _is_condition_failure(error: ClientError) -> bool:
    if error_code(error) != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons", [])
    return any(r.get("Code") == TRANSACTION_CONDITION_FAILED for r in reasons)


class DynamoApplicationRepository:
    """ApplicationRepository over one DynamoDB table (layout in `dynamodb_table`)."""

    def __init__(self, client: Any, table_name: str):
        self._client = client
        self._table = table_name

    def get(self, application_id: str) -> Application | None:
        return self._get_item(app_key(application_id))

    def get_by_api_key(self, api_key: str) -> Application | None:
        return self._get_item(api_key_key(api_key))

    def add(self, application: Application) -> None:
        """Store a new application; ValueError if its id or api key is already taken."""
        attributes = _attributes(application)
        puts = [
            self._put(app_key(application.application_id), attributes, "attribute_not_exists(pk)"),
            self._put(api_key_key(application.api_key), attributes, "attribute_not_exists(pk)"),
        ]
        try:
            self._client.transact_write_items(TransactItems=puts)
        except ClientError as error:
            if _is_condition_failure(error):
                raise ValueError("application id or api key already exists") from None
            raise

    def update(self, application: Application) -> None:
        """Rewrite an existing application (both items).

        The api key is the index item's key, so it may not change here. Raises ApplicationNotFound
        when no application has this id, ValueError when the api key differs from the stored one.
        """
        attributes = _attributes(application)
        values = {":id": {"S": application.application_id}, ":key": {"S": application.api_key}}
        condition = "attribute_exists(pk) AND application_id = :id AND api_key = :key"
        puts = [
            self._put(app_key(application.application_id), attributes, condition, values),
            self._put(api_key_key(application.api_key), attributes, condition, values),
        ]
        try:
            self._client.transact_write_items(TransactItems=puts)
        except ClientError as error:
            if _is_condition_failure(error):
                raise self._update_failure(application) from None
            raise

    def list(self) -> list[Application]:
        # A Scan reads the whole table, dispatches included: fine for the operator command,
        # which is the only caller; request paths must never list applications.
        applications: list[Application] = []
        for page in self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="begins_with(pk, :prefix) AND sk = :sk",
            ExpressionAttributeValues={":prefix": {"S": APP_PREFIX}, ":sk": {"S": APP_SK}},
            ConsistentRead=True,
        ):
            applications.extend(_from_item(item) for item in page.get("Items", []))
        return sorted(applications, key=lambda a: (a.created_at, a.application_id))

    def _get_item(self, item_key: dict[str, dict[str, str]]) -> Application | None:
        response = self._client.get_item(TableName=self._table, Key=item_key, ConsistentRead=True)
        item = response.get("Item")
        return _from_item(item) if item else None

    def _put(
        self,
        item_key: dict[str, dict[str, str]],
        attributes: dict[str, dict[str, str]],
        condition: str,
        values: dict[str, dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {**item_key, **attributes},
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _update_failure(self, application: Application) -> Exception:
        # Only on the failure path: one extra read to say which precondition did not hold.
        stored = self.get(application.application_id)
        if stored is None:
            return ApplicationNotFound(application.application_id)
        return ValueError("an application's api key cannot change")
