"""The CallbackStore contract, run against the in-memory fake and DynamoDB (moto).

Both must agree, since the relay's and the callbacks API's tests use the fake in place of the
table.
"""
from __future__ import annotations

import base64
import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.adapters.dynamodb_callbacks import DynamoCallbackStore, record_key, stream_key
from chalicelib.domain.callbacks import Attempt, CallbackKind, CallbackRecord, DeliveryState
from chalicelib.service.ports import CallbackStream, InvalidCursor
from tests.fake_callbacks import InMemoryCallbackStore
from tests.integration.dynamodb_calls import call_counter

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=120)
D1 = "4f1c2b8e-0000-4000-8000-000000000001"
D2 = "4f1c2b8e-0000-4000-8000-000000000002"


def record(seq: int, dispatch_uuid: str = D1, application_id: str = "app-1", **changes) -> CallbackRecord:
    base = CallbackRecord(
        dispatch_uuid=dispatch_uuid,
        application_id=application_id,
        seq=seq,
        event_id=f"evt-{dispatch_uuid[-4:]}-{seq}",
        kind=CallbackKind.MESSAGE_STATUS,
        decided_at=T0 + timedelta(seconds=seq),
        body=json.dumps({"seq": seq, "text": "héllo"}),
        window_from=T0 + timedelta(seconds=seq),
    )
    return dataclasses.replace(base, **changes)


def dead(seq: int, at: datetime, dispatch_uuid: str = D1, application_id: str = "app-1") -> CallbackRecord:
    return record(
        seq,
        dispatch_uuid,
        application_id,
        state=DeliveryState.DEAD,
        attempts=(Attempt(at, status_code=410, duration_ms=12),),
        dead_at=at,
        dead_reason="410",
    )


@pytest.fixture(params=["memory", "dynamodb"])
def store(request):
    if request.param == "memory":
        return InMemoryCallbackStore()
    client = request.getfixturevalue("ddb_client")
    return DynamoCallbackStore(client, request.getfixturevalue("table_name"))


def all_dead(store, application_id: str, limit: int) -> list[CallbackRecord]:
    """Walk every page. DynamoDB may end on an empty page (its key names a full last page)."""
    listed: list[CallbackRecord] = []
    page, cursor = store.dead(application_id, limit)
    pages = 1
    while True:
        assert len(page) <= limit
        listed.extend(page)
        if cursor is None:
            return listed
        page, cursor = store.dead(application_id, limit, cursor)
        pages += 1
        assert pages < 50, "the cursor never ran out"


class TestLease:
    def test_a_second_owner_is_kept_out_until_the_lease_runs_out(self, store):
        assert store.claim(D1, "a", T0, T0 + LEASE) == CallbackStream()

        assert store.claim(D1, "b", T0 + timedelta(seconds=1), T0 + LEASE) is None
        assert store.claim(D1, "a", T0 + LEASE - timedelta(microseconds=1), T0 + LEASE) is None
        assert store.claim(D1, "b", T0 + LEASE, T0 + 2 * LEASE) == CallbackStream()
        assert store.claim(D1, "a", T0 + LEASE, T0 + 3 * LEASE) is None

    def test_leases_of_different_dispatches_are_independent(self, store):
        assert store.claim(D1, "a", T0, T0 + LEASE) is not None
        assert store.claim(D2, "b", T0, T0 + LEASE) is not None

    def test_release_frees_the_lease_at_once(self, store):
        store.claim(D1, "a", T0, T0 + LEASE)

        store.release(D1, "a", next_at=None)

        assert store.claim(D1, "b", T0 + timedelta(seconds=1), T0 + LEASE) is not None

    def test_a_release_by_another_owner_is_ignored(self, store):
        store.claim(D1, "a", T0, T0 + LEASE)
        store.release(D1, "a", next_at=T0 + timedelta(minutes=5))
        store.claim(D1, "b", T0 + timedelta(seconds=1), T0 + timedelta(seconds=1) + LEASE)

        store.release(D1, "a", next_at=None)  # "a" let go already: "b" holds the lease
        store.release(D1, "nobody", next_at=None)

        assert store.claim(D1, "c", T0 + timedelta(seconds=2), T0 + LEASE) is None
        window = (T0 + timedelta(hours=1), T0)
        assert store.stalled(*window) == [D1]  # "b"'s mark (its lease's end) still stands

    def test_release_of_a_dispatch_never_claimed_is_ignored(self, store):
        store.release(D1, "a", next_at=T0)

        assert store.stalled(T0 + timedelta(hours=1), T0 - timedelta(hours=1)) == []
        assert store.claim(D1, "a", T0, T0 + LEASE) == CallbackStream()


class TestReplay:
    def test_a_requested_replay_is_reported_by_the_next_claim(self, store):
        replay_at = T0 + timedelta(seconds=5)
        store.request_replay(D1, replay_at)

        assert store.claim(D1, "a", T0 + timedelta(seconds=6), T0 + LEASE) == CallbackStream(
            replay_at=replay_at
        )

    def test_a_requested_replay_marks_the_stream_due_so_a_lost_nudge_is_made_up_for(self, store):
        store.request_replay(D1, T0)

        assert store.stalled(T0 + timedelta(minutes=2), T0 - timedelta(minutes=1)) == [D1]
        stream = store.claim(D1, "a", T0, T0 + LEASE)
        store.release(D1, "a", next_at=None, replay_applied=stream.replay_at)
        assert store.stalled(T0 + timedelta(hours=1), T0 - timedelta(hours=1)) == []

    def test_a_replay_reported_and_not_applied_is_reported_again(self, store):
        store.request_replay(D1, T0)
        store.claim(D1, "a", T0, T0 + LEASE)
        store.release(D1, "a", next_at=None)  # this drain did not carry it out

        assert store.claim(D1, "b", T0 + timedelta(seconds=1), T0 + LEASE) == CallbackStream(T0)

    def test_an_applied_replay_is_not_reported_again_but_a_later_one_is(self, store):
        store.request_replay(D1, T0)
        stream = store.claim(D1, "a", T0, T0 + LEASE)
        store.release(D1, "a", next_at=None, replay_applied=stream.replay_at)

        assert store.claim(D1, "b", T0 + timedelta(seconds=1), T0 + LEASE) == CallbackStream()
        store.release(D1, "b", next_at=None)

        later = T0 + timedelta(seconds=2)
        store.request_replay(D1, later)
        assert store.claim(D1, "c", T0 + timedelta(seconds=3), T0 + LEASE) == CallbackStream(later)

    def test_a_replay_requested_while_a_drain_holds_the_lease_waits_for_the_next_claim(self, store):
        store.claim(D1, "a", T0, T0 + LEASE)
        store.request_replay(D1, T0 + timedelta(seconds=1))
        store.release(D1, "a", next_at=None)  # it claimed before the request: not applied

        stream = store.claim(D1, "b", T0 + timedelta(seconds=2), T0 + LEASE)

        assert stream == CallbackStream(T0 + timedelta(seconds=1))


class TestRecords:
    def test_records_round_trip_exactly_and_come_by_seq(self, store):
        at = T0 + timedelta(minutes=1)
        paris = timezone(timedelta(hours=1))
        full = record(
            10,
            kind=CallbackKind.FINAL_REPORT,
            attempts=(
                Attempt(at, status_code=503, duration_ms=250),
                Attempt(at + timedelta(seconds=10), error="timeout", duration_ms=5000),
                Attempt(at + timedelta(seconds=30), error="connection"),
                Attempt(at + timedelta(seconds=50)),
            ),
            next_at=(at + timedelta(minutes=2)).astimezone(paris),
            window_from=at,
            replays=3,
        )
        dead_one = dataclasses.replace(dead(100, at), kind=CallbackKind.INBOUND, body="")
        delivered = record(
            2,
            state=DeliveryState.DELIVERED,
            attempts=(Attempt(at, status_code=204, duration_ms=0),),
            window_from=None,
        )
        for r in (full, dead_one, delivered):
            store.put(r)
        store.put(record(1, D2))

        assert store.records(D1) == [delivered, full, dead_one]
        assert store.records(D2) == [record(1, D2)]
        assert store.records("no-such-dispatch") == []

    def test_records_keep_their_order_beside_a_stream(self, store):
        # The stream lives in the same partition as the records; it is not one of them.
        store.claim(D1, "a", T0, T0 + LEASE)
        store.request_replay(D1, T0)
        for seq in (100, 2, 10):
            store.put(record(seq))

        assert [r.seq for r in store.records(D1)] == [2, 10, 100]

    def test_put_replaces_the_record(self, store):
        first = record(1)
        store.put(first)
        second = dataclasses.replace(
            first, state=DeliveryState.DELIVERED, attempts=(Attempt(T0, status_code=200),)
        )

        store.put(second)

        assert store.records(D1) == [second]

    def test_a_dead_record_must_say_when_it_died(self, store):
        with pytest.raises(ValueError, match="dead_at"):
            store.put(dataclasses.replace(dead(1, T0), dead_at=None))


class TestDeadList:
    def test_lists_only_the_applications_own_dead_latest_first(self, store):
        store.put(dead(1, T0 + timedelta(seconds=1)))
        store.put(dead(2, T0 + timedelta(seconds=3)))
        store.put(dead(1, T0 + timedelta(seconds=2), D2))
        store.put(dead(3, T0 + timedelta(seconds=4), application_id="app-2"))
        store.put(record(4))  # pending
        store.put(dataclasses.replace(record(5), state=DeliveryState.DELIVERED))

        listed, cursor = store.dead("app-1", 10)

        assert listed == [
            dead(2, T0 + timedelta(seconds=3)),
            dead(1, T0 + timedelta(seconds=2), D2),
            dead(1, T0 + timedelta(seconds=1)),
        ]
        assert cursor is None
        assert store.dead("app-2", 10) == ([dead(3, T0 + timedelta(seconds=4), application_id="app-2")], None)
        assert store.dead("app-3", 10) == ([], None)

    @pytest.mark.parametrize("limit", [1, 2, 3, 7])
    def test_pages_cover_the_list_once_in_order(self, store, limit):
        expected = []
        for n in range(7):
            dispatch_uuid = (D1, D2)[n % 2]
            expected.append(dead(n + 1, T0 + timedelta(seconds=n), dispatch_uuid))
            store.put(expected[-1])
        store.put(dead(1, T0 + timedelta(seconds=3), "d-other", application_id="app-2"))

        assert all_dead(store, "app-1", limit) == expected[::-1]

    def test_records_that_died_at_the_same_moment_are_each_listed_once(self, store):
        same = [dead(seq, T0, dispatch_uuid) for seq in (1, 2, 3) for dispatch_uuid in (D1, D2)]
        for r in same:
            store.put(r)

        listed = all_dead(store, "app-1", 2)

        assert sorted(listed, key=lambda r: (r.dispatch_uuid, r.seq)) == sorted(
            same, key=lambda r: (r.dispatch_uuid, r.seq)
        )

    def test_a_record_put_back_to_pending_leaves_the_list(self, store):
        gone = dead(1, T0)
        store.put(gone)
        store.put(dead(2, T0 + timedelta(seconds=1)))

        store.put(gone.replayed(T0 + timedelta(minutes=1)))

        assert store.dead("app-1", 10) == ([dead(2, T0 + timedelta(seconds=1))], None)

    def test_a_cursor_of_another_application_is_refused(self, store):
        for n in range(3):
            store.put(dead(n + 1, T0 + timedelta(seconds=n)))
            store.put(dead(n + 1, T0 + timedelta(seconds=n), D2, application_id="app-2"))
        _, cursor = store.dead("app-1", 1)
        assert cursor is not None

        with pytest.raises(InvalidCursor):
            store.dead("app-2", 1, cursor)

    @pytest.mark.parametrize("garbage", ["", "not a cursor!", "e30=", "bnVsbA==", "W10=", "é"])
    def test_a_garbage_cursor_is_refused(self, store, garbage):
        store.put(dead(1, T0))

        with pytest.raises(InvalidCursor):
            store.dead("app-1", 1, garbage)


class TestStalled:
    def test_lists_streams_due_in_the_window_oldest_first(self, store):
        since, cutoff = T0, T0 + timedelta(minutes=5)
        micro = timedelta(microseconds=1)
        dues = {1: T0 + timedelta(minutes=3), 2: since, 3: cutoff, 4: since - micro, 5: cutoff + micro}
        for n, at in dues.items():
            dispatch_uuid = f"d-{n}"
            store.claim(dispatch_uuid, "a", T0 - timedelta(hours=1), T0 - timedelta(minutes=59))
            store.release(dispatch_uuid, "a", next_at=at)

        assert store.stalled(cutoff, since) == ["d-2", "d-1", "d-3"]

    def test_a_stream_released_with_nothing_pending_is_not_listed(self, store):
        store.claim(D1, "a", T0, T0 + LEASE)
        store.release(D1, "a", next_at=T0 + timedelta(minutes=1))
        window = (T0 + timedelta(hours=1), T0)
        assert store.stalled(*window) == [D1]

        store.claim(D1, "b", T0 + timedelta(minutes=1), T0 + timedelta(minutes=1) + LEASE)
        store.release(D1, "b", next_at=None)

        assert store.stalled(*window) == []

    def test_a_drain_that_dies_holding_the_lease_is_found_when_it_runs_out(self, store):
        store.claim(D1, "a", T0, T0 + LEASE)  # and never released

        assert store.stalled(T0 + LEASE - timedelta(microseconds=1), T0) == []
        assert store.stalled(T0 + LEASE, T0) == [D1]

    def test_a_reversed_window_lists_nothing(self, store):
        store.claim(D1, "a", T0 - LEASE, T0)

        assert store.stalled(T0 - timedelta(seconds=1), T0) == []

    def test_minutes_across_midnight(self, store):
        midnight = datetime(2025, 3, 2, tzinfo=timezone.utc)
        times = [midnight - timedelta(seconds=61), midnight - timedelta(microseconds=1), midnight]
        for n, at in enumerate(times):
            store.claim(f"d-{n}", "a", at - LEASE, at)

        assert store.stalled(midnight, midnight - timedelta(seconds=90)) == ["d-0", "d-1", "d-2"]


# --- DynamoDB only ----------------------------------------------------------------------------


@pytest.fixture
def dynamo(ddb_client, table_name):
    return DynamoCallbackStore(ddb_client, table_name, retention_days=30)


def _raw(ddb_client, table_name, item_key):
    return ddb_client.get_item(TableName=table_name, Key=item_key, ConsistentRead=True).get("Item")


def _cursor(plain: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode()


def test_a_record_item_is_laid_out_as_documented(dynamo, ddb_client, table_name):
    r = record(
        7,
        attempts=(Attempt(T0, status_code=500, duration_ms=3), Attempt(T0, error="timeout")),
        next_at=T0 + timedelta(seconds=30),
    )
    dynamo.put(r)

    item = _raw(ddb_client, table_name, record_key(D1, 7))

    assert item["pk"] == {"S": f"CB#{D1}"} and item["sk"] == {"S": "SEQ#00000007"}
    assert item["seq"] == {"N": "7"} and item["state"] == {"S": "pending"}
    assert item["decided_at"] == {"S": "2025-03-01T12:00:07.123456Z"}
    assert item["attempts"] == {
        "L": [
            {"M": {"at": {"S": "2025-03-01T12:00:00.123456Z"}, "status_code": {"N": "500"}, "duration_ms": {"N": "3"}}},
            {"M": {"at": {"S": "2025-03-01T12:00:00.123456Z"}, "error": {"S": "timeout"}}},
        ]
    }
    assert item["expires_at"] == {"N": str(int((r.decided_at + timedelta(days=30)).timestamp()))}
    assert not {"dead_app", "dead_at", "dead_reason", "relay_minute"} & item.keys()


def test_only_a_dead_record_carries_the_dead_index_keys(dynamo, ddb_client, table_name):
    gone = dead(1, T0)
    dynamo.put(gone)
    item = _raw(ddb_client, table_name, record_key(D1, 1))
    assert item["dead_app"] == {"S": "app-1"} and item["dead_at"] == {"S": "2025-03-01T12:00:00.123456Z"}

    dynamo.put(gone.replayed(T0 + timedelta(minutes=1)))

    item = _raw(ddb_client, table_name, record_key(D1, 1))
    assert not {"dead_app", "dead_at", "dead_reason"} & item.keys()


def test_the_stream_item_carries_the_lease_and_its_retry_bucket(dynamo, ddb_client, table_name):
    dynamo.claim(D1, "a", T0, T0 + LEASE)
    item = _raw(ddb_client, table_name, stream_key(D1))
    assert item["lease_owner"] == {"S": "a"}
    assert item["lease_until"] == item["next_at"] == item["relay_at"] == {"S": "2025-03-01T12:02:00.123456Z"}
    assert item["relay_minute"] == {"S": "retry#2025-03-01T12:02"}
    assert item["expires_at"] == {"N": str(int((T0 + timedelta(days=30)).timestamp()))}

    dynamo.release(D1, "a", next_at=T0 + timedelta(minutes=7), replay_applied=T0)
    item = _raw(ddb_client, table_name, stream_key(D1))
    assert not {"lease_owner", "lease_until"} & item.keys()
    assert item["relay_minute"] == {"S": "retry#2025-03-01T12:07"}
    assert item["replayed_at"] == {"S": "2025-03-01T12:00:00.123456Z"}

    dynamo.claim(D1, "b", T0 + LEASE, T0 + 2 * LEASE)
    dynamo.release(D1, "b", next_at=None)
    item = _raw(ddb_client, table_name, stream_key(D1))
    assert not {"lease_owner", "lease_until", "next_at", "relay_minute", "relay_at"} & item.keys()


def test_a_replay_request_creates_the_stream_with_its_ttl(dynamo, ddb_client, table_name):
    dynamo.request_replay(D1, T0)

    item = _raw(ddb_client, table_name, stream_key(D1))
    assert item["replay_at"] == {"S": "2025-03-01T12:00:00.123456Z"}
    assert item["expires_at"] == {"N": str(int((T0 + timedelta(days=30)).timestamp()))}


def test_records_follow_every_page(ddb_client, table_name):
    store = DynamoCallbackStore(ddb_client, table_name, query_page_size=2)
    for seq in (5, 1, 4, 2, 3):
        store.put(record(seq))
    store.claim(D1, "a", T0, T0 + LEASE)

    assert [r.seq for r in store.records(D1)] == [1, 2, 3, 4, 5]


def test_a_cursor_is_the_index_key_and_nothing_else(dynamo):
    for n in range(3):
        dynamo.put(dead(n + 1, T0 + timedelta(seconds=n)))
    _, cursor = dynamo.dead("app-1", 1)
    plain = json.loads(base64.urlsafe_b64decode(cursor))
    assert sorted(plain) == ["dead_app", "dead_at", "pk", "sk"]

    forged = [
        {**plain, "dead_app": "app-2"},  # another application's list
        {**plain, "extra": "x"},
        {k: v for k, v in plain.items() if k != "sk"},
        {**plain, "dead_at": 3},
        [plain],
    ]
    for bad in forged:
        with pytest.raises(InvalidCursor):
            dynamo.dead("app-1", 1, _cursor(bad))
    with pytest.raises(InvalidCursor):
        dynamo.dead("app-2", 1, cursor)
    assert dynamo.dead("app-1", 1, _cursor(plain))[0] == [dead(2, T0 + timedelta(seconds=1))]


def test_each_operation_makes_the_calls_its_docstring_counts(dynamo, ddb_client):
    calls_of = call_counter(ddb_client)

    assert calls_of(lambda: dynamo.claim(D1, "a", T0, T0 + LEASE)) == {"UpdateItem": 1}
    assert calls_of(lambda: dynamo.claim(D1, "b", T0, T0 + LEASE)) == {"UpdateItem": 1}
    assert calls_of(lambda: dynamo.release(D1, "b", next_at=None)) == {"UpdateItem": 1}
    assert calls_of(lambda: dynamo.release(D1, "a", next_at=T0, replay_applied=T0)) == {"UpdateItem": 1}
    assert calls_of(lambda: dynamo.request_replay(D1, T0)) == {"UpdateItem": 1}
    assert calls_of(lambda: dynamo.put(dead(1, T0))) == {"PutItem": 1}
    assert calls_of(lambda: dynamo.records(D1)) == {"Query": 1}
    assert calls_of(lambda: dynamo.dead("app-1", 10)) == {"Query": 1}
    assert calls_of(lambda: dynamo.stalled(T0 + timedelta(minutes=59), T0)) == {"Query": 60}


def test_stalled_reads_the_retry_buckets_of_the_relay_index_and_never_scans(dynamo, ddb_client):
    dynamo.claim(D1, "a", T0, T0 + LEASE)
    queries: list[dict] = []

    def record_query(params, **_):
        queries.append(dict(params))

    def refuse(**_):
        raise AssertionError("the sweeper must never Scan the table")

    ddb_client.meta.events.register("provide-client-params.dynamodb.Query", record_query)
    ddb_client.meta.events.register("provide-client-params.dynamodb.Scan", refuse)

    assert dynamo.stalled(T0 + timedelta(minutes=4), T0) == [D1]
    assert [q["ExpressionAttributeValues"][":m"]["S"] for q in queries] == [
        f"retry#2025-03-01T12:0{m}" for m in range(5)
    ]
    assert {q["IndexName"] for q in queries} == {"relay"}


def test_a_dispatch_outbox_in_the_relay_index_is_not_a_stalled_stream(ddb_client, table_name, dynamo):
    # Both live in the `relay` index; only the bucket prefix tells them apart.
    from chalicelib.adapters.dynamodb_dispatches import DynamoDispatchRepository
    from chalicelib.domain.callbacks import OutboxEntry
    from tests.integration.test_dispatch_repository import new_dispatch

    entry = OutboxEntry(1, "evt-1", CallbackKind.MESSAGE_STATUS, T0, "{}")
    DynamoDispatchRepository(ddb_client, table_name).add(
        dataclasses.replace(new_dispatch(D2), outbox=(entry,))
    )

    assert dynamo.stalled(T0 + timedelta(hours=1), T0 - timedelta(hours=1)) == []
