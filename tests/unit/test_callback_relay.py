"""Durable callbacks end to end over the in-memory adapters: what a receiver gets when it fails,
recovers, refuses, or when the process dies between a state change and its delivery.

Time is injected (the harness's clock and its inline queue); nothing sleeps.
"""
from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from chalicelib.adapters.inline_callback_queue import InlineCallbackQueue
from chalicelib.domain.callbacks import AttemptResult, CallbackKind, DeliveryState
from chalicelib.domain.model import Channel, Condition, MessageStatus, StatusEvent, StepSpec
from chalicelib.service.callback_payloads import callback_event_id
from chalicelib.service.callback_relay import CallbackRelay
from chalicelib.service.sweeper import Sweeper
from tests.fakes import T0, RecordingCallbacks
from tests.service_harness import Harness, application, spec

S = MessageStatus
DOWN = AttemptResult(status_code=503)


def whatsapp_then_sms(expiry: int = 600) -> list[StepSpec]:
    return [spec(Channel.WHATSAPP, Condition.READ, expiry), spec(Channel.SMS)]


def seqs(h: Harness) -> list[int]:
    return [c.seq for c in h.callbacks.ids]


def record(h: Harness, dispatch_uuid: str, seq: int):
    return next(r for r in h.store.records(dispatch_uuid) if r.seq == seq)


def sweeper(h: Harness, queue=None) -> Sweeper:
    return Sweeper(
        h.repo,
        h.service,
        h.clock,
        grace_seconds=90,
        lookback_minutes=60,
        callback_store=h.store,
        callback_queue=queue or h.queue,
    )


# --- a receiver that fails, then recovers --------------------------------------------------------


def test_a_receiver_down_for_four_attempts_gets_every_callback_in_order_once_it_is_back():
    h = Harness(jitter=0.0)  # the shortest waits the backoff allows: 5, 10, 20, 40 s
    h.callbacks.script = [DOWN] * 4
    uuid = h.service.create(h.app, whatsapp_then_sms())  # 1: submitted, first attempt fails
    h.status(uuid, 0, StatusEvent(S.DELIVERED))  # 2, decided while 1 waits
    h.status(uuid, 0, StatusEvent(S.READ))  # 3, and the final report 4
    assert h.callbacks.delivered == []

    h.advance(3600)

    assert seqs(h) == [1, 2, 3, 4]
    statuses = [p.get("status") for _, p in h.callbacks.delivered]
    assert statuses == ["submitted", "delivered", "read", "completed"]
    first = record(h, uuid, 1)
    # Backoff between attempts: 5, 10, 20 then 40 s (jitter 0 takes the lower bound d/2).
    assert [a.at - T0 for a in first.attempts] == [
        timedelta(seconds=s) for s in (0, 5, 15, 35, 75)
    ]
    assert [a.status_code for a in first.attempts] == [503, 503, 503, 503, 204]
    # The later ones waited their turn instead of failing alongside: one attempt each, at 75 s.
    for seq in (2, 3, 4):
        assert [a.at - T0 for a in record(h, uuid, seq).attempts] == [timedelta(seconds=75)]
    assert all(r.state is DeliveryState.DELIVERED for r in h.store.records(uuid))
    assert h.dispatch(uuid).outbox == ()  # everything was taken in


def test_a_receiver_that_is_down_never_delays_a_failover():
    h = Harness()
    h.callbacks.script = [DOWN] * 50
    uuid = h.service.create(h.app, whatsapp_then_sms(expiry=600))
    h.advance(601)
    sms = h.dispatch(uuid).steps[1]
    assert sms.started_at == T0 + timedelta(seconds=600)  # on time, to the microsecond
    assert [a[1] for a in h.provider.attempts] == [0, 1]
    assert h.callbacks.delivered == []  # the receiver is still down; the failover did not wait


def test_retry_after_from_the_receiver_is_honoured():
    h = Harness(jitter=0.0)
    h.callbacks.script = [AttemptResult(status_code=429, retry_after=120)]
    uuid = h.service.create(h.app, whatsapp_then_sms())
    h.advance(119)
    assert h.callbacks.delivered == []
    h.advance(1)
    assert seqs(h) == [1]
    assert record(h, uuid, 1).attempts[1].at - T0 == timedelta(seconds=120)


def test_a_receiver_down_for_the_whole_window_ends_in_dead_letters():
    h = Harness(jitter=1.0)
    h.callbacks.script = [DOWN] * 1000
    uuid = h.service.create(h.app, whatsapp_then_sms())
    h.advance(25 * 3600)
    first = record(h, uuid, 1)
    assert first.state is DeliveryState.DEAD and first.dead_reason == "retry_window_exhausted"
    assert first.attempts[-1].at - T0 <= timedelta(hours=24)
    assert len(first.attempts) >= 20
    # The SMS's submitted (2) and the error report (3) waited behind it, then ran out too.
    dead, _ = h.store.dead(h.app.application_id, 10)
    assert sorted(r.seq for r in dead) == [1, 2, 3]
    assert {r.dead_reason for r in dead} == {"retry_window_exhausted"}


# --- a receiver that refuses: dead letters and replay --------------------------------------------


def test_a_receiver_answering_410_sends_it_to_dead_letters_and_replay_delivers_it_once_fixed():
    h = Harness()
    h.callbacks.script = [AttemptResult(status_code=410)]
    uuid = h.service.create(h.app, whatsapp_then_sms())
    one = record(h, uuid, 1)
    assert one.state is DeliveryState.DEAD and one.dead_reason == "410"
    assert len(one.attempts) == 1  # not retried
    h.status(uuid, 0, StatusEvent(S.READ))  # a dead callback holds nothing back
    assert seqs(h) == [2, 3]
    dead, cursor = h.store.dead(h.app.application_id, 10)
    assert [(r.seq, r.dead_reason) for r in dead] == [(1, "410")] and cursor is None

    h.clock.advance(3600)  # the receiver is fixed
    h.store.request_replay(uuid, h.clock.now())
    h.queue.nudge(uuid)

    # Every callback again, in order, with the very same event ids and bodies.
    assert seqs(h) == [2, 3, 1, 2, 3]
    assert [c.event_id for c in h.callbacks.ids[2:]] == [callback_event_id(uuid, n) for n in (1, 2, 3)]
    assert h.callbacks.delivered[3][1] == h.callbacks.delivered[0][1]
    assert record(h, uuid, 1).state is DeliveryState.DELIVERED
    assert record(h, uuid, 1).replays == 1
    assert h.store.dead(h.app.application_id, 10) == ([], None)


# --- a process that dies ---------------------------------------------------------------------------


class Killed(BaseException):
    """The process dying: no `except Exception` catches it, so nothing after it runs."""


class DyingQueue:
    def nudge(self, dispatch_uuid, at=None):
        raise Killed()


def test_a_crash_after_the_write_still_delivers_the_callback_on_restart_with_the_same_event_id():
    h = Harness()
    h.service._callback_queue = DyingQueue()  # the process dies right after the save
    with pytest.raises(Killed):
        h.service.create(h.app, whatsapp_then_sms())
    uuid = h.provider.accepted[0].dispatch_uuid
    saved = h.dispatch(uuid).outbox
    assert [(e.seq, e.kind) for e in saved] == [(1, CallbackKind.MESSAGE_STATUS)]
    assert h.callbacks.attempts == []

    # Restart: a new process with the same table. Only the sweeper knows about the callback.
    restarted = InlineCallbackQueue(h.clock)
    relay = CallbackRelay(h.repo, h.store, h.callbacks, h.apps, restarted, h.clock)
    restarted.bind(relay)
    h.clock.advance(60)
    assert sweeper(h, restarted).sweep().callbacks_recovered == 0  # still within the grace
    h.clock.advance(60)
    assert sweeper(h, restarted).sweep().callbacks_recovered == 1

    assert [(c.event_id, c.seq) for c in h.callbacks.ids] == [(callback_event_id(uuid, 1), 1)]
    assert json.loads(saved[0].body) == h.callbacks.delivered[0][1]
    assert h.dispatch(uuid).outbox == ()
    assert sweeper(h, restarted).sweep().callbacks_recovered == 0  # nothing left to recover


class DyingAfterPost(RecordingCallbacks):
    """Posts (the receiver gets it), then the process dies before the attempt is recorded."""

    def attempt(self, application, record):
        super().attempt(application, record)
        raise Killed()


def test_a_crash_after_posting_resends_the_same_event_once_the_lease_runs_out():
    dying = DyingAfterPost()
    h = Harness(callbacks=dying)
    with pytest.raises(Killed):
        h.service.create(h.app, whatsapp_then_sms())
    uuid = h.provider.accepted[0].dispatch_uuid

    survivor = RecordingCallbacks()
    restarted = InlineCallbackQueue(h.clock)
    restarted.bind(CallbackRelay(h.repo, h.store, survivor, h.apps, restarted, h.clock))
    h.clock.advance(120 + 90)  # the dead drain's lease, then the sweeper's grace
    assert sweeper(h, restarted).sweep().callbacks_recovered == 1

    # Delivered at least once: the receiver saw it twice and dedupes on the event id.
    assert dying.ids == survivor.ids == [type(survivor.ids[0])(callback_event_id(uuid, 1), 1)]
    assert record(h, uuid, 1).state is DeliveryState.DELIVERED


def test_a_lost_retry_message_is_made_up_for_by_the_sweeper():
    h = Harness(jitter=0.0)
    h.callbacks.script = [DOWN]
    uuid = h.service.create(h.app, whatsapp_then_sms())
    assert h.queue.pending == {uuid: T0 + timedelta(seconds=5)}
    h.queue.pending.clear()  # the delayed queue message is lost
    h.advance(60)
    assert h.callbacks.delivered == []
    h.clock.advance(40)  # next_at (5 s) + grace (90 s) has passed
    assert sweeper(h).sweep().callbacks_recovered == 1
    assert seqs(h) == [1]


# --- order and no regression -----------------------------------------------------------------------


def test_out_of_order_statuses_are_told_in_order_and_never_backwards():
    h = Harness()
    uuid = h.service.create(h.app, whatsapp_then_sms())
    h.status(uuid, 0, StatusEvent(S.READ))  # read overtook delivered
    h.status(uuid, 0, StatusEvent(S.DELIVERED))  # the late delivered: recorded, not told
    told = [p.get("status") for _, p in h.callbacks.delivered]
    assert told == ["submitted", "read", "completed"]
    assert seqs(h) == [1, 2, 3]
    history = [r.status for r in h.dispatch(uuid).steps[0].history]
    assert S.DELIVERED in history


def test_a_held_back_inbound_relay_does_not_hold_back_status_callbacks():
    app = dataclasses.replace(application(), inbound_url="https://example.test/inbound")
    h = Harness(app=app, jitter=0.0)
    uuid = h.service.create(h.app, whatsapp_then_sms())  # 1 delivered
    h.callbacks.script = [DOWN]
    h.service.relay_inbound(uuid, {"message_uuid": "in-1", "message": {"content": {"type": "text", "text": "hi"}}})
    h.status(uuid, 0, StatusEvent(S.READ))  # 3 and 4 go, though the inbound 2 waits
    assert seqs(h) == [1, 3, 4]
    assert h.callbacks.inbound == []
    h.advance(5)
    assert [p["message_uuid"] for _, p in h.callbacks.inbound] == ["in-1"]
    assert record(h, uuid, 2).kind is CallbackKind.INBOUND


def test_a_drain_that_finds_the_lease_taken_leaves_the_work_to_a_later_drain():
    h = Harness()
    uuid = h.service.create(h.app, whatsapp_then_sms())
    h.store.claim(uuid, "another drain", h.clock.now(), h.clock.now() + timedelta(seconds=10))
    h.status(uuid, 0, StatusEvent(S.READ))
    assert seqs(h) == [1]  # nothing posted alongside the other drain
    h.advance(12)
    assert seqs(h) == [1, 2, 3]


class SlowReceiver(RecordingCallbacks):
    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def attempt(self, application, record):
        self.clock.advance(30)
        return super().attempt(application, record)


def test_a_drain_stops_starting_attempts_after_its_budget_and_the_next_one_carries_on():
    h = Harness()
    slow = SlowReceiver(h.clock)
    relay = CallbackRelay(h.repo, h.store, slow, h.apps, h.queue, h.clock, budget_seconds=60)
    h.queue.bind(relay)
    uuid = h.service.create(h.app, whatsapp_then_sms())  # 1 posted (30 s)
    h.service._callback_queue = _Holding()  # collect callbacks 2 and 3 without draining yet
    h.status(uuid, 0, StatusEvent(S.READ))
    h.clock.current = T0  # a fresh drain, with 3 callbacks to post at 30 s each
    h.store.request_replay(uuid, h.clock.now())
    result = relay.drain(uuid)
    assert result.delivered == 2 and result.next_at == T0 + timedelta(seconds=60)
    h.advance(0)
    assert [c.seq for c in slow.ids] == [1, 1, 2, 3]


class _Holding:
    def nudge(self, dispatch_uuid, at=None):
        pass


def test_a_drain_given_less_time_than_its_budget_keeps_to_it():
    h = Harness()
    slow = SlowReceiver(h.clock)
    relay = CallbackRelay(h.repo, h.store, slow, h.apps, h.queue, h.clock, budget_seconds=60)
    h.service._callback_queue = _Holding()
    uuid = h.service.create(h.app, whatsapp_then_sms())
    h.status(uuid, 0, StatusEvent(S.READ))  # three callbacks saved, none drained yet
    result = relay.drain(uuid, budget_seconds=20)
    assert result.delivered == 1 and [c.seq for c in slow.ids] == [1]
    assert result.next_at == T0 + timedelta(seconds=30)  # the rest: as soon as it can


class FlakyStore:
    """The callback store, failing its next `put` (a throttled write)."""

    def __init__(self, inner):
        self.inner, self.fail_next_put = inner, False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def put(self, record):
        if self.fail_next_put:
            self.fail_next_put = False
            raise RuntimeError("ProvisionedThroughputExceededException")
        self.inner.put(record)


def test_a_drain_that_fails_keeps_its_lease_so_the_sweeper_comes_back_for_its_callbacks():
    h = Harness(jitter=0.0)
    flaky = FlakyStore(h.store)
    relay = CallbackRelay(h.repo, flaky, h.callbacks, h.apps, h.queue, h.clock, random=lambda: 0.0)
    h.queue.bind(relay)
    h.callbacks.script = [DOWN]
    uuid = h.service.create(h.app, whatsapp_then_sms())  # taken in, failed once, outbox pruned
    assert h.dispatch(uuid).outbox == ()
    h.queue.pending.clear()
    h.clock.advance(5)
    flaky.fail_next_put = True  # the retry's attempt is made but cannot be recorded
    with pytest.raises(RuntimeError):
        relay.drain(uuid)
    h.clock.advance(120 + 90)  # the lease runs out, then the sweeper's grace
    assert sweeper(h).sweep().callbacks_recovered == 1
    assert record(h, uuid, 1).state is DeliveryState.DELIVERED
