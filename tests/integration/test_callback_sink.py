"""DynamoCallbackSink against moto: item layout, ordering, isolation and pagination."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.adapters.dynamodb_sink import DynamoCallbackSink, dispatch_uuid_of

T0 = datetime(2026, 11, 24, 6, 22, 36, 123000, tzinfo=timezone.utc)


@pytest.fixture
def sink(ddb_client, table_name):
    return DynamoCallbackSink(ddb_client, table_name)


def test_list_returns_oldest_first_whatever_the_write_order(sink):
    for seconds in (5, 1, 3):
        sink.store("d-1", T0 + timedelta(seconds=seconds), True, {"n": seconds})

    records = sink.list("d-1")

    assert [r["body"]["n"] for r in records] == [1, 3, 5]
    assert records[0] == {
        "received_at": "2026-11-24T06:22:37.123Z",
        "signature_valid": True,
        "body": {"n": 1},
    }


def test_dispatches_are_isolated(sink):
    sink.store("d-1", T0, True, {"who": "one"})
    sink.store("d-2", T0, False, {"who": "two"})

    assert [r["body"]["who"] for r in sink.list("d-1")] == ["one"]
    assert [(r["body"]["who"], r["signature_valid"]) for r in sink.list("d-2")] == [("two", False)]
    assert sink.list("d-3") == []


def test_callbacks_without_a_dispatch_go_to_unknown(sink):
    sink.store(None, T0, False, "not json at all")

    assert sink.list(None) == [
        {"received_at": "2026-11-24T06:22:36.123Z", "signature_valid": False,
         "body": "not json at all"}
    ]
    assert sink.list("unknown") == sink.list(None)


def test_same_millisecond_callbacks_are_all_kept_in_arrival_order(sink):
    for n in range(12):
        sink.store("d-1", T0, True, {"n": n})
    assert [r["body"]["n"] for r in sink.list("d-1")] == list(range(12))


def test_item_layout_and_seven_day_ttl(sink, ddb_client, table_name):
    body = {"dispatch_uuid": "d-1", "text": "café"}
    sink.store("d-1", T0, True, body)

    items = ddb_client.scan(TableName=table_name)["Items"]

    assert len(items) == 1
    item = items[0]
    assert item["pk"]["S"] == "SINK#d-1"
    stamp, counter, suffix = item["sk"]["S"].split("#")
    assert stamp == "2026-11-24T06:22:36.123Z" and len(counter) == 20 and len(suffix) == 32
    assert int(item["expires_at"]["N"]) == int((T0 + timedelta(days=7)).timestamp())
    assert sink.list("d-1")[0]["body"] == body


def test_list_follows_pagination(sink):
    # Padding pushes the partition past DynamoDB's 1 MB page, forcing LastEvaluatedKey.
    padding = "x" * 100_000
    for i in range(15):
        sink.store("d-big", T0 + timedelta(milliseconds=i), True, {"n": i, "pad": padding})

    records = sink.list("d-big")

    assert [r["body"]["n"] for r in records] == list(range(15))


def test_list_passes_last_evaluated_key_and_reads_consistently():
    class PagedClient:
        def __init__(self):
            self.requests: list[dict] = []

        def query(self, **request):
            self.requests.append(dict(request))
            item = {"received_at": {"S": "t"}, "signature_valid": {"BOOL": True},
                    "body": {"S": f'{{"page": {len(self.requests)}}}'}}
            more = {"LastEvaluatedKey": {"pk": {"S": "p"}}} if len(self.requests) == 1 else {}
            return {"Items": [item], **more}

    client = PagedClient()
    records = DynamoCallbackSink(client, "any-table").list("d-1")

    assert [r["body"]["page"] for r in records] == [1, 2]
    assert "ExclusiveStartKey" not in client.requests[0]
    assert client.requests[1]["ExclusiveStartKey"] == {"pk": {"S": "p"}}
    assert all(r["ConsistentRead"] is True for r in client.requests)


def test_dispatch_uuid_of_is_exposed_for_the_sink_route():
    assert dispatch_uuid_of({"_links": {"workflow": {"dispatch_uuid": "d-9"}}}) == "d-9"
    assert dispatch_uuid_of({"dispatch_uuid": "d-8", "template": "failover"}) == "d-8"
