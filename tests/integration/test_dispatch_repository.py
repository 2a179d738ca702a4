"""The DispatchRepository contract, run against the in-memory fake and DynamoDB (moto).

Both must agree, since service tests use the fake in place of the table.
"""
from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings

from chalicelib.adapters.dispatch_codec import decode, dispatch_key
from chalicelib.adapters.dynamodb_dispatches import DynamoDispatchRepository, message_key
from chalicelib.domain.errors import ConcurrentUpdate, DispatchExists
from chalicelib.domain.model import (
    Channel,
    Condition,
    Dispatch,
    DispatchStatus,
    MessageStatus,
    Phase,
    StatusRecord,
    Step,
    StepSpec,
)
from chalicelib.service.ports import MessageRef
from tests.fake_repository import InMemoryDispatchRepository
from tests.unit.test_dispatch_codec import dispatches

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def new_dispatch(dispatch_uuid: str = "4f1c2b8e-0000-4000-8000-000000000001") -> Dispatch:
    def spec(channel: Channel, condition: Condition | None) -> StepSpec:
        return StepSpec(
            channel=channel,
            to={"type": channel.value, "number": "447700900000"},
            sender={"type": channel.value, "number": "447700900001"},
            message={"content": {"type": "text", "text": "hello"}, "ttl": 600},
            condition=condition,
            expiry_time=600 if condition else None,
        )

    steps = (
        Step(index=0, spec=spec(Channel.WHATSAPP, Condition.READ), message_uuid="msg-0"),
        Step(index=1, spec=spec(Channel.SMS, None), message_uuid="msg-1"),
    )
    return Dispatch(
        dispatch_uuid=dispatch_uuid, application_id="app-1", steps=steps,
        created_at=T0, updated_at=T0,
    )


def sent(dispatch: Dispatch, provider_message_id: str = "wamid.1") -> Dispatch:
    """The dispatch after its first step was accepted by the provider."""
    at = T0 + timedelta(seconds=1)
    step = dataclasses.replace(
        dispatch.steps[0], phase=Phase.WAITING, status=MessageStatus.SUBMITTED, attempts=1,
        provider="whatsapp", provider_message_id=provider_message_id, started_at=at, sent_at=at,
        deadline=at + timedelta(seconds=600),
        history=(StatusRecord(MessageStatus.SUBMITTED, at),),
    )
    return dataclasses.replace(
        dispatch, steps=(step,) + dispatch.steps[1:], updated_at=at, due_at=step.deadline
    )


def ref(dispatch: Dispatch, provider_message_id: str = "wamid.1", step_index: int = 0):
    return MessageRef("whatsapp", provider_message_id, dispatch.dispatch_uuid, step_index)


@pytest.fixture(params=["memory", "dynamodb"])
def repo(request):
    if request.param == "memory":
        return InMemoryDispatchRepository()
    client = request.getfixturevalue("ddb_client")
    return DynamoDispatchRepository(client, request.getfixturevalue("table_name"))


class TestDispatchRepositoryContract:
    def test_add_then_get_round_trips_at_version_1(self, repo):
        added = repo.add(new_dispatch())

        assert added == dataclasses.replace(new_dispatch(), version=1)
        assert repo.get(added.dispatch_uuid) == added

    def test_get_unknown_is_none(self, repo):
        assert repo.get("no-such-dispatch") is None

    def test_add_twice_raises_dispatch_exists_and_keeps_the_first(self, repo):
        first = repo.add(new_dispatch())

        with pytest.raises(DispatchExists):
            repo.add(dataclasses.replace(new_dispatch(), application_id="app-2"))
        assert repo.get(first.dispatch_uuid) == first

    def test_add_refuses_a_dispatch_already_saved(self, repo):
        with pytest.raises(ValueError, match="version 0"):
            repo.add(dataclasses.replace(new_dispatch(), version=3))

    def test_save_with_the_current_version_moves_it_on(self, repo):
        added = repo.add(new_dispatch())

        saved = repo.save(sent(added))

        assert saved.version == 2
        assert saved == dataclasses.replace(sent(added), version=2)
        assert repo.get(added.dispatch_uuid) == saved

    def test_stale_save_raises_concurrent_update_and_changes_nothing(self, repo):
        added = repo.add(new_dispatch())
        winner = repo.save(sent(added))

        loser = dataclasses.replace(added, status=DispatchStatus.ERROR)
        with pytest.raises(ConcurrentUpdate):
            repo.save(loser)
        assert repo.get(added.dispatch_uuid) == winner

    def test_save_of_an_absent_dispatch_is_a_concurrent_update(self, repo):
        with pytest.raises(ConcurrentUpdate):
            repo.save(dataclasses.replace(new_dispatch(), version=1))
        assert repo.get(new_dispatch().dispatch_uuid) is None

    def test_save_with_message_refs_makes_them_findable(self, repo):
        added = repo.add(new_dispatch())

        repo.save(sent(added), [ref(added, "wamid.1"), ref(added, "wamid.2", step_index=1)])

        assert repo.find_message("whatsapp", "wamid.1") == ref(added, "wamid.1")
        assert repo.find_message("whatsapp", "wamid.2") == ref(added, "wamid.2", step_index=1)

    def test_a_save_that_loses_its_race_still_leaves_its_refs(self, repo):
        # The message was sent: a webhook for it must still find its step, whoever won the race.
        added = repo.add(new_dispatch())
        winner = repo.save(sent(added, "wamid.first"), [ref(added, "wamid.first")])

        with pytest.raises(ConcurrentUpdate):
            repo.save(sent(added, "wamid.second"), [ref(added, "wamid.second")])
        assert repo.find_message("whatsapp", "wamid.second") == ref(added, "wamid.second")
        assert repo.get(added.dispatch_uuid) == winner

    def test_resaving_the_same_ref_succeeds(self, repo):
        added = repo.add(new_dispatch())
        first = repo.save(sent(added), [ref(added)])

        second = repo.save(first, [ref(added), ref(added)])

        assert second.version == 3
        assert repo.find_message("whatsapp", "wamid.1") == ref(added)

    def test_a_ref_of_another_dispatch_is_refused_before_the_dispatch_is_written(self, repo):
        other = repo.add(new_dispatch("4f1c2b8e-0000-4000-8000-000000000002"))
        repo.save(sent(other), [ref(other)])
        added = repo.add(new_dispatch())

        with pytest.raises(ValueError, match="another dispatch"):
            repo.save(sent(added), [ref(added)])
        assert repo.find_message("whatsapp", "wamid.1") == ref(other)
        assert repo.get(added.dispatch_uuid) == added

    def test_find_message_for_an_unknown_id_is_none(self, repo):
        added = repo.add(new_dispatch())
        repo.save(sent(added), [ref(added)])

        assert repo.find_message("whatsapp", "wamid.unknown") is None
        assert repo.find_message("viber", "wamid.1") is None


# --- DynamoDB only ----------------------------------------------------------------------------


@pytest.fixture
def dynamo(ddb_client, table_name):
    return DynamoDispatchRepository(ddb_client, table_name, retention_days=30)


def _raw(ddb_client, table_name, item_key):
    return ddb_client.get_item(TableName=table_name, Key=item_key, ConsistentRead=True)["Item"]


def test_items_carry_the_ttl_attribute(dynamo, ddb_client, table_name):
    added = dynamo.add(new_dispatch())
    dynamo.save(sent(added), [ref(added)])
    expected = str(int((T0 + timedelta(days=30)).timestamp()))

    dispatch_item = _raw(ddb_client, table_name, dispatch_key(added.dispatch_uuid))
    message_item = _raw(ddb_client, table_name, message_key("whatsapp", "wamid.1"))

    assert dispatch_item["expires_at"] == {"N": expected}
    assert message_item["expires_at"] == {"N": expected}
    assert dispatch_item["version"] == {"N": "2"}


def test_each_operation_makes_one_call_per_item_it_writes(dynamo, ddb_client):
    calls: Counter[str] = Counter()

    def count(event_name, **kwargs):
        calls[event_name.rsplit(".", 1)[-1]] += 1

    ddb_client.meta.events.register("before-call.dynamodb.*", count)

    def calls_of(operation) -> Counter[str]:
        calls.clear()
        operation()
        return +calls

    added = dynamo.add(new_dispatch())
    assert calls_of(lambda: dynamo.add(new_dispatch("other"))) == {"PutItem": 1}
    assert calls_of(lambda: dynamo.get(added.dispatch_uuid)) == {"GetItem": 1}
    saved = dynamo.save(sent(added))
    assert calls_of(lambda: dynamo.save(saved)) == {"PutItem": 1}
    assert calls_of(lambda: dynamo.save(dataclasses.replace(saved, version=3), [ref(saved)])) == {
        "PutItem": 2
    }
    assert calls_of(lambda: dynamo.find_message("whatsapp", "wamid.1")) == {"GetItem": 1}
    with pytest.raises(ConcurrentUpdate):
        calls_of(lambda: dynamo.save(saved, [ref(saved)]))
    assert calls == {"PutItem": 2}


def test_an_oversized_dispatch_is_a_value_error(dynamo):
    added = dynamo.add(new_dispatch())
    step = dataclasses.replace(
        added.steps[0],
        spec=dataclasses.replace(added.steps[0].spec, message={"content": {"text": "x" * 420_000}}),
    )
    huge = dataclasses.replace(added, steps=(step,))

    with pytest.raises(ValueError, match="400 KB"):
        dynamo.save(huge)
    with pytest.raises(ValueError, match="400 KB"):
        dynamo.save(huge, [ref(added)])
    with pytest.raises(ValueError, match="400 KB"):
        dynamo.add(dataclasses.replace(huge, dispatch_uuid="other", version=0))
    assert dynamo.get(added.dispatch_uuid) == added


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(dispatch=dispatches)
def test_any_dispatch_survives_a_real_table_round_trip(ddb_client, table_name, dispatch):
    # A fresh uuid per example, so sharing one table across examples is harmless.
    repo = DynamoDispatchRepository(ddb_client, table_name)
    stored = repo.add(dataclasses.replace(dispatch, dispatch_uuid=str(uuid.uuid4()), version=0))

    assert repo.get(stored.dispatch_uuid) == stored
    assert decode(_raw(ddb_client, table_name, dispatch_key(stored.dispatch_uuid))) == stored


# --- the fake's race controls -----------------------------------------------------------------


def test_fake_can_lose_the_next_save_to_a_concurrent_writer():
    repo = InMemoryDispatchRepository()
    added = repo.add(new_dispatch())
    repo.fail_next_save_with_conflict(
        lambda d: dataclasses.replace(d, status=DispatchStatus.COMPLETED)
    )

    with pytest.raises(ConcurrentUpdate):
        repo.save(sent(added))
    stored = repo.get(added.dispatch_uuid)
    assert (stored.status, stored.version) == (DispatchStatus.COMPLETED, 2)
    assert repo.save(sent(stored)).version == 3
