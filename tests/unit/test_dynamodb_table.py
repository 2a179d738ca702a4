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
    client = RecordingClient()
    create_table(client, "t")

    (index,) = client.calls["create_table"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "due"
    assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == [
        ("due_minute", "HASH"),
        ("due_at", "RANGE"),
    ]
    assert index["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["current", "due_backstop"],
    }
