"""The table the tests and the local stack create is the table CloudFormation deploys."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.adapters.dynamodb_table import create_table

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "dispatch.json"


class RecordingClient:
    """Keeps the kwargs of every call; the waiter returns at once."""

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}

    def create_table(self, **kwargs: Any) -> None:
        self.calls["create_table"] = kwargs

    def update_time_to_live(self, **kwargs: Any) -> None:
        self.calls["update_time_to_live"] = kwargs

    def get_waiter(self, name: str) -> Any:
        client = self

        class Waiter:
            def wait(self, **kwargs: Any) -> None:
                client.calls[f"wait:{name}"] = kwargs

        return Waiter()


def test_create_table_matches_the_cloudformation_table():
    declared = json.loads(TEMPLATE.read_text())["Resources"]["DispatchTable"]["Properties"]
    client = RecordingClient()

    create_table(client, "t")

    created = client.calls["create_table"]
    for name in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode"):
        assert created[name] == declared[name], name
    assert client.calls["update_time_to_live"] == {
        "TableName": "t",
        "TimeToLiveSpecification": declared["TimeToLiveSpecification"],
    }


def test_the_sweeper_index_is_keyed_by_due_minute_and_due_at_and_carries_what_a_sweep_needs():
    # The repository's queries depend on exactly this shape, whatever the template says.
    index = _indexes()["due"]
    assert _keys(index) == [("due_minute", "HASH"), ("due_at", "RANGE")]
    assert index["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["current", "due_backstop"],
    }


def test_the_relay_index_is_keyed_by_relay_minute_and_relay_at_and_holds_only_keys():
    # The sweeper needs only the dispatch id, which the table's pk carries.
    index = _indexes()["relay"]
    assert _keys(index) == [("relay_minute", "HASH"), ("relay_at", "RANGE")]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_the_dead_index_is_keyed_by_application_and_dead_at_and_holds_whole_records():
    # A page of dead callbacks is answered from the index alone.
    index = _indexes()["dead"]
    assert _keys(index) == [("dead_app", "HASH"), ("dead_at", "RANGE")]
    assert index["Projection"] == {"ProjectionType": "ALL"}


def test_every_index_key_is_a_declared_string_attribute():
    client = RecordingClient()
    create_table(client, "t")
    created = client.calls["create_table"]

    declared = {d["AttributeName"]: d["AttributeType"] for d in created["AttributeDefinitions"]}
    used = {"pk", "sk"} | {
        k["AttributeName"] for index in created["GlobalSecondaryIndexes"] for k in index["KeySchema"]
    }
    assert declared == dict.fromkeys(used, "S")
    assert sorted(_indexes()) == ["dead", "due", "relay"]


def _indexes() -> dict[str, dict[str, Any]]:
    client = RecordingClient()
    create_table(client, "t")
    return {i["IndexName"]: i for i in client.calls["create_table"]["GlobalSecondaryIndexes"]}


def _keys(index: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]]
