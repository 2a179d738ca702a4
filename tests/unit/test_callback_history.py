"""CallbackHistory over the in-memory fakes: what a dispatch's callbacks look like at each point
of delivery, replays that really send again, the dead list, and tenant isolation."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.api.presenters import callback_view
from chalicelib.domain.callbacks import AttemptResult, CallbackKind, DeliveryState
from chalicelib.domain.errors import DispatchNotFound
from chalicelib.domain.model import MessageStatus, StatusEvent
from chalicelib.service.callback_history import CallbackHistory
from chalicelib.service.callback_relay import LEASE_SECONDS
from chalicelib.service.ports import InvalidCursor
from tests.service_harness import Harness
from tests.unit.test_dispatch_service import messenger_then_sms

GONE = AttemptResult(status_code=410, duration_ms=12)
UNAVAILABLE = AttemptResult(status_code=503, duration_ms=30)


@pytest.fixture
def h() -> Harness:
    return Harness()


@pytest.fixture
def history(h: Harness) -> CallbackHistory:
    return CallbackHistory(h.service, h.store, h.queue, h.clock)


def hold_lease(h: Harness, dispatch_uuid: str) -> None:
    """Another drain is working the dispatch: new callbacks stay in its outbox for a while."""
    assert h.store.claim(dispatch_uuid, "other-drain", h.clock.now(), h.clock.now() + timedelta(seconds=LEASE_SECONDS))


def test_a_delivered_callback_is_listed_with_its_attempt(h, history):
    uuid = h.service.create(h.app, messenger_then_sms())
    [record] = history.list(h.app, uuid)
    assert (record.seq, record.kind, record.state) == (1, CallbackKind.MESSAGE_STATUS, DeliveryState.DELIVERED)
    assert [(a.at, a.status_code) for a in record.attempts] == [(h.clock.now(), 204)]
    assert h.callbacks.ids[0].event_id == record.event_id


def test_callbacks_not_taken_in_yet_are_listed_as_pending_in_seq_order(h, history):
    uuid = h.service.create(h.app, messenger_then_sms())
    hold_lease(h, uuid)
    assert h.status(uuid, 0, StatusEvent(MessageStatus.READ))  # a status and the final report
    assert len(h.dispatch(uuid).outbox) == 2
    listed = history.list(h.app, uuid)
    assert [(r.seq, r.state, r.attempts) for r in listed[1:]] == [
        (2, DeliveryState.PENDING, ()),
        (3, DeliveryState.PENDING, ()),
    ]
    assert [r.kind for r in listed] == [CallbackKind.MESSAGE_STATUS] * 2 + [CallbackKind.FINAL_REPORT]
    assert [r.body for r in listed[1:]] == [e.body for e in h.dispatch(uuid).outbox]

    h.advance(LEASE_SECONDS + 5)  # the lease runs out; the queued retry drains the outbox
    assert h.dispatch(uuid).outbox == ()
    after = history.list(h.app, uuid)
    assert [r.state for r in after] == [DeliveryState.DELIVERED] * 3
    assert [r.event_id for r in after] == [r.event_id for r in listed]


def test_a_failed_attempt_shows_when_the_next_one_is_due(h, history):
    h.callbacks.script = [UNAVAILABLE]
    uuid = h.service.create(h.app, messenger_then_sms())
    [record] = history.list(h.app, uuid)
    assert record.state is DeliveryState.PENDING and record.next_at is not None
    view = callback_view(record)
    assert view["next_attempt_at"] is not None
    assert view["attempts"] == [
        {"at": "2026-11-24T12:00:00.000Z", "http_status": 503, "error": None, "duration_ms": 30}
    ]
    h.advance((record.next_at - h.clock.now()).total_seconds())
    [record] = history.list(h.app, uuid)
    assert record.state is DeliveryState.DELIVERED
    assert callback_view(record)["next_attempt_at"] is None


def test_replay_sends_a_dead_callback_again_with_the_same_event_id_and_body(h, history):
    h.callbacks.script = [GONE]
    uuid = h.service.create(h.app, messenger_then_sms())
    [dead] = history.list(h.app, uuid)
    assert (dead.state, dead.dead_reason) == (DeliveryState.DEAD, "410")
    assert history.dead(h.app, 10) == ([dead], None)

    h.clock.advance(3600)  # the receiver is fixed an hour later
    assert history.replay(h.app, uuid) == 1

    [first, again] = h.callbacks.attempts
    assert (again.event_id, again.body) == (first.event_id, first.body)
    [record] = history.list(h.app, uuid)
    assert (record.state, record.replays, record.dead_at, record.dead_reason) == (
        DeliveryState.DELIVERED, 1, None, None,
    )
    assert [a.status_code for a in record.attempts] == [410, 204]
    assert history.dead(h.app, 10) == ([], None)


def test_replay_counts_and_sends_every_callback_including_those_not_taken_in(h, history):
    uuid = h.service.create(h.app, messenger_then_sms())
    hold_lease(h, uuid)
    h.status(uuid, 0, StatusEvent(MessageStatus.READ))
    assert history.replay(h.app, uuid) == 3
    assert len(h.callbacks.attempts) == 1  # the other drain still holds the lease
    h.advance(LEASE_SECONDS + 5)
    assert [r.seq for r in h.callbacks.attempts] == [1, 1, 2, 3]
    assert [r.state for r in history.list(h.app, uuid)] == [DeliveryState.DELIVERED] * 3


def test_another_applications_dispatch_does_not_exist_for_the_caller(h, history):
    h.callbacks.script = [GONE]
    uuid = h.service.create(h.app, messenger_then_sms())
    with pytest.raises(DispatchNotFound):
        history.list(h.other_app, uuid)
    with pytest.raises(DispatchNotFound):
        history.replay(h.other_app, uuid)
    with pytest.raises(DispatchNotFound):
        history.list(h.app, "no-such-dispatch")
    h.advance(60)  # before the first message's deadline: nothing else is decided
    assert len(h.callbacks.attempts) == 1  # their replay request changed nothing
    assert history.dead(h.other_app, 10) == ([], None)
    assert len(history.dead(h.app, 10)[0]) == 1


def test_the_dead_list_pages_through_the_callers_dead_callbacks_only(h, history):
    h.callbacks.script = [GONE] * 5
    mine = []
    for _ in range(5):
        mine.append(h.service.create(h.app, messenger_then_sms()))
        h.clock.advance(1)
    h.callbacks.script = [GONE]
    h.service.create(h.other_app, messenger_then_sms())

    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = history.dead(h.app, 2, cursor)
        seen += [r.dispatch_uuid for r in page]
        pages += 1
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(mine))  # latest first, each once, none of theirs

    _, mine_cursor = history.dead(h.app, 2)
    with pytest.raises(InvalidCursor):
        history.dead(h.other_app, 2, mine_cursor)
    with pytest.raises(InvalidCursor):
        history.dead(h.app, 2, "not-a-cursor")
