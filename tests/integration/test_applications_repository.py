"""DynamoApplicationRepository against moto's DynamoDB, using the real table layout."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.adapters.dynamodb_applications import DynamoApplicationRepository
from chalicelib.adapters.dynamodb_table import key
from chalicelib.domain.application import Application
from chalicelib.service.applications import ApplicationNotFound

CREATED = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def application(number: int = 1, **changes) -> Application:
    fields = dict(
        application_id=f"00000000-0000-4000-8000-00000000000{number}",
        name=f"shop {number}",
        api_key=f"abcdef012345678{number}",
        api_secret_hash="0" * 63 + str(number),
        public_key_pem="-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
        signature_secret_ref=f"dispatch/applications/{number}/signature-secret",
        status_url="https://example.com/status",
        created_at=CREATED + timedelta(minutes=number),
        inbound_url=None,
    )
    fields.update(changes)
    return Application(**fields)


@pytest.fixture
def repo(ddb_client, table_name) -> DynamoApplicationRepository:
    return DynamoApplicationRepository(ddb_client, table_name)


def test_added_application_reads_back_by_id_and_by_api_key(repo):
    app = application(inbound_url="https://example.com/inbound")
    repo.add(app)
    assert repo.get(app.application_id) == app
    assert repo.get_by_api_key(app.api_key) == app


def test_missing_application_reads_as_none(repo):
    assert repo.get("no-such-application") is None
    assert repo.get_by_api_key("no-such-key") is None


def test_api_key_item_holds_the_application_id_and_secret_hash(repo, ddb_client, table_name):
    app = application()
    repo.add(app)
    item = ddb_client.get_item(TableName=table_name, Key=key(f"KEY#{app.api_key}", "KEY"))["Item"]
    assert item["application_id"] == {"S": app.application_id}
    assert item["api_secret_hash"] == {"S": app.api_secret_hash}


def test_api_key_lookup_is_a_single_read(repo, ddb_client, monkeypatch):
    repo.add(application())
    calls: list[str] = []
    original = ddb_client.get_item
    monkeypatch.setattr(ddb_client, "get_item", lambda **kw: calls.append("get") or original(**kw))
    repo.get_by_api_key(application().api_key)
    repo.get_by_api_key("unknown")
    assert calls == ["get", "get"]


def test_adding_an_existing_application_id_is_a_value_error(repo):
    repo.add(application())
    with pytest.raises(ValueError):
        repo.add(application(api_key="fedcba9876543210"))
    assert repo.get_by_api_key("fedcba9876543210") is None


def test_adding_an_existing_api_key_is_a_value_error(repo):
    repo.add(application(1))
    other = application(2, api_key=application(1).api_key)
    with pytest.raises(ValueError):
        repo.add(other)
    assert repo.get(other.application_id) is None
    assert repo.get_by_api_key(other.api_key) == application(1)


def test_update_rewrites_both_items(repo):
    repo.add(application())
    changed = dataclasses.replace(
        application(),
        api_secret_hash="f" * 64,
        public_key_pem="new key",
        status_url=None,
        inbound_url="https://example.com/in",
        signature_secret_ref="dispatch/applications/1/v2",
    )
    repo.update(changed)
    assert repo.get(changed.application_id) == changed
    assert repo.get_by_api_key(changed.api_key) == changed


def test_update_of_a_missing_application_is_not_found(repo):
    with pytest.raises(ApplicationNotFound):
        repo.update(application())
    assert repo.get(application().application_id) is None
    assert repo.get_by_api_key(application().api_key) is None


def test_update_cannot_change_the_api_key(repo):
    repo.add(application())
    with pytest.raises(ValueError):
        repo.update(application(api_key="fedcba9876543210"))
    assert repo.get(application().application_id) == application()
    assert repo.get_by_api_key("fedcba9876543210") is None


def test_list_returns_applications_only_oldest_first(repo, ddb_client, table_name):
    for number in (3, 1, 2):
        repo.add(application(number))
    ddb_client.put_item(TableName=table_name, Item={**key("DSP#x", "DSP"), "status": {"S": "x"}})
    assert repo.list() == [application(1), application(2), application(3)]


def test_list_of_an_empty_table_is_empty(repo):
    assert repo.list() == []
