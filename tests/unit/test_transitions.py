"""The state machine, case by case: every condition × status × timing, timers, sends, late input."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain import transitions as t
from chalicelib.domain.actions import (
    CancelCheck,
    NotifyFinal,
    NotifyStatus,
    ScheduleCheck,
    SendAccepted,
    SendFailed,
    SendMessage,
)
from chalicelib.domain.model import (
    Channel,
    Condition,
    DispatchStatus,
    MessageStatus,
    Outcome,
    Phase,
    Policy,
    StatusEvent,
    StepSpec,
    Usage,
)
from tests.fakes import T0

POLICY = Policy(max_send_attempts=3, retry_backoff_seconds=(2, 8), send_guard_seconds=120,
                last_step_report_seconds=3600)
UUID = "2b0f3f4c-7f0e-4a57-9d7e-6b8f3b4a9c01"
S = MessageStatus


def spec(channel=Channel.MESSENGER, condition=Condition.READ, expiry=600):
    return StepSpec(
        channel=channel,
        to={"type": channel.value, "id": "1"},
        sender={"type": channel.value, "id": "2"},
        message={"content": {"type": "text", "text": "hi"}},
        condition=condition,
        expiry_time=expiry,
    )


def sms_last():
    return StepSpec(
        channel=Channel.SMS,
        to={"type": "sms", "number": "447700900000"},
        sender={"type": "sms", "number": "447700900001"},
        message={"content": {"type": "text", "text": "hi"}},
    )


def started(condition=Condition.READ, expiry=600):
    """A two-step dispatch whose first message the provider accepted at T0."""
    d = t.start(UUID, "app", [spec(condition=condition, expiry=expiry), sms_last()], T0, POLICY).dispatch
    return t.on_send_result(d, 0, SendAccepted("fake", "p-0"), T0, POLICY).dispatch


def on_last_step(dispatch):
    """Move a started dispatch onto its last step by letting the first expire."""
    expired = t.on_check(dispatch, 0, dispatch.due_at, POLICY).dispatch
    return t.on_send_result(expired, 1, SendAccepted("fake", "p-1"), expired.updated_at, POLICY).dispatch


def guarded_send(index, at):
    """The actions that send step `index` at `at`: its guard's check first, then the send."""
    return (guard_check(index, at), SendMessage(index))


def guard_check(index, sent_at):
    return ScheduleCheck(index, sent_at + timedelta(seconds=POLICY.send_guard_seconds), backstop=True)


def guard_cancel(index, sent_at):
    return CancelCheck(index, sent_at + timedelta(seconds=POLICY.send_guard_seconds), backstop=True)


def status(dispatch, index, value, at, **kw):
    return t.on_status(dispatch, index, StatusEvent(value, **kw), at, POLICY)


# --- create and send ---------------------------------------------------------------------------


def test_start_sends_the_first_message_and_guards_it():
    decision = t.start(UUID, "app", [spec(), sms_last()], T0, POLICY)
    d = decision.dispatch
    assert decision.actions == guarded_send(0, T0)
    assert d.status is DispatchStatus.IN_PROGRESS and d.current == 0
    assert d.steps[0].phase is Phase.SENDING and d.steps[0].attempts == 1
    assert d.steps[1].phase is Phase.PENDING
    assert d.due_at == T0 + timedelta(seconds=POLICY.send_guard_seconds)
    assert d.steps[0].message_uuid == t.message_uuid_for(UUID, 0) != d.steps[1].message_uuid


@pytest.mark.parametrize(
    "specs",
    [[], [spec(), StepSpec(Channel.SMS, {}, {}, {}), sms_last()], [spec(expiry=None), sms_last()]],
)
def test_start_refuses_workflows_the_api_would_never_accept(specs):
    with pytest.raises(ValueError):
        t.start(UUID, "app", specs, T0, POLICY)


def test_accepted_send_waits_for_the_condition_until_the_deadline():
    d = t.start(UUID, "app", [spec(expiry=600), sms_last()], T0, POLICY).dispatch
    decision = t.on_send_result(d, 0, SendAccepted("fake", "p-0"), T0 + timedelta(seconds=1), POLICY)
    step = decision.dispatch.steps[0]
    deadline = T0 + timedelta(seconds=601)
    assert step.phase is Phase.WAITING and step.status is S.SUBMITTED
    assert (step.provider, step.provider_message_id, step.deadline) == ("fake", "p-0", deadline)
    assert decision.dispatch.due_at == deadline
    assert decision.actions[0] == ScheduleCheck(0, deadline)
    assert isinstance(decision.actions[1], NotifyStatus) and decision.actions[1].record.status is S.SUBMITTED
    # The deadline supersedes the send's guard, which is cancelled last.
    assert decision.actions[2:] == (guard_cancel(0, T0),)


def test_a_deadline_that_falls_on_the_guards_time_is_not_cancelled_with_the_guard():
    # The timer holds one check per step and time: cancelling the guard would cancel the deadline.
    d = t.start(UUID, "app", [spec(expiry=POLICY.send_guard_seconds), sms_last()], T0, POLICY).dispatch
    decision = t.on_send_result(d, 0, SendAccepted("fake", "p-0"), T0, POLICY)

    deadline = T0 + timedelta(seconds=POLICY.send_guard_seconds)
    assert decision.actions[0] == ScheduleCheck(0, deadline)
    assert not any(isinstance(action, CancelCheck) for action in decision.actions)


def test_the_last_message_report_limit_is_a_backstop_unless_it_has_its_own_expiry():
    policy = POLICY
    d = t.start(UUID, "app", [spec(), sms_last()], T0, policy).dispatch
    d = t.on_check(d, 0, d.due_at, policy).dispatch  # step 0 given up; SMS being sent
    now = d.due_at - timedelta(seconds=policy.send_guard_seconds)
    decision = t.on_send_result(d, 1, SendAccepted("fake", "p-1"), now, policy)
    limit = now + timedelta(seconds=policy.last_step_report_seconds)
    assert decision.actions[0] == ScheduleCheck(1, limit, backstop=True)

    own = t.start(UUID, "app", [spec(), StepSpec(Channel.SMS, {}, {}, {}, Condition.DELIVERED, 30)], T0, policy)
    d = t.on_check(own.dispatch, 0, own.dispatch.due_at, policy).dispatch
    decision = t.on_send_result(d, 1, SendAccepted("fake", "p-1"), now, policy)
    assert decision.actions[0] == ScheduleCheck(1, now + timedelta(seconds=30), backstop=False)


@pytest.mark.parametrize(
    "condition, early, completes, fails_over",
    [
        (Condition.DELIVERED, S.DELIVERED, True, False),
        (Condition.READ, S.DELIVERED, False, False),
        (Condition.READ, S.REJECTED, False, True),
    ],
)
def test_a_status_that_arrives_before_the_send_is_recorded_counts(condition, early, completes, fails_over):
    d = t.start(UUID, "app", [spec(condition=condition), sms_last()], T0, POLICY).dispatch
    d = status(d, 0, early, T0).dispatch  # the webhook came first
    assert d.steps[0].phase is Phase.SENDING and d.steps[0].status is early
    decision = t.on_send_result(d, 0, SendAccepted("fake", "p-0"), T0, POLICY)
    d = decision.dispatch
    assert [r.status for r in d.steps[0].history] == [early, S.SUBMITTED]
    assert d.steps[0].status is early
    assert not any(isinstance(a, NotifyStatus) and a.step_index == 0 for a in decision.actions)
    assert (d.status is DispatchStatus.COMPLETED) is completes
    assert (d.current == 1 and SendMessage(1) in decision.actions) is fails_over
    waiting = not completes and not fails_over
    assert (decision.actions[0] == ScheduleCheck(0, T0 + timedelta(seconds=600))) is waiting
    # Whatever happened, the send's guard is no longer needed.
    assert decision.actions[-1] == guard_cancel(0, T0)


def test_an_early_submitted_webhook_is_recorded_and_told_once():
    d = t.start(UUID, "app", [spec(), sms_last()], T0, POLICY).dispatch
    first = status(d, 0, S.SUBMITTED, T0)
    assert [type(a) for a in first.actions] == [NotifyStatus]
    decision = t.on_send_result(first.dispatch, 0, SendAccepted("fake", "p-0"), T0, POLICY)
    assert [r.status for r in decision.dispatch.steps[0].history] == [S.SUBMITTED]
    assert decision.actions == (ScheduleCheck(0, T0 + timedelta(seconds=600)), guard_cancel(0, T0))


@pytest.mark.parametrize(
    "condition, value, completes, fails_over",
    [
        (Condition.READ, S.READ, True, False),
        (Condition.DELIVERED, S.DELIVERED, True, False),
        (Condition.READ, S.DELIVERED, False, False),
        (Condition.READ, S.SUBMITTED, False, False),
        (Condition.READ, S.REJECTED, False, True),
        (Condition.DELIVERED, S.UNDELIVERABLE, False, True),
    ],
)
def test_a_status_proves_a_send_whose_answer_was_never_recorded(condition, value, completes, fails_over):
    # The send's answer was lost (its save failed after the message index was written), so the
    # step is still sending when the provider's status for the message reaches it.
    d = t.start(UUID, "app", [spec(condition=condition), sms_last()], T0, POLICY).dispatch
    at = T0 + timedelta(seconds=30)
    decision = t.on_status(d, 0, StatusEvent(value), at, POLICY, SendAccepted("fake", "p-0"))
    d = decision.dispatch
    step = d.steps[0]
    assert (step.provider, step.provider_message_id, step.sent_at) == ("fake", "p-0", at)
    assert step.status is value and step.history[0].status is value and not step.history[0].late
    # Told the status it reported, never a `submitted` after it.
    told = [a.record.status for a in decision.actions if isinstance(a, NotifyStatus) and a.step_index == 0]
    assert told == [value]
    assert (d.status is DispatchStatus.COMPLETED and d.completed_by == 0) is completes
    assert (step.phase is Phase.FAILED and d.current == 1 and SendMessage(1) in decision.actions) is fails_over
    waiting = not completes and not fails_over
    assert (step.phase is Phase.WAITING and d.due_at == at + timedelta(seconds=600)) is waiting
    assert (ScheduleCheck(0, at + timedelta(seconds=600)) in decision.actions) is waiting
    assert decision.actions[-1] == guard_cancel(0, T0)
    assert sum(isinstance(a, NotifyFinal) for a in decision.actions) == (1 if completes else 0)

    # The guard fires anyway (its cancel was lost): the step is sent, so nothing happens.
    guard = T0 + timedelta(seconds=POLICY.send_guard_seconds)
    assert not t.on_check(d, 0, guard, POLICY).changed
    # The send's own answer is recorded at last: the step is not set back.
    assert not t.on_send_result(d, 0, SendAccepted("fake", "p-0"), guard, POLICY).changed
    # A status for the step after its failover still never reopens it.
    if fails_over:
        late = status(d, 0, S.READ, guard)
        assert late.dispatch.steps[0].phase is Phase.FAILED and late.dispatch.current == 1
        assert not any(isinstance(a, (NotifyFinal, SendMessage)) for a in late.actions)


def test_a_repeated_status_still_proves_the_send():
    # A status recorded while sending, before statuses proved sends, is not recorded again.
    d = t.start(UUID, "app", [spec(condition=Condition.DELIVERED), sms_last()], T0, POLICY).dispatch
    d = status(d, 0, S.DELIVERED, T0).dispatch
    decision = t.on_status(d, 0, StatusEvent(S.DELIVERED), T0, POLICY, SendAccepted("fake", "p-0"))
    assert decision.changed and decision.dispatch.status is DispatchStatus.COMPLETED
    assert [type(a) for a in decision.actions] == [NotifyFinal, CancelCheck]


def test_a_status_proves_nothing_for_a_step_no_longer_sending():
    given_up = t.start(UUID, "app", [spec(), sms_last()], T0, POLICY).dispatch
    given_up = t.on_check(given_up, 0, given_up.due_at, POLICY).dispatch
    at = given_up.updated_at
    decision = t.on_status(given_up, 0, StatusEvent(S.READ), at, POLICY, SendAccepted("fake", "p-0"))
    step = decision.dispatch.steps[0]
    assert step.phase is Phase.FAILED and step.outcome is Outcome.SEND_UNCONFIRMED
    assert step.provider_message_id is None and step.history[-1].late
    assert decision.dispatch.current == 1
    assert not any(isinstance(a, (NotifyFinal, SendMessage, ScheduleCheck)) for a in decision.actions)
    pending = t.start(UUID, "app", [spec(), sms_last()], T0, POLICY).dispatch
    assert not t.on_status(pending, 1, StatusEvent(S.READ), T0, POLICY, SendAccepted("fake", "p-1")).changed


def test_a_repeated_send_result_is_a_no_op():
    d = started()
    assert not t.on_send_result(d, 0, SendAccepted("fake", "p-0"), T0, POLICY).changed


def test_permanent_send_error_fails_over_at_once():
    d = t.start(UUID, "app", [spec(), sms_last()], T0, POLICY).dispatch
    decision = t.on_send_result(d, 0, SendFailed(True, "1240", "Illegal Number"), T0, POLICY)
    first = decision.dispatch.steps[0]
    assert (first.phase, first.outcome, first.status) == (Phase.FAILED, Outcome.SEND_FAILED, S.REJECTED)
    assert first.error_code == "1240"
    assert decision.dispatch.current == 1
    assert decision.actions[1:] == (*guarded_send(1, T0), guard_cancel(0, T0))


def test_transient_send_errors_are_retried_with_backoff_then_fail_over():
    d = t.start(UUID, "app", [spec(), sms_last()], T0, POLICY).dispatch
    now = T0
    for attempt, wait in ((1, 2), (2, 8)):
        decision = t.on_send_result(d, 0, SendFailed(False, "429", "throttled"), now, POLICY)
        assert decision.dispatch.steps[0].phase is Phase.RETRYING
        assert decision.actions == (ScheduleCheck(0, now + timedelta(seconds=wait)), guard_cancel(0, now))
        now += timedelta(seconds=wait)
        assert not t.on_check(decision.dispatch, 0, now - timedelta(seconds=1), POLICY).changed
        retry = t.on_check(decision.dispatch, 0, now, POLICY)
        assert retry.actions == guarded_send(0, now)
        d = retry.dispatch
        assert d.steps[0].attempts == attempt + 1
    final = t.on_send_result(d, 0, SendFailed(False, "500", "unavailable"), now, POLICY)
    assert final.dispatch.steps[0].status is S.UNDELIVERABLE
    assert final.dispatch.steps[0].outcome is Outcome.SEND_FAILED
    assert final.dispatch.current == 1 and SendMessage(1) in final.actions


def test_a_send_that_never_reports_back_is_given_up_at_the_guard():
    d = t.start(UUID, "app", [spec(), sms_last()], T0, POLICY).dispatch
    decision = t.on_check(d, 0, d.due_at, POLICY)
    assert decision.dispatch.steps[0].outcome is Outcome.SEND_UNCONFIRMED
    assert decision.actions == guarded_send(1, d.due_at)


# --- condition × status × timing ---------------------------------------------------------------

BEFORE, AFTER = timedelta(seconds=599), timedelta(seconds=600)


@pytest.mark.parametrize(
    "condition, value, completes, fails_over",
    [
        (Condition.DELIVERED, S.DELIVERED, True, False),
        (Condition.DELIVERED, S.READ, True, False),
        (Condition.DELIVERED, S.REJECTED, False, True),
        (Condition.DELIVERED, S.UNDELIVERABLE, False, True),
        (Condition.READ, S.READ, True, False),
        (Condition.READ, S.DELIVERED, False, False),
        (Condition.READ, S.REJECTED, False, True),
        (Condition.READ, S.UNDELIVERABLE, False, True),
    ],
)
def test_status_before_the_deadline(condition, value, completes, fails_over):
    decision = status(started(condition), 0, value, T0 + BEFORE)
    d = decision.dispatch
    assert d.steps[0].status is value and d.steps[0].history[-1].late is False
    assert NotifyStatus(0, d.steps[0].history[-1]) in decision.actions
    if completes:
        assert d.status is DispatchStatus.COMPLETED and d.completed_by == 0
        assert d.steps[0].outcome is Outcome.CONDITION_MET
        deadline = T0 + timedelta(seconds=600)
        assert decision.actions[-2:] == (NotifyFinal(T0 + BEFORE), CancelCheck(0, deadline))
        assert d.steps[1].phase is Phase.PENDING
    elif fails_over:
        assert d.current == 1 and d.steps[0].outcome.value == value.value
        deadline = T0 + timedelta(seconds=600)
        assert decision.actions[-3:] == (*guarded_send(1, T0 + BEFORE), CancelCheck(0, deadline))
    else:
        assert d.status is DispatchStatus.IN_PROGRESS and d.current == 0
        assert d.steps[0].phase is Phase.WAITING
        assert not any(isinstance(a, (SendMessage, NotifyFinal)) for a in decision.actions)


@pytest.mark.parametrize("condition", list(Condition))
@pytest.mark.parametrize("value", [S.DELIVERED, S.READ, S.REJECTED, S.UNDELIVERABLE])
def test_status_at_or_after_the_deadline_fails_over_even_before_the_timer(condition, value):
    decision = status(started(condition), 0, value, T0 + AFTER)
    d = decision.dispatch
    assert d.steps[0].outcome is Outcome.EXPIRED and d.current == 1
    assert d.steps[0].history[-1].status is value and d.steps[0].history[-1].late
    assert decision.actions[:2] == guarded_send(1, T0 + AFTER)
    assert d.status is DispatchStatus.IN_PROGRESS


def test_deadline_without_the_condition_fails_over():
    d = status(started(Condition.READ), 0, S.DELIVERED, T0 + BEFORE).dispatch
    decision = t.on_check(d, 0, T0 + AFTER, POLICY)
    assert decision.dispatch.steps[0].outcome is Outcome.EXPIRED
    assert decision.dispatch.steps[0].status is S.DELIVERED
    assert decision.actions == guarded_send(1, T0 + AFTER)


@pytest.mark.parametrize("delay", [timedelta(seconds=-1), timedelta(0), timedelta(seconds=1)])
def test_timer_early_repeated_or_for_another_step_changes_nothing(delay):
    d = started()
    if delay < timedelta(0):
        assert not t.on_check(d, 0, T0 + AFTER + delay, POLICY).changed
        return
    fired = t.on_check(d, 0, T0 + AFTER + delay, POLICY).dispatch
    assert not t.on_check(fired, 0, T0 + AFTER + delay, POLICY).changed
    assert not t.on_check(fired, 5 if delay else 0, T0 + AFTER * 2, POLICY).changed


# --- the last step -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [S.DELIVERED, S.READ])
def test_last_step_delivered_completes(value):
    d = on_last_step(started())
    decision = status(d, 1, value, d.updated_at + timedelta(seconds=5))
    assert decision.dispatch.status is DispatchStatus.COMPLETED
    assert decision.dispatch.completed_by == 1
    # The report limit's check is dropped after the final report is queued.
    assert isinstance(decision.actions[-2], NotifyFinal)
    assert decision.actions[-1] == CancelCheck(1, d.due_at, backstop=True)


@pytest.mark.parametrize("value", [S.REJECTED, S.UNDELIVERABLE])
def test_last_step_failing_ends_in_error(value):
    d = on_last_step(started())
    decision = status(d, 1, value, d.updated_at + timedelta(seconds=5))
    assert decision.dispatch.status is DispatchStatus.ERROR
    assert decision.dispatch.completed_by is None
    assert decision.dispatch.steps[1].outcome.value == value.value
    assert decision.actions[-2:] == (
        NotifyFinal(d.updated_at + timedelta(seconds=5)),
        CancelCheck(1, d.due_at, backstop=True),
    )


def test_last_step_that_never_reports_errors_after_the_report_limit():
    d = on_last_step(started())
    assert d.due_at == d.steps[1].sent_at + timedelta(seconds=POLICY.last_step_report_seconds)
    decision = t.on_check(d, 1, d.due_at, POLICY)
    assert decision.dispatch.status is DispatchStatus.ERROR
    assert decision.dispatch.steps[1].outcome is Outcome.NO_REPORT
    assert decision.actions == (NotifyFinal(d.due_at),)


# --- duplicate, late and out-of-order statuses -------------------------------------------------


def test_duplicate_status_is_a_no_op():
    d = status(started(Condition.READ), 0, S.DELIVERED, T0 + BEFORE).dispatch
    assert not status(d, 0, S.DELIVERED, T0 + BEFORE).changed


def test_late_status_for_an_earlier_step_is_recorded_and_forwarded_only():
    d = on_last_step(started())
    decision = status(d, 0, S.READ, d.updated_at + timedelta(seconds=1), usage=Usage("0.01", "EUR"))
    first = decision.dispatch.steps[0]
    assert first.status is S.READ and first.history[-1].late and first.usage == Usage("0.01", "EUR")
    assert first.outcome is Outcome.EXPIRED  # the outcome stands: it was not read in time
    assert decision.actions == (NotifyStatus(0, first.history[-1]),)
    assert decision.dispatch.current == 1 and decision.dispatch.status is DispatchStatus.IN_PROGRESS


def test_late_status_after_the_dispatch_completed_sends_no_second_report():
    d = status(started(Condition.DELIVERED), 0, S.DELIVERED, T0 + BEFORE).dispatch
    decision = status(d, 0, S.READ, T0 + AFTER * 3)
    assert decision.dispatch.status is DispatchStatus.COMPLETED
    assert [type(a) for a in decision.actions] == [NotifyStatus]


def test_out_of_order_statuses_never_move_backwards():
    d = status(started(Condition.READ), 0, S.READ, T0 + BEFORE).dispatch
    decision = status(d, 0, S.DELIVERED, T0 + BEFORE)
    assert decision.changed and decision.actions == ()
    assert decision.dispatch.steps[0].status is S.READ
    assert [r.status for r in decision.dispatch.steps[0].history] == [S.SUBMITTED, S.READ, S.DELIVERED]


def test_a_failure_after_a_success_does_not_fail_over():
    d = status(started(Condition.READ), 0, S.DELIVERED, T0 + BEFORE).dispatch
    decision = status(d, 0, S.UNDELIVERABLE, T0 + BEFORE)
    assert decision.dispatch.steps[0].status is S.DELIVERED
    assert decision.dispatch.current == 0 and decision.actions == ()


def test_a_success_after_a_failure_is_recorded_but_the_failure_stands():
    d = status(started(Condition.READ), 0, S.REJECTED, T0 + BEFORE).dispatch
    decision = status(d, 0, S.READ, T0 + BEFORE)
    assert decision.dispatch.steps[0].status is S.REJECTED
    assert decision.dispatch.status is DispatchStatus.IN_PROGRESS and decision.dispatch.current == 1
    assert decision.actions == ()


def test_status_for_a_step_never_sent_is_ignored():
    d = started()
    assert not status(d, 1, S.DELIVERED, T0 + BEFORE).changed


def test_transitions_are_deterministic():
    a = status(started(), 0, S.READ, T0 + BEFORE)
    b = status(started(), 0, S.READ, T0 + BEFORE)
    assert a == b
