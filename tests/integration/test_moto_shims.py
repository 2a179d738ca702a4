"""The local stack's cheaper moto paths: the same answers, less work."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from moto_shims import (
    install_item_backups,
    install_partition_queries,
    install_plain_attribute_values,
    install_queue_counts,
)


@pytest.fixture
def patched(ddb_client):
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    install_item_backups()

    def refuse_to_copy(self, memo):
        raise AssertionError("a whole table was copied")

    Table.__deepcopy__ = refuse_to_copy
    try:
        yield ddb_client
    finally:
        del Table.__deepcopy__
        DynamoDBBackend.transact_write_items = DynamoDBBackend.transact_write_items.__wrapped__


def put(table, pk, value, condition=None):
    request = {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": "X"}, "v": {"S": value}}}
    if condition:
        request["ConditionExpression"] = condition
    return {"Put": request}


def read(client, table, pk):
    item = client.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": "X"}}).get("Item")
    return item and item["v"]["S"]


def test_a_transaction_writes_every_item(patched, table_name):
    patched.transact_write_items(TransactItems=[put(table_name, "a", "1"), put(table_name, "b", "1")])

    assert (read(patched, table_name, "a"), read(patched, table_name, "b")) == ("1", "1")


def test_a_cancelled_transaction_leaves_every_item_as_it_was(patched, table_name):
    patched.put_item(TableName=table_name, Item={"pk": {"S": "old"}, "sk": {"S": "X"}, "v": {"S": "kept"}})
    patched.put_item(TableName=table_name, Item={"pk": {"S": "guard"}, "sk": {"S": "X"}, "v": {"S": "2"}})
    update = {
        "Update": {
            "TableName": table_name,
            "Key": {"pk": {"S": "old"}, "sk": {"S": "X"}},
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {":v": {"S": "changed"}},
        }
    }
    items = [put(table_name, "new", "1"), update, put(table_name, "guard", "3", condition="v = :never")]
    items[2]["Put"]["ExpressionAttributeValues"] = {":never": {"S": "1"}}

    with pytest.raises(ClientError) as refused:
        patched.transact_write_items(TransactItems=items)

    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    codes = [r["Code"] for r in refused.value.response["CancellationReasons"]]
    assert codes == ["None", "None", "ConditionalCheckFailed"]
    assert read(patched, table_name, "new") is None
    assert read(patched, table_name, "old") == "kept"
    assert read(patched, table_name, "guard") == "2"


def test_queries_give_the_same_pages_reading_only_what_they_need(ddb_client, table_name):
    from moto.dynamodb.models.table import Table

    for n in range(30):
        item = {"pk": {"S": f"p{n % 3}"}, "sk": {"S": f"s{n:02d}"}, "due_minute": {"S": f"m{n % 2}"}}
        ddb_client.put_item(TableName=table_name, Item={**item, "due_at": {"S": f"t{n:02d}"}})
    table_query = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p1"}}}
    index_query = {
        "IndexName": "due",
        "KeyConditionExpression": "due_minute = :m AND due_at BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":m": {"S": "m0"}, ":a": {"S": "t04"}, ":b": {"S": "t20"}},
    }

    def pages(request):
        found, start = [], {}
        while True:
            page = ddb_client.query(TableName=table_name, Limit=4, **request, **start)
            found.append([(i["pk"]["S"], i["sk"]["S"]) for i in page["Items"]])
            if "LastEvaluatedKey" not in page:
                return found
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    before = [pages(table_query), pages(index_query)]
    install_partition_queries()
    try:
        after = [pages(table_query), pages(index_query)]
    finally:
        Table.query = Table.query.__wrapped__

    assert after == before
    assert sum(len(page) for page in after[0]) == 10 and sum(len(page) for page in after[1]) == 9


EVERY_TYPE = {
    "s": {"S": "text é"},
    "n": {"N": "-12.5"},
    "b": {"B": b"\x00\xffbytes"},
    "bool": {"BOOL": False},
    "null": {"NULL": True},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "l": {"L": [{"S": "x"}, {"N": "3"}, {"B": b"\x03"}, {"L": []}, {"M": {"k": {"BOOL": True}}}]},
    "m": {"M": {"inner": {"M": {"b": {"B": b"\x04"}, "ns": {"NS": ["7"]}}}, "empty": {"M": {}}}},
}


def test_items_of_every_attribute_type_read_back_the_same_without_walking_their_shape(ddb_client, table_name):
    from moto.core.serialize import BaseJSONSerializer

    key = {"pk": {"S": "typed"}, "sk": {"S": "X"}}
    ddb_client.put_item(TableName=table_name, Item={**key, **EVERY_TYPE})

    def answers():
        update = {"UpdateExpression": "SET s = :s", "ExpressionAttributeValues": {":s": {"S": "text é"}}}
        query = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "typed"}}}
        found = [
            ddb_client.get_item(TableName=table_name, Key=key)["Item"],
            ddb_client.query(TableName=table_name, **query)["Items"],
            ddb_client.scan(TableName=table_name)["Items"],
            ddb_client.transact_get_items(TransactItems=[{"Get": {"TableName": table_name, "Key": key}}])[
                "Responses"
            ],
            ddb_client.update_item(TableName=table_name, Key=key, ReturnValues="ALL_NEW", **update)["Attributes"],
        ]
        return found

    before = answers()
    walked = []
    picked = BaseJSONSerializer.get_value

    def recording(self, value, key, shape):
        walked.append(getattr(getattr(shape, "parent", None), "name", None))
        return picked(self, value, key, shape)

    install_plain_attribute_values()
    BaseJSONSerializer.get_value = recording
    try:
        after = answers()
    finally:
        BaseJSONSerializer.get_value = picked
        BaseJSONSerializer._serialize_type_structure = BaseJSONSerializer._serialize_type_structure.__wrapped__

    assert after == before
    assert before[0] == {**key, **EVERY_TYPE}
    assert walked and "AttributeValue" not in walked


COUNTS = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


def test_queue_counts_and_receives_are_the_same_with_the_clock_read_once(aws):
    import boto3
    from moto.sqs.models import Queue

    sqs = boto3.client("sqs", region_name="eu-west-1")

    def fill(name):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        for n in range(6):
            sqs.send_message(QueueUrl=url, MessageBody=f"ready {n}")
        for n in range(2):
            sqs.send_message(QueueUrl=url, MessageBody=f"later {n}", DelaySeconds=600)
        taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=600)["Messages"]
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=COUNTS)["Attributes"]
        rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        return len(taken), counts, sorted(m["Body"] for m in rest)

    before = fill("before")
    install_queue_counts()
    try:
        after = fill("after")
    finally:
        for name, original in Queue._counts_before_shim.items():
            setattr(Queue, name, original)

    assert after == before
    assert before[1] == dict(zip(COUNTS, ["3", "3", "2"], strict=True))
