"""The DispatchRepository contract, run against the in-memory fake and DynamoDB (moto).

Both must agree, since service tests use the fake in place of the table.
"""
from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings

from chalicelib.adapters.dispatch_codec import decode, dispatch_key
from chalicelib.adapters.dynamodb_dispatches import DynamoDispatchRepository, message_key
from chalicelib.domain.callbacks import CallbackKind, OutboxEntry
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
from tests.integration.dynamodb_calls import call_counter
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


def test_each_operation_makes_the_calls_the_docstring_counts(dynamo, ddb_client):
    calls_of = call_counter(ddb_client)

    added = dynamo.add(new_dispatch())
    assert calls_of(lambda: dynamo.add(new_dispatch("other"))) == {"PutItem": 1}
    assert calls_of(lambda: dynamo.get(added.dispatch_uuid)) == {"GetItem": 1}
    saved = dynamo.save(sent(added))
    assert calls_of(lambda: dynamo.save(saved)) == {"PutItem": 1}
    # A send is recorded with its index items in one round trip.
    assert calls_of(lambda: dynamo.save(dataclasses.replace(saved, version=3), [ref(saved)])) == {
        "TransactWriteItems": 1
    }
    assert calls_of(lambda: dynamo.find_message("whatsapp", "wamid.1")) == {"GetItem": 1}
    # A lost race: the transaction is cancelled, then the index item is written on its own.
    with pytest.raises(ConcurrentUpdate):
        calls_of(lambda: dynamo.save(saved, [ref(saved, "wamid.2")]))
    assert +calls_of.calls == {"TransactWriteItems": 1, "PutItem": 1}


def test_a_send_that_lost_only_the_recipient_to_a_later_send_is_still_recorded(dynamo, ddb_client):
    calls_of = call_counter(ddb_client)
    first, second = dynamo.add(new_dispatch(uuid_n(1))), dynamo.add(new_dispatch(uuid_n(2)))
    later = dataclasses.replace(ref(second, "wamid.late"), recipient="447700900000", sent_at=T0 + timedelta(seconds=5))
    earlier = dataclasses.replace(ref(first, "wamid.early"), recipient="447700900000", sent_at=T0)
    dynamo.save(sent(second, "wamid.late"), [later])

    recorded = calls_of(lambda: dynamo.save(sent(first, "wamid.early"), [earlier]))

    assert recorded == {"TransactWriteItems": 2}  # cancelled by the recipient alone, then again without it
    assert dynamo.get(first.dispatch_uuid).version == 2
    assert dynamo.find_message("whatsapp", "wamid.early") == ref(first, "wamid.early")
    assert dynamo.find_recipient("whatsapp", "447700900000") == later


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


# --- the sweeper's index: overdue() -----------------------------------------------------------


def uuid_n(n: int) -> str:
    return f"4f1c2b8e-0000-4000-8000-{n:012d}"


def due(n: int, at: datetime, current: int = 0) -> Dispatch:
    """A live dispatch whose pending check is due at `at`, on step `current`."""
    return dataclasses.replace(new_dispatch(uuid_n(n)), due_at=at, current=current)


def finished(dispatch: Dispatch) -> Dispatch:
    at = T0 + timedelta(seconds=30)
    return dataclasses.replace(
        dispatch, status=DispatchStatus.COMPLETED, due_at=None, ended_at=at, updated_at=at
    )


class TestOverdueContract:
    def test_lists_what_is_due_in_the_window_with_its_step_oldest_first(self, repo):
        since, cutoff = T0, T0 + timedelta(minutes=5)
        micro = timedelta(microseconds=1)
        repo.add(due(1, T0 + timedelta(minutes=3), current=1))
        repo.add(due(2, T0 + timedelta(minutes=1)))
        repo.add(due(3, since))  # both ends are inclusive
        repo.add(due(4, cutoff))
        repo.add(due(5, since - micro))  # same minute as `since`, but before it
        repo.add(due(6, cutoff + micro))  # same minute as `cutoff`, but after it
        repo.add(due(7, T0 + timedelta(minutes=10)))

        assert repo.overdue(cutoff, since) == [
            (uuid_n(3), 0, False),
            (uuid_n(2), 0, False),
            (uuid_n(1), 1, False),
            (uuid_n(4), 0, False),
        ]

    def test_a_final_dispatch_is_not_listed(self, repo):
        window = (T0 + timedelta(hours=1), T0 - timedelta(hours=1))
        added = repo.add(due(1, T0 + timedelta(minutes=1)))
        assert repo.overdue(*window) == [(uuid_n(1), 0, False)]

        repo.save(finished(added))

        assert repo.overdue(*window) == []

    def test_a_dispatch_whose_due_at_moves_leaves_its_old_minute(self, repo):
        added = repo.add(due(1, T0 + timedelta(minutes=1)))

        repo.save(dataclasses.replace(added, due_at=T0 + timedelta(minutes=30), current=1))

        assert repo.overdue(T0 + timedelta(minutes=10), T0) == []
        assert repo.overdue(T0 + timedelta(minutes=40), T0) == [(uuid_n(1), 1, False)]

    def test_minutes_across_an_hour_and_a_day_boundary(self, repo):
        midnight = datetime(2025, 3, 2, 0, 0, tzinfo=timezone.utc)
        times = [
            midnight - timedelta(seconds=61),
            midnight - timedelta(microseconds=1),
            midnight,
            midnight + timedelta(seconds=59, microseconds=999_999),
            midnight + timedelta(seconds=60),
        ]
        for n, at in enumerate(times):
            repo.add(due(n, at))

        listed = repo.overdue(midnight + timedelta(seconds=60), midnight - timedelta(seconds=90))

        assert listed == [(uuid_n(n), 0, False) for n in range(len(times))]

    def test_each_check_says_whether_it_is_a_backstop(self, repo):
        from chalicelib.domain import transitions
        from chalicelib.domain.actions import SendAccepted
        from chalicelib.domain.model import Channel, Condition, Policy, StepSpec

        specs = [
            StepSpec(Channel.WHATSAPP, {}, {}, {}, Condition.READ, 60),
            StepSpec(Channel.SMS, {}, {}, {}),
        ]
        sending = transitions.start(uuid_n(1), "app", specs, T0, Policy()).dispatch
        added = repo.add(sending)  # the send's guard: a backstop
        window = (T0 + timedelta(days=2), T0)
        assert repo.overdue(*window) == [(uuid_n(1), 0, True)]

        waiting = transitions.on_send_result(added, 0, SendAccepted("p", "m"), T0, Policy())
        repo.save(waiting.dispatch)  # the deadline: its timer's own check

        assert repo.overdue(*window) == [(uuid_n(1), 0, False)]

    def test_a_reversed_window_lists_nothing(self, repo):
        repo.add(due(1, T0))

        assert repo.overdue(T0 - timedelta(seconds=1), T0) == []


def _count_queries(ddb_client) -> list[dict]:
    """Every Query's parameters, and a Scan would fail the test outright."""
    queries: list[dict] = []

    def record(params, **_):
        queries.append(dict(params))

    def refuse(**_):
        raise AssertionError("the sweeper must never Scan the table")

    ddb_client.meta.events.register("provide-client-params.dynamodb.Query", record)
    ddb_client.meta.events.register("provide-client-params.dynamodb.Scan", refuse)
    return queries


def test_a_live_dispatch_carries_its_due_minute_and_a_final_one_none(dynamo, ddb_client, table_name):
    at = datetime(2025, 3, 1, 12, 34, 56, 789, tzinfo=timezone.utc)
    added = dynamo.add(due(1, at))
    item = _raw(ddb_client, table_name, dispatch_key(added.dispatch_uuid))
    assert item["due_minute"] == {"S": "2025-03-01T12:34"}
    assert item["due_at"] == {"S": "2025-03-01T12:34:56.000789Z"}
    assert decode(item) == added  # due_minute is envelope, not part of the dispatch

    dynamo.save(finished(added))

    item = _raw(ddb_client, table_name, dispatch_key(added.dispatch_uuid))
    assert "due_minute" not in item and "due_at" not in item


def test_overdue_is_one_index_query_per_minute_and_never_a_scan(dynamo, ddb_client):
    dynamo.add(due(1, T0 + timedelta(minutes=30)))
    queries = _count_queries(ddb_client)

    listed = dynamo.overdue(T0 + timedelta(minutes=59), T0)

    assert listed == [(uuid_n(1), 0, False)]
    minutes = [q["ExpressionAttributeValues"][":m"]["S"] for q in queries]
    assert minutes == [f"2025-03-01T12:{m:02d}" for m in range(60)]
    assert {q["IndexName"] for q in queries} == {"due"}
    # Every name and value goes through a placeholder (`current` is a reserved word).
    assert all("current" not in q["ProjectionExpression"] for q in queries)
    assert all("due_at" not in q["KeyConditionExpression"] for q in queries)


def test_overdue_follows_every_page_of_a_busy_minute(ddb_client, table_name):
    repo = DynamoDispatchRepository(ddb_client, table_name, query_page_size=2)
    for n in range(5):
        repo.add(due(n, T0 + timedelta(seconds=n)))
    repo.add(due(9, T0 + timedelta(minutes=1)))
    queries = _count_queries(ddb_client)

    listed = repo.overdue(T0 + timedelta(minutes=1), T0)

    assert listed == [(uuid_n(n), 0, False) for n in (0, 1, 2, 3, 4, 9)]
    first_minute = [q for q in queries if q["ExpressionAttributeValues"][":m"]["S"].endswith("12:00")]
    assert len(first_minute) == 3  # 2 + 2 + 1 items
    assert "ExclusiveStartKey" not in first_minute[0]
    assert all("ExclusiveStartKey" in q for q in first_minute[1:])


# --- the recipient index: find_recipient() ----------------------------------------------------


class TestRecipientContract:
    def test_a_send_to_someone_is_found_by_who_they_are(self, repo):
        added = repo.add(new_dispatch())
        mine = dataclasses.replace(ref(added), recipient="page:psid-1", sent_at=T0)

        repo.save(sent(added), [mine])

        assert repo.find_recipient("whatsapp", "page:psid-1") == mine
        assert repo.find_recipient("whatsapp", "page:psid-2") is None
        assert repo.find_recipient("messenger", "page:psid-1") is None

    def test_the_latest_send_wins_whatever_order_the_writes_come_in(self, repo):
        first = repo.add(new_dispatch(uuid_n(1)))
        second = repo.add(new_dispatch(uuid_n(2)))
        earlier = dataclasses.replace(ref(first, "wamid.early"), recipient="447700900000", sent_at=T0)
        later = dataclasses.replace(
            ref(second, "wamid.late"), recipient="447700900000", sent_at=T0 + timedelta(seconds=5)
        )

        repo.save(sent(second, "wamid.late"), [later])
        repo.save(sent(first, "wamid.early"), [earlier])  # recorded last, but sent first

        assert repo.find_recipient("whatsapp", "447700900000") == later

    def test_a_send_without_a_recipient_key_is_not_indexed_by_person(self, repo):
        added = repo.add(new_dispatch())
        repo.save(sent(added), [ref(added)])
        assert repo.find_message("whatsapp", "wamid.1") == ref(added)


# --- the callbacks outbox: prune_outbox() and unrelayed() -------------------------------------


def entry(seq: int, decided_at: datetime | None = None) -> OutboxEntry:
    return OutboxEntry(
        seq=seq,
        event_id=f"evt-{seq}",
        kind=CallbackKind.FINAL_REPORT if seq % 2 else CallbackKind.MESSAGE_STATUS,
        decided_at=decided_at or T0 + timedelta(seconds=seq),
        body=json.dumps({"seq": seq, "text": "héllo"}),
    )


def with_outbox(dispatch: Dispatch, *entries: OutboxEntry) -> Dispatch:
    return dataclasses.replace(dispatch, outbox=tuple(entries), callbacks=max((e.seq for e in entries), default=0))


class TestOutboxContract:
    def test_the_outbox_round_trips_through_add_save_and_get(self, repo):
        added = repo.add(with_outbox(new_dispatch(), entry(2), entry(10)))
        assert repo.get(added.dispatch_uuid) == added

        saved = repo.save(with_outbox(sent(added), entry(2), entry(10), entry(100)))

        assert repo.get(added.dispatch_uuid) == saved
        assert [e.seq for e in saved.outbox] == [2, 10, 100]

    def test_prune_removes_exactly_the_given_seqs_and_keeps_the_version(self, repo):
        added = repo.add(with_outbox(new_dispatch(), entry(1), entry(2), entry(3)))

        repo.prune_outbox(added, [1, 3])

        assert repo.get(added.dispatch_uuid) == dataclasses.replace(added, outbox=(entry(2),))
        repo.prune_outbox(added, [2])
        assert repo.get(added.dispatch_uuid) == dataclasses.replace(added, outbox=())
        # Still version 1: a save of what was read goes through.
        assert repo.save(sent(repo.get(added.dispatch_uuid))).version == 2

    def test_pruning_everything_leaves_an_empty_outbox(self, repo):
        added = repo.add(with_outbox(new_dispatch(), entry(1), entry(2)))

        repo.prune_outbox(added, [1, 2])

        assert repo.get(added.dispatch_uuid) == dataclasses.replace(added, outbox=())

    def test_prune_after_a_concurrent_save_keeps_what_that_save_added(self, repo):
        read = repo.add(with_outbox(new_dispatch(), entry(1), entry(2)))
        # Another writer saves in between: it keeps the entries it read and adds one.
        other = repo.save(with_outbox(sent(read), entry(1), entry(2), entry(3)))

        repo.prune_outbox(read, [1, 2])

        assert repo.get(read.dispatch_uuid) == dataclasses.replace(other, outbox=(entry(3),))

    def test_prune_after_a_concurrent_save_that_added_nothing_empties_the_outbox(self, repo):
        read = repo.add(with_outbox(new_dispatch(), entry(1)))
        other = repo.save(with_outbox(sent(read), entry(1)))

        repo.prune_outbox(read, [1])

        assert repo.get(read.dispatch_uuid) == dataclasses.replace(other, outbox=())
        assert repo.unrelayed(T0 + timedelta(hours=1), T0 - timedelta(hours=1)) == []

    def test_prune_of_nothing_or_of_an_unknown_dispatch_changes_nothing(self, repo):
        added = repo.add(with_outbox(new_dispatch(), entry(1)))

        repo.prune_outbox(added, [])
        repo.prune_outbox(with_outbox(new_dispatch(uuid_n(9)), entry(1)), [1])

        assert repo.get(added.dispatch_uuid) == added
        assert repo.get(uuid_n(9)) is None

    def test_unrelayed_lists_a_dispatch_with_an_old_entry_until_it_is_pruned(self, repo):
        window = (T0 + timedelta(minutes=5), T0)
        added = repo.add(with_outbox(new_dispatch(uuid_n(1)), entry(30)))
        repo.add(new_dispatch(uuid_n(2)))  # nothing in its outbox
        repo.add(with_outbox(new_dispatch(uuid_n(3)), entry(1, T0 + timedelta(minutes=6))))  # too new
        repo.add(with_outbox(new_dispatch(uuid_n(4)), entry(1, T0 - timedelta(microseconds=1))))
        assert repo.unrelayed(*window) == [uuid_n(1)]

        repo.prune_outbox(added, [30])

        assert repo.unrelayed(*window) == []

    def test_unrelayed_goes_by_the_oldest_entry_oldest_first(self, repo):
        since, cutoff = T0, T0 + timedelta(minutes=5)
        repo.add(with_outbox(new_dispatch(uuid_n(1)), entry(1, T0 + timedelta(minutes=3)), entry(2, T0 + timedelta(minutes=9))))
        repo.add(with_outbox(new_dispatch(uuid_n(2)), entry(1, since)))
        repo.add(with_outbox(new_dispatch(uuid_n(3)), entry(5, cutoff)))
        repo.add(with_outbox(new_dispatch(uuid_n(4)), entry(7, cutoff + timedelta(microseconds=1))))

        assert repo.unrelayed(cutoff, since) == [uuid_n(2), uuid_n(1), uuid_n(3)]

    def test_after_a_partial_prune_unrelayed_goes_by_the_oldest_entry_left(self, repo):
        added = repo.add(with_outbox(new_dispatch(), entry(1, T0), entry(2, T0 + timedelta(minutes=10))))
        early = (T0 + timedelta(minutes=1), T0 - timedelta(minutes=1))
        late = (T0 + timedelta(minutes=11), T0 + timedelta(minutes=9))
        assert (repo.unrelayed(*early), repo.unrelayed(*late)) == ([added.dispatch_uuid], [])

        repo.prune_outbox(added, [1])

        assert (repo.unrelayed(*early), repo.unrelayed(*late)) == ([], [added.dispatch_uuid])

    def test_after_a_prune_that_lost_a_race_unrelayed_goes_by_what_is_left(self, repo):
        read = repo.add(with_outbox(new_dispatch(), entry(1, T0)))
        repo.save(with_outbox(sent(read), entry(1, T0), entry(2, T0 + timedelta(minutes=10))))

        repo.prune_outbox(read, [1])

        assert repo.unrelayed(T0 + timedelta(minutes=1), T0 - timedelta(minutes=1)) == []
        assert repo.unrelayed(T0 + timedelta(minutes=11), T0) == [read.dispatch_uuid]

    def test_a_reversed_window_lists_nothing(self, repo):
        repo.add(with_outbox(new_dispatch(), entry(1, T0)))

        assert repo.unrelayed(T0 - timedelta(seconds=1), T0) == []


def test_an_outbox_puts_the_dispatch_in_the_relay_index_at_its_oldest_entry(dynamo, ddb_client, table_name):
    added = dynamo.add(with_outbox(new_dispatch(), entry(1, T0 + timedelta(minutes=2)), entry(2, T0)))
    item = _raw(ddb_client, table_name, dispatch_key(added.dispatch_uuid))
    assert item["relay_minute"] == {"S": "outbox#2025-03-01T12:00"}
    assert item["relay_at"] == {"S": "2025-03-01T12:00:00.123456Z"}
    assert set(item["outbox"]["M"]) == {"1", "2"}
    assert decode(item) == added

    dynamo.save(with_outbox(added))

    item = _raw(ddb_client, table_name, dispatch_key(added.dispatch_uuid))
    assert not {"outbox", "relay_minute", "relay_at"} & item.keys()


def test_a_full_prune_removes_the_outbox_and_its_index_keys(dynamo, ddb_client, table_name):
    added = dynamo.add(with_outbox(new_dispatch(), entry(1), entry(2)))

    dynamo.prune_outbox(added, [1, 2])

    item = _raw(ddb_client, table_name, dispatch_key(added.dispatch_uuid))
    assert not {"outbox", "relay_minute", "relay_at"} & item.keys()
    assert item["version"] == {"N": "1"}


def test_a_prune_that_lost_a_race_and_emptied_the_outbox_removes_it_and_its_keys(dynamo, ddb_client, table_name):
    read = dynamo.add(with_outbox(new_dispatch(), entry(1)))
    dynamo.save(with_outbox(sent(read), entry(1)))

    dynamo.prune_outbox(read, [1])

    item = _raw(ddb_client, table_name, dispatch_key(read.dispatch_uuid))
    assert not {"outbox", "relay_minute", "relay_at"} & item.keys()
    assert item["version"] == {"N": "2"}


def test_prune_and_unrelayed_make_the_calls_the_docstring_counts(dynamo, ddb_client):
    calls_of = call_counter(ddb_client)

    read = dynamo.add(with_outbox(new_dispatch(uuid_n(1)), entry(1), entry(2), entry(3)))
    assert calls_of(lambda: dynamo.prune_outbox(read, [])) == {}
    assert calls_of(lambda: dynamo.prune_outbox(read, [1])) == {"UpdateItem": 1}
    assert calls_of(lambda: dynamo.prune_outbox(read, [2, 3])) == {"UpdateItem": 1}

    # A save came in between, adding an entry older than the index keys say: 2 + 1 fix.
    read = dynamo.add(with_outbox(new_dispatch(uuid_n(2)), entry(1), entry(3)))
    dynamo.save(with_outbox(sent(read), entry(1), entry(2), entry(3)))
    assert calls_of(lambda: dynamo.prune_outbox(read, [1])) == {"UpdateItem": 3}
    assert dynamo.get(uuid_n(2)).outbox == (entry(2), entry(3))
    assert dynamo.unrelayed(T0 + timedelta(seconds=2), T0 + timedelta(seconds=2)) == [uuid_n(2)]

    # A save came in between and the keys stay right: 2.
    read = dynamo.add(with_outbox(new_dispatch(uuid_n(3)), entry(1), entry(2)))
    dynamo.save(with_outbox(sent(read), entry(1), entry(2), entry(3)))
    assert calls_of(lambda: dynamo.prune_outbox(read, [2])) == {"UpdateItem": 2}

    # A save came in between and left no outbox at all: 2.
    read = dynamo.add(with_outbox(new_dispatch(uuid_n(4)), entry(1)))
    dynamo.save(with_outbox(sent(read)))
    assert calls_of(lambda: dynamo.prune_outbox(read, [1])) == {"UpdateItem": 2}
    assert dynamo.get(uuid_n(4)).outbox == ()

    queries = _count_queries(ddb_client)
    assert calls_of(lambda: dynamo.unrelayed(T0 + timedelta(minutes=59), T0)) == {"Query": 60}
    assert [q["ExpressionAttributeValues"][":m"]["S"] for q in queries] == [
        f"outbox#2025-03-01T12:{m:02d}" for m in range(60)
    ]
    assert {q["IndexName"] for q in queries} == {"relay"}


def test_unrelayed_follows_every_page_of_a_busy_minute(ddb_client, table_name):
    repo = DynamoDispatchRepository(ddb_client, table_name, query_page_size=2)
    for n in range(5):
        repo.add(with_outbox(new_dispatch(uuid_n(n)), entry(1, T0 + timedelta(seconds=n))))

    assert repo.unrelayed(T0 + timedelta(minutes=1), T0) == [uuid_n(n) for n in range(5)]
