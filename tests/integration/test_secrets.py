"""SecretsManagerStore against moto's Secrets Manager, with its cache on an injected clock."""
from __future__ import annotations

import boto3
import pytest

from chalicelib.adapters.secrets import SecretsManagerStore

NAME = "dispatch/applications/app-1/signature-secret"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(aws):
    return boto3.client("secretsmanager", region_name="eu-west-1")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(client, clock) -> SecretsManagerStore:
    return SecretsManagerStore(client, ttl_seconds=300, clock=clock)


def test_put_creates_the_secret(store, client):
    store.put(NAME, "first")
    assert client.get_secret_value(SecretId=NAME)["SecretString"] == "first"


def test_put_on_an_existing_secret_stores_a_new_value(store, client):
    store.put(NAME, "first")
    store.put(NAME, "second")
    assert client.get_secret_value(SecretId=NAME)["SecretString"] == "second"
    assert store.get(NAME) == "second"


def test_get_reads_a_secret_written_elsewhere(store, client):
    client.create_secret(Name=NAME, SecretString="from-elsewhere")
    assert store.get(NAME) == "from-elsewhere"


def test_get_of_a_missing_secret_is_a_key_error(store):
    with pytest.raises(KeyError):
        store.get("dispatch/applications/none/signature-secret")


def test_get_serves_from_cache_within_the_ttl(store, client, clock):
    client.create_secret(Name=NAME, SecretString="old")
    assert store.get(NAME) == "old"
    client.put_secret_value(SecretId=NAME, SecretString="new")
    clock.now += 299
    assert store.get(NAME) == "old"


def test_get_reads_again_once_the_ttl_has_passed(store, client, clock):
    client.create_secret(Name=NAME, SecretString="old")
    store.get(NAME)
    client.put_secret_value(SecretId=NAME, SecretString="new")
    clock.now += 300
    assert store.get(NAME) == "new"


def test_put_refreshes_the_cache_at_once(store, client):
    client.create_secret(Name=NAME, SecretString="old")
    store.get(NAME)
    store.put(NAME, "rotated")
    assert store.get(NAME) == "rotated"


def test_cached_get_makes_no_call(store, client, monkeypatch):
    store.put(NAME, "value")
    monkeypatch.setattr(client, "get_secret_value", lambda **_: pytest.fail("called AWS"))
    assert store.get(NAME) == "value"
