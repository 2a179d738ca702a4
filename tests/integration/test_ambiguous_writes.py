"""A write applied whose answer was lost: botocore retries it, and the retry meets that write.

Found by the fault campaign's moto mode (`python -m tests.campaign --backend moto`): DynamoDB
applied a conditional write, the caller saw a read timeout, botocore's retry then failed the
condition on the write's own result. The adapters must tell their own write from a concurrent
one, or a stored dispatch is reported as a clash (DispatchExists: the client is answered an
error for a dispatch that then runs), a save's effects are dropped (ConcurrentUpdate: the
re-read state needs no further change, so the step it decided is never sent), and a drain locks
itself out of its own lease until it runs out.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ReadTimeoutError

from chalicelib.adapters.dynamodb_callbacks import DynamoCallbackStore
from chalicelib.adapters.dynamodb_dispatches import DynamoDispatchRepository
from chalicelib.domain import transitions
from chalicelib.domain.errors import ConcurrentUpdate
from chalicelib.domain.model import Channel, StepSpec
from tests.service_harness import application

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
D1 = "4f1c2b8e-0000-4000-8000-000000000001"


class LostAnswers:
    """moto's `before-send` handler, except that the first attempt of the named operations is
    applied and then answered with a read timeout."""

    def __init__(self, client, operations):
        from moto.core.models import botocore_stubber

        self._moto = botocore_stubber
        self._operations = set(operations)
        self.lost = 0
        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register("before-send", self)

    def __call__(self, request, event_name, **kwargs):
        response = self._moto(event_name=event_name, request=request, **kwargs)
        first = "attempt=1;" in str(request.headers.get("amz-sdk-request", ""))
        if first and event_name.rsplit(".", 1)[1] in self._operations:
            self.lost += 1
            raise ReadTimeoutError(endpoint_url=request.url)
        return response


def new_dispatch():
    spec = StepSpec(
        channel=Channel.SMS,
        to={"type": "sms", "number": "447700900000"},
        sender={"type": "sms", "number": "447700900001"},
        message={"content": {"type": "text", "text": "hi"}},
    )
    return transitions.start(D1, application().application_id, [spec], T0, transitions.Policy()).dispatch


@pytest.fixture
def faulty(ddb_client, table_name):
    import boto3

    client = boto3.client("dynamodb", region_name="eu-west-1")
    return client, table_name


def test_an_add_whose_answer_was_lost_is_stored_once_and_returns(faulty, ddb_client):
    client, table = faulty
    lost = LostAnswers(client, {"PutItem"})

    stored = DynamoDispatchRepository(client, table).add(new_dispatch())

    assert lost.lost == 1 and stored.version == 1
    assert DynamoDispatchRepository(ddb_client, table).get(D1) == stored


def test_a_save_whose_answer_was_lost_returns_the_saved_dispatch(faulty, ddb_client):
    client, table = faulty
    plain = DynamoDispatchRepository(ddb_client, table)
    first = plain.add(new_dispatch())
    LostAnswers(client, {"PutItem"})

    saved = DynamoDispatchRepository(client, table).save(dataclasses.replace(first, current=0))

    assert saved.version == 2
    assert plain.get(D1) == saved


def test_a_save_that_lost_to_another_writer_still_raises(faulty, ddb_client):
    client, table = faulty
    plain = DynamoDispatchRepository(ddb_client, table)
    first = plain.add(new_dispatch())
    plain.save(first)  # another input saved version 2 first
    LostAnswers(client, {"PutItem"})

    with pytest.raises(ConcurrentUpdate):
        DynamoDispatchRepository(client, table).save(first)


def test_a_claim_whose_answer_was_lost_holds_the_lease(faulty, ddb_client):
    client, table = faulty
    LostAnswers(client, {"UpdateItem"})
    store = DynamoCallbackStore(client, table)

    stream = store.claim(D1, "drain-1", T0, T0 + timedelta(seconds=120))

    assert stream is not None
    # ...and it really is held: another drain is refused until it runs out.
    assert DynamoCallbackStore(ddb_client, table).claim(D1, "drain-2", T0, T0 + timedelta(seconds=120)) is None


def test_a_claim_held_by_another_drain_is_still_refused(faulty, ddb_client):
    client, table = faulty
    DynamoCallbackStore(ddb_client, table).claim(D1, "drain-1", T0, T0 + timedelta(seconds=120))
    LostAnswers(client, {"UpdateItem"})

    assert DynamoCallbackStore(client, table).claim(D1, "drain-2", T0, T0 + timedelta(seconds=120)) is None


def test_a_token_use_whose_answer_was_lost_is_still_its_first_use(faulty, ddb_client):
    from chalicelib.adapters.dynamodb_token_uses import DynamoTokenUses

    client, table_name = faulty
    lost = LostAnswers(client, {"PutItem"})
    uses = DynamoTokenUses(client, table_name)
    assert uses.first_use("app-1", "jti-1", T0 + timedelta(minutes=15)) is True
    assert lost.lost == 1
    # A true replay is still refused.
    assert DynamoTokenUses(ddb_client, table_name).first_use("app-1", "jti-1", T0 + timedelta(minutes=15)) is False
