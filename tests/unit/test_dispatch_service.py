"""The service over in-memory fakes: create, status, deadline, retries, races, isolation."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain import transitions
from chalicelib.domain.errors import DispatchNotFound
from chalicelib.domain.model import (
    Channel,
    Condition,
    DispatchStatus,
    MessageStatus,
    Outcome,
    Phase,
    StatusEvent,
    StepSpec,
)
from chalicelib.service.ports import MessageHint, ProviderError
from tests.fakes import T0
from tests.service_harness import Harness

S = MessageStatus


def messenger_then_sms(condition=Condition.READ, expiry=600):
    return [
        StepSpec(
            channel=Channel.MESSENGER,
            to={"type": "messenger", "id": "0000000000000000"},
            sender={"type": "messenger", "id": "1111111111111111"},
            message={"content": {"type": "text", "text": "hello"}},
            condition=condition,
            expiry_time=expiry,
        ),
        StepSpec(
            channel=Channel.SMS,
            to={"type": "sms", "number": "447700900000"},
            sender={"type": "sms", "number": "447700900001"},
            message={"content": {"type": "text", "text": "hello"}},
        ),
    ]


@pytest.fixture
def h():
    return Harness()


def test_create_sends_the_first_message_and_sets_its_deadline(h):
    uuid = h.service.create(h.app, messenger_then_sms())
    d = h.dispatch(uuid)
    assert [m.step_index for m in h.provider.accepted] == [0]
    assert d.steps[0].provider_message_id == f"fake-{d.steps[0].message_uuid}"
    deadline = T0 + timedelta(seconds=600)
    assert d.steps[0].sent_at == T0 and d.steps[0].deadline == deadline == d.due_at
    assert h.timer.pending == {(uuid, 0): deadline}
    assert [p["status"] for p in h.callbacks.statuses(uuid)] == ["submitted"]
    assert h.repo.find_message("fake", d.steps[0].provider_message_id).step_index == 0


def test_deadline_without_status_fails_over_to_sms_once(h):
    uuid = h.service.create(h.app, messenger_then_sms(expiry=15))
    h.advance(14)
    assert len(h.provider.accepted) == 1
    h.advance(1)
    assert [m.step_index for m in h.provider.accepted] == [0, 1]
    h.service.run_check(uuid, 0)  # the same timer firing again changes nothing
    assert len(h.provider.accepted) == 2
    d = h.dispatch(uuid)
    assert d.steps[0].outcome is Outcome.EXPIRED and d.current == 1
    assert (d.steps[1].sent_at - d.steps[0].sent_at).total_seconds() == 15


def test_read_before_the_deadline_completes_and_no_sms_is_ever_sent(h):
    uuid = h.service.create(h.app, messenger_then_sms(expiry=15))
    h.advance(5)
    assert h.status(uuid, 0, StatusEvent(S.READ))
    h.advance(3600)
    assert [m.step_index for m in h.provider.accepted] == [0]
    assert (uuid, 0) not in h.timer.pending
    [report] = h.callbacks.final_reports(uuid)
    assert report["status"] == "completed"
    assert report["completed_by"] == h.dispatch(uuid).steps[0].message_uuid


def test_rejected_fails_over_immediately_and_sms_delivery_completes(h):
    uuid = h.service.create(h.app, messenger_then_sms())
    h.status(uuid, 0, StatusEvent(S.REJECTED, error_code="1300", error_reason="Not part of the provider network"))
    assert [m.step_index for m in h.provider.accepted] == [0, 1]
    h.status(uuid, 1, StatusEvent(S.DELIVERED))
    [report] = h.callbacks.final_reports(uuid)
    assert report["status"] == "completed"
    assert report["completed_by"] == h.dispatch(uuid).steps[1].message_uuid
    statuses = [(p["message_uuid"][-4:], p["status"]) for p in h.callbacks.statuses(uuid)]
    first, second = (s.message_uuid[-4:] for s in h.dispatch(uuid).steps)
    assert statuses == [(first, "submitted"), (first, "rejected"), (second, "submitted"), (second, "delivered")]


def test_transient_send_errors_retry_on_the_timer_then_succeed(h):
    h.provider.fail_next(ProviderError("throttled", permanent=False, code="429"))
    uuid = h.service.create(h.app, messenger_then_sms())
    assert h.provider.accepted == [] and h.dispatch(uuid).steps[0].attempts == 1
    h.advance(2)
    assert [m.step_index for m in h.provider.accepted] == [0]
    assert h.dispatch(uuid).steps[0].attempts == 2


def test_a_provider_that_raises_unexpectedly_is_retried_then_failed_over(h):
    h.provider.fail_next(RuntimeError("bug"), RuntimeError("bug"), RuntimeError("bug"))
    uuid = h.service.create(h.app, messenger_then_sms())
    h.advance(10)
    d = h.dispatch(uuid)
    assert d.steps[0].status is S.UNDELIVERABLE and d.steps[0].outcome is Outcome.SEND_FAILED
    assert [m.step_index for m in h.provider.accepted] == [1]


def test_permanent_errors_on_every_step_end_in_one_error_report(h):
    h.provider.fail_next(*(ProviderError("invalid number", permanent=True, code="1240") for _ in range(2)))
    uuid = h.service.create(h.app, messenger_then_sms())
    [report] = h.callbacks.final_reports(uuid)
    assert report["status"] == "error" and report["completed_by"] is None
    assert h.dispatch(uuid).status is DispatchStatus.ERROR


def test_a_status_racing_the_deadline_sends_nothing_twice(h):
    uuid = h.service.create(h.app, messenger_then_sms(expiry=15))
    h.clock.advance(15)
    # The timer saves its failover first; the status's save loses and is decided again.
    h.repo.fail_next_save_with_conflict(
        lambda d: transitions.on_check(d, 0, h.clock.now(), h.policy).dispatch
    )
    h.status(uuid, 0, StatusEvent(S.READ))
    d = h.dispatch(uuid)
    assert d.steps[0].outcome is Outcome.EXPIRED and d.steps[0].history[-1].late
    assert d.status is DispatchStatus.IN_PROGRESS


def test_a_send_whose_result_cannot_be_saved_is_given_up_by_its_guard(h):
    real_save = h.repo.save
    failures = [RuntimeError("throttled")]

    def flaky_save(dispatch, refs=()):
        if refs and failures:
            raise failures.pop()
        return real_save(dispatch, refs)

    h.repo.save = flaky_save
    uuid = h.service.create(h.app, messenger_then_sms())  # answered, not raised
    assert [m.step_index for m in h.provider.accepted] == [0]
    h.advance(h.policy.send_guard_seconds)
    d = h.dispatch(uuid)
    assert d.steps[0].outcome is Outcome.SEND_UNCONFIRMED
    assert [m.step_index for m in h.provider.accepted] == [0, 1]  # each message sent once
    assert d.steps[1].phase is Phase.WAITING


@pytest.mark.parametrize(
    "value, outcome, sent",
    [(S.READ, DispatchStatus.COMPLETED, [0]), (S.REJECTED, DispatchStatus.IN_PROGRESS, [0, 1])],
)
def test_a_status_for_a_send_whose_record_was_lost_counts_as_its_send(h, value, outcome, sent):
    # The send's save loses a race (the repository still writes its message index item), and
    # the save decided again fails on an AWS error: the step never records its send.
    real_save = h.repo.save
    failures = [RuntimeError("throttled")]

    def lost_then_failing(dispatch, refs=()):
        if refs:
            h.repo.save = failing
            h.repo.fail_next_save_with_conflict()
        return real_save(dispatch, refs)

    def failing(dispatch, refs=()):
        if refs and failures:
            raise failures.pop()
        return real_save(dispatch, refs)

    h.repo.save = lost_then_failing
    uuid = h.service.create(h.app, messenger_then_sms())
    assert h.dispatch(uuid).steps[0].phase is Phase.SENDING and not failures
    h.clock.advance(30)

    assert h.status(uuid, 0, StatusEvent(value))  # routed by the index item written alone

    d = h.dispatch(uuid)
    step = d.steps[0]
    assert step.provider_message_id == f"fake-{step.message_uuid}" and step.sent_at == h.clock.now()
    assert d.status is outcome
    assert [p["status"] for p in h.callbacks.statuses(uuid) if p["message_uuid"] == step.message_uuid] == [
        value.value
    ]
    h.advance(h.policy.send_guard_seconds)  # the guard, if it still fires, finds the step sent
    d = h.dispatch(uuid)
    assert d.steps[0].outcome is not Outcome.SEND_UNCONFIRMED
    assert [m.step_index for m in h.provider.accepted] == sent  # never sent twice
    if outcome is DispatchStatus.COMPLETED:
        [report] = h.callbacks.final_reports(uuid)
        assert report["status"] == "completed" and report["completed_by"] == step.message_uuid


def test_a_failing_timer_does_not_fail_the_create(h):
    def broken(*args):
        raise ConnectionError("timer service down")

    h.timer.schedule = broken
    uuid = h.service.create(h.app, messenger_then_sms())
    assert h.dispatch(uuid).due_at is not None  # the sweeper finds it from here


def test_overlong_ids_never_reach_the_repository(h):
    # DynamoDB refuses keys over 2 KB with an error that would surface as a 500.
    def looked_up(*args):
        pytest.fail("an overlong id reached the repository")

    h.repo.get = h.repo.find_message = looked_up
    with pytest.raises(DispatchNotFound):
        h.service.get(h.app, "a" * 3000)
    assert h.service.owner_of("a" * 3000) is None
    assert not h.service.apply_status("fake", "m" * 3000, StatusEvent(S.READ))


def test_another_applications_dispatch_is_not_found(h):
    uuid = h.service.create(h.app, messenger_then_sms())
    with pytest.raises(DispatchNotFound):
        h.service.get(h.other_app, uuid)
    with pytest.raises(DispatchNotFound):
        h.service.get(h.app, "no-such-dispatch")
    message_id = h.dispatch(uuid).steps[0].provider_message_id
    assert not h.service.apply_status("fake", message_id, StatusEvent(S.READ), h.other_app.application_id)
    assert not h.service.apply_status("fake", "unknown", StatusEvent(S.READ))
    assert h.dispatch(uuid).steps[0].status is S.SUBMITTED


def test_callbacks_go_out_after_the_next_message_is_sent(h):
    order = []
    h.provider.send = _recording(h.provider.send, order, "send")
    h.callbacks.attempt = _recording(h.callbacks.attempt, order, "callback")
    uuid = h.service.create(h.app, messenger_then_sms())
    order.clear()
    h.status(uuid, 0, StatusEvent(S.REJECTED))
    assert order == ["send", "callback", "callback"]  # rejected(0), then submitted(1)


def _recording(fn, log, name):
    def wrapper(*args, **kwargs):
        log.append(name)
        return fn(*args, **kwargs)

    return wrapper


# --- a hint from the provider: the dispatch and step an echoed reference names ---------------


def test_a_hint_to_the_step_that_records_the_message_applies_without_the_index(h):
    dispatch_uuid = h.service.create(h.app, messenger_then_sms(Condition.DELIVERED))
    provider_id = h.dispatch(dispatch_uuid).steps[0].provider_message_id
    h.repo.find_message = lambda provider, message_id: None  # the index has nothing to say

    applied = h.service.apply_status(
        "fake", provider_id, StatusEvent(MessageStatus.DELIVERED), hint=MessageHint(dispatch_uuid, 0)
    )

    assert applied
    assert h.dispatch(dispatch_uuid).status == DispatchStatus.COMPLETED


def test_a_hint_to_a_step_that_did_not_send_the_message_is_ignored_for_the_index(h):
    victim = h.service.create(h.app, messenger_then_sms(Condition.DELIVERED))
    mine = h.service.create(h.app, messenger_then_sms(Condition.DELIVERED))
    provider_id = h.dispatch(mine).steps[0].provider_message_id

    applied = h.service.apply_status(
        "fake", provider_id, StatusEvent(MessageStatus.DELIVERED), hint=MessageHint(victim, 0)
    )

    assert applied
    assert h.dispatch(victim).status == DispatchStatus.IN_PROGRESS
    assert h.dispatch(mine).status == DispatchStatus.COMPLETED
