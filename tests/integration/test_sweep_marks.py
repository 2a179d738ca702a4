"""The SweepMarks contract, for the in-memory fake and DynamoDB (moto)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.adapters.dynamodb_sweep_marks import DynamoSweepMarks
from tests.fake_repository import InMemorySweepMarks
from tests.fakes import T0


@pytest.fixture(params=["memory", "dynamodb"])
def marks(request):
    if request.param == "memory":
        return InMemorySweepMarks()
    ddb_client, table_name = request.getfixturevalue("ddb_client"), request.getfixturevalue("table_name")
    return DynamoSweepMarks(ddb_client, table_name)


def test_nothing_is_marked_before_a_run_finishes(marks):
    assert marks.swept_to() is None


def test_the_latest_cutoff_stands_whatever_order_the_marks_come_in(marks):
    marks.mark_swept(T0)
    marks.mark_swept(T0 + timedelta(minutes=2))
    marks.mark_swept(T0 + timedelta(minutes=1))  # a slower run finishing last

    assert marks.swept_to() == T0 + timedelta(minutes=2)
