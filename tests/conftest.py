"""Fixtures shared by every test folder."""
from __future__ import annotations

import os

import boto3
import pytest

# Tests never reach AWS: dummy credentials and a fixed region before any client exists.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

TABLE_NAME = "dispatch-test"


@pytest.fixture
def aws():
    """moto's in-process AWS for the duration of one test."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def ddb_client(aws):
    return boto3.client("dynamodb", region_name="eu-west-1")


@pytest.fixture
def table_name(ddb_client):
    """A fresh table in moto, created exactly as the local stack creates it."""
    from chalicelib.adapters.dynamodb_table import create_table

    create_table(ddb_client, TABLE_NAME)
    return TABLE_NAME
