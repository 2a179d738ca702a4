"""The dispatch state machine: every input becomes a Decision, with time passed in.

Four inputs move a dispatch: `start` (create), `on_send_result` (the provider's answer to a
send), `on_status` (a status for one of its messages) and `on_check` (a deadline, retry or report
limit came due). Each is pure: same dispatch, input and `now` give the same decision. An input
that changes nothing (a duplicate, a late timer, a status for a step already moved past) returns
`changed=False`, which callers treat as a no-op.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from chalicelib.domain.actions import (
    Action,
    CancelCheck,
    Decision,
    NotifyFinal,
    NotifyStatus,
    ScheduleCheck,
    SendAccepted,
    SendFailed,
    SendMessage,
    SendResult,
)
from chalicelib.domain.model import (
    SATISFIES,
    STATUS_RANK,
    Condition,
    Dispatch,
    DispatchStatus,
    MessageStatus,
    Outcome,
    Phase,
    Policy,
    StatusEvent,
    StatusRecord,
    Step,
    StepSpec,
)

_FAILURE_OUTCOME = {
    MessageStatus.REJECTED: Outcome.REJECTED,
    MessageStatus.UNDELIVERABLE: Outcome.UNDELIVERABLE,
}


def message_uuid_for(dispatch_uuid: str, index: int) -> str:
    """Deterministic, so a retried send of the same step carries the same message_uuid."""
    return str(uuid.uuid5(uuid.UUID(dispatch_uuid), str(index)))


def start(
    dispatch_uuid: str,
    application_id: str,
    specs: Sequence[StepSpec],
    now: datetime,
    policy: Policy,
) -> Decision:
    """A new dispatch whose first message is being sent."""
    _check_specs(specs)
    steps = tuple(
        Step(index=i, spec=spec, message_uuid=message_uuid_for(dispatch_uuid, i))
        for i, spec in enumerate(specs)
    )
    dispatch = Dispatch(
        dispatch_uuid=dispatch_uuid,
        application_id=application_id,
        steps=steps,
        created_at=now,
        updated_at=now,
    )
    actions: list[Action] = []
    return Decision(_begin(dispatch, 0, now, policy, actions), tuple(actions))


def on_send_result(
    dispatch: Dispatch, index: int, result: SendResult, now: datetime, policy: Policy
) -> Decision:
    step = dispatch.steps[index]
    if dispatch.status.is_final or index != dispatch.current or step.phase is not Phase.SENDING:
        return _unchanged(dispatch)
    if isinstance(result, SendAccepted):
        decision = _accepted(dispatch, step, result, now, policy)
    else:
        decision = _send_failed(dispatch, step, result, now, policy)
    return _superseding(dispatch, decision, now)


def on_check(dispatch: Dispatch, index: int, now: datetime, policy: Policy) -> Decision:
    """A check for step `index` came due. Early, stale or repeated checks change nothing."""
    # Only a due check gets this far, so no other check is pending: nothing to supersede.
    if (
        dispatch.status.is_final
        or index != dispatch.current
        or dispatch.due_at is None
        or now < dispatch.due_at
    ):
        return _unchanged(dispatch)
    step = dispatch.current_step
    actions: list[Action] = []
    if step.phase is Phase.RETRYING:
        retried = replace(step, phase=Phase.SENDING, attempts=step.attempts + 1)
        return Decision(_sending(dispatch, retried, now, policy, actions), tuple(actions))
    if step.phase is Phase.SENDING:
        dispatch = _end_step(dispatch, step, Outcome.SEND_UNCONFIRMED, now)
    elif step.phase is Phase.WAITING:
        # The last message has no condition: its own limit is how long it may go unreported.
        outcome = Outcome.EXPIRED if step.spec.condition else Outcome.NO_REPORT
        dispatch = _end_step(dispatch, step, outcome, now)
    else:
        return _unchanged(dispatch)
    return Decision(_advance(dispatch, now, policy, actions), tuple(actions))


def on_status(
    dispatch: Dispatch,
    index: int,
    event: StatusEvent,
    now: datetime,
    policy: Policy,
    sent: SendAccepted | None = None,
) -> Decision:
    """A provider status for step `index`, whenever it arrives.

    `sent` names the provider and message id the status came for. A status is proof that
    message was sent, so a step whose send is not recorded yet (its answer lost, say to a failed
    save) records it now, as if the provider had just answered; otherwise its guard would give
    it up and send the next message to someone who already has this one.
    """
    return _superseding(dispatch, _on_status(dispatch, index, event, now, policy, sent), now)


def _on_status(
    dispatch: Dispatch,
    index: int,
    event: StatusEvent,
    now: datetime,
    policy: Policy,
    sent: SendAccepted | None,
) -> Decision:
    actions: list[Action] = []
    if index == dispatch.current and _overdue(dispatch, now):
        # The deadline passed before this status reached us: the condition was not met in time,
        # whether or not the timer has fired yet. Apply the deadline first, then the status.
        expired = on_check(dispatch, index, now, policy)
        dispatch, actions = expired.dispatch, list(expired.actions)
    step = dispatch.steps[index]
    new_status = _merged_status(step.status, event.status)
    # The send this status proves, when the step has not recorded it yet.
    proven = sent if step.phase is Phase.SENDING else None
    if step.phase is Phase.PENDING or _already_recorded(step, event.status):
        if proven is not None:
            dispatch = _accept(dispatch, step, proven, now, policy, actions)
        return Decision(dispatch, tuple(actions), changed=bool(actions) or proven is not None)
    record = StatusRecord(
        status=event.status,
        at=now,
        error_code=event.error_code,
        error_reason=event.error_reason,
        late=not step.is_open,
    )
    step = replace(
        step,
        status=new_status,
        history=step.history + (record,),
        usage=event.usage or step.usage,
    )
    dispatch = _with_step(dispatch, step, now)
    if new_status is event.status:
        actions.append(NotifyStatus(index, record))
    if proven is not None:
        # Recorded as sent after the status, as when a webhook beats the provider's own answer:
        # the application is not told `submitted` after it, and the step reacts to the status.
        dispatch = _accept(dispatch, step, proven, now, policy, actions)
    elif new_status is event.status and step.phase is Phase.WAITING:
        dispatch = _react(dispatch, step, now, policy, actions)
    return Decision(dispatch, tuple(actions))


# --- helpers ------------------------------------------------------------------------------------


def _check_specs(specs: Sequence[StepSpec]) -> None:
    if not specs:
        raise ValueError("a dispatch needs at least one message")
    for spec in specs[:-1]:
        if spec.condition is None or spec.expiry_time is None:
            raise ValueError("every message but the last needs a condition and an expiry_time")


def pending_check(dispatch: Dispatch) -> CancelCheck | None:
    """The check a timer holds for `dispatch` now (at its `due_at`), if any."""
    if dispatch.status.is_final or dispatch.due_at is None:
        return None
    step = dispatch.current_step
    backstop = step.phase is Phase.SENDING or (
        step.phase is Phase.WAITING and step.spec.expiry_time is None
    )
    return CancelCheck(step.index, dispatch.due_at, backstop=backstop)


def _superseding(before: Dispatch, decision: Decision, now: datetime) -> Decision:
    """Cancel the check `before` was waiting on if the decision moved the dispatch past it.

    A check already due is left alone: it is the one firing now, or a late one that will find
    nothing to do. The cancel goes last so it never delays a send.
    """
    pending = pending_check(before)
    after = pending_check(decision.dispatch)
    if (
        not decision.changed
        or pending is None
        or pending.at <= now
        # A timer holds one check per step and time, whatever it is for: cancelling this one
        # would cancel the check just scheduled in its place (a guard and a deadline that agree).
        or (after is not None and (after.step_index, after.at) == (pending.step_index, pending.at))
    ):
        return decision
    return replace(decision, actions=decision.actions + (pending,))


def _unchanged(dispatch: Dispatch) -> Decision:
    return Decision(dispatch, (), changed=False)


def _overdue(dispatch: Dispatch, now: datetime) -> bool:
    return (
        not dispatch.status.is_final
        and dispatch.current_step.phase is Phase.WAITING
        and dispatch.due_at is not None
        and now >= dispatch.due_at
    )


def _with_step(dispatch: Dispatch, step: Step, now: datetime) -> Dispatch:
    steps = dispatch.steps[: step.index] + (step,) + dispatch.steps[step.index + 1 :]
    return replace(dispatch, steps=steps, updated_at=now)


def _begin(dispatch: Dispatch, index: int, now: datetime, policy: Policy, actions: list) -> Dispatch:
    step = replace(dispatch.steps[index], phase=Phase.SENDING, attempts=1, started_at=now)
    return _sending(replace(dispatch, current=index), step, now, policy, actions)


def _sending(
    dispatch: Dispatch, step: Step, now: datetime, policy: Policy, actions: list
) -> Dispatch:
    """Send `step`, guarded: if its result is never recorded, the guard's check gives it up.

    The guard is scheduled before the send, so a crash or a failed write after the provider
    took the message still leaves a check that moves the dispatch on.
    """
    guard = now + timedelta(seconds=policy.send_guard_seconds)
    actions += [ScheduleCheck(step.index, guard, backstop=True), SendMessage(step.index)]
    return replace(_with_step(dispatch, step, now), due_at=guard)


def _accepted(
    dispatch: Dispatch, step: Step, result: SendAccepted, now: datetime, policy: Policy
) -> Decision:
    actions: list[Action] = []
    return Decision(_accept(dispatch, step, result, now, policy, actions), tuple(actions))


def _accept(
    dispatch: Dispatch,
    step: Step,
    result: SendAccepted,
    now: datetime,
    policy: Policy,
    actions: list[Action],
) -> Dispatch:
    """Record that the provider took `step`'s message at `now`, and react to what it reported."""
    first = len(actions)
    seconds = step.spec.expiry_time or policy.last_step_report_seconds
    deadline = now + timedelta(seconds=seconds)
    # A webhook may beat the provider's own answer to the send; what it reported stands.
    early = step.status
    record = StatusRecord(MessageStatus.SUBMITTED, now)
    step = replace(
        step,
        phase=Phase.WAITING,
        provider=result.provider,
        provider_message_id=result.provider_message_id,
        sent_at=now,
        deadline=deadline,
        status=_merged_status(early, MessageStatus.SUBMITTED),
        history=step.history + (() if early is MessageStatus.SUBMITTED else (record,)),
    )
    dispatch = replace(_with_step(dispatch, step, now), due_at=deadline)
    # The application hears `submitted` only if nothing was reported first: never backwards.
    if early is None:
        actions.append(NotifyStatus(step.index, record))
    if early not in (None, MessageStatus.SUBMITTED):
        dispatch = _react(dispatch, step, now, policy, actions)
    if dispatch.steps[step.index].phase is Phase.WAITING:
        backstop = step.spec.expiry_time is None
        actions.insert(first, ScheduleCheck(step.index, deadline, backstop=backstop))
    return dispatch


def _send_failed(
    dispatch: Dispatch, step: Step, result: SendFailed, now: datetime, policy: Policy
) -> Decision:
    step = replace(step, error_code=result.code, error_reason=result.reason)
    if not result.permanent and step.attempts < policy.max_send_attempts:
        backoff = policy.retry_backoff_seconds
        wait = backoff[min(step.attempts - 1, len(backoff) - 1)]
        retry_at = now + timedelta(seconds=wait)
        step = replace(step, phase=Phase.RETRYING)
        dispatch = replace(_with_step(dispatch, step, now), due_at=retry_at)
        return Decision(dispatch, (ScheduleCheck(step.index, retry_at),))
    # A refused send is reported like the provider's own verdict: rejected when permanent,
    # undeliverable when the transient errors ran out.
    status = MessageStatus.REJECTED if result.permanent else MessageStatus.UNDELIVERABLE
    record = StatusRecord(status, now, result.code, result.reason)
    step = replace(step, status=status, history=step.history + (record,))
    dispatch = _end_step(_with_step(dispatch, step, now), step, Outcome.SEND_FAILED, now)
    actions: list[Action] = [NotifyStatus(step.index, record)]
    return Decision(_advance(dispatch, now, policy, actions), tuple(actions))


def _merged_status(current: MessageStatus | None, new: MessageStatus) -> MessageStatus | None:
    """Statuses only move forward; a failure is terminal, and never undoes a success."""
    if current is not None and current.is_failure:
        return current
    if new.is_failure:
        return current if current in (MessageStatus.DELIVERED, MessageStatus.READ) else new
    if current is None or STATUS_RANK[new] > STATUS_RANK[current]:
        return new
    return current


def _already_recorded(step: Step, status: MessageStatus) -> bool:
    return any(record.status is status for record in step.history)


def _react(dispatch: Dispatch, step: Step, now: datetime, policy: Policy, actions: list) -> Dispatch:
    """The current step's status moved forward: complete, fail over, or keep waiting."""
    condition = step.spec.condition or Condition.DELIVERED
    if step.status in SATISFIES[condition]:
        dispatch = _end_step(dispatch, step, Outcome.CONDITION_MET, now)
        actions.append(NotifyFinal(now))
        return replace(
            dispatch,
            status=DispatchStatus.COMPLETED,
            completed_by=step.index,
            ended_at=now,
            due_at=None,
        )
    if step.status in _FAILURE_OUTCOME:
        dispatch = _end_step(dispatch, step, _FAILURE_OUTCOME[step.status], now)
        return _advance(dispatch, now, policy, actions)
    return dispatch


def _end_step(dispatch: Dispatch, step: Step, outcome: Outcome, now: datetime) -> Dispatch:
    phase = Phase.SUCCEEDED if outcome is Outcome.CONDITION_MET else Phase.FAILED
    return _with_step(dispatch, replace(step, phase=phase, outcome=outcome, ended_at=now), now)


def _advance(dispatch: Dispatch, now: datetime, policy: Policy, actions: list) -> Dispatch:
    """The current step failed: send the next one, or end the dispatch in error."""
    following = dispatch.current + 1
    if following < len(dispatch.steps):
        return _begin(dispatch, following, now, policy, actions)
    actions.append(NotifyFinal(now))
    return replace(dispatch, status=DispatchStatus.ERROR, ended_at=now, due_at=None)
