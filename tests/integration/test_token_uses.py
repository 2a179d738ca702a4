"""The TokenUses contract, for the in-memory fake and DynamoDB (moto)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb_table import TTL_ATTRIBUTE
from chalicelib.adapters.dynamodb_token_uses import DynamoTokenUses, token_use_key
from tests.fake_applications import InMemoryTokenUses
from tests.fakes import T0

UNTIL = T0 + timedelta(minutes=15, seconds=30)


@pytest.fixture(params=["memory", "dynamodb"])
def uses(request):
    if request.param == "memory":
        return InMemoryTokenUses()
    ddb_client, table_name = request.getfixturevalue("ddb_client"), request.getfixturevalue("table_name")
    return DynamoTokenUses(ddb_client, table_name)


def test_a_token_is_used_first_once(uses):
    assert uses.first_use("app-1", "jti-1", UNTIL) is True
    assert uses.first_use("app-1", "jti-1", UNTIL) is False
    assert uses.first_use("app-1", "jti-1", UNTIL + timedelta(hours=1)) is False


def test_tokens_are_told_apart_by_application_and_jti(uses):
    pairs = [("app-1", "jti-1"), ("app-1", "jti-2"), ("app-2", "jti-1"), ("app-1", "jti-1#x"), ("app-1#jti-1", "x")]
    assert [uses.first_use(app, jti, UNTIL) for app, jti in pairs] == [True] * len(pairs)


@pytest.mark.parametrize("jti", ["é-ü", "a" * 255, "with space", "#", "JTI"])
def test_any_jti_authentication_accepts_is_stored(uses, jti):
    assert uses.first_use("app-1", jti, UNTIL) is True
    assert uses.first_use("app-1", jti, UNTIL) is False


def test_the_item_expires_when_the_token_would_be_refused_anyway(ddb_client, table_name):
    DynamoTokenUses(ddb_client, table_name).first_use("app-1", "jti-1", UNTIL + timedelta(microseconds=1))
    item = ddb_client.get_item(TableName=table_name, Key=token_use_key("app-1", "jti-1"))["Item"]
    assert item[TTL_ATTRIBUTE] == {"N": str(int(UNTIL.timestamp()) + 1)}  # rounded up, never early


def test_a_failure_other_than_the_condition_is_not_taken_for_a_reuse(ddb_client, table_name):
    uses = DynamoTokenUses(ddb_client, "no-such-table")
    with pytest.raises(ClientError):
        uses.first_use("app-1", "jti-1", UNTIL)
