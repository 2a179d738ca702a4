"""What should have happened to a dispatch, from the simulation's own records alone.

The expectation is computed from what the simulation injected and saw happen at its edges (each
send attempt and the provider's answer, whether the process died before that answer was saved,
every webhook processed and when), never from the service's stored state. The rules are the
README's ("How a dispatch moves"), written again independently:

- A step whose send the provider accepted, with the answer saved, waits `expiry_time` from that
  moment (the last step: the report limit). Webhooks processed before that deadline count, in
  the order their processing ended: the condition met (`delivered` by delivered or read, `read`
  by read; the last step by delivered or read) completes the dispatch; `rejected` or
  `undeliverable` fails the step unless a success came first. Nothing decisive by the deadline:
  the step failed.
- A step with no saved acceptance failed, whatever the reason: a permanent error, transient
  errors exhausted, or a send never confirmed (the send guard gives it up, never sends again).
- The next step follows a failed one; the last one failing ends the dispatch in error.
- The application is told, per message: `submitted` once the acceptance is saved, then each
  status that moves it forward (submitted < delivered < read; a failure only before a success,
  and terminal), whenever it arrives, even after the dispatch ended; a duplicate or backward
  status is never told. A refused send is told as `rejected` (permanent) or `undeliverable`
  (transient errors exhausted).
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.model import Condition, MessageStatus, Policy
from tests.campaign.records import TRANSIENT, DispatchRecord, S, SendAttempt

SUBMITTED, DELIVERED, READ = MessageStatus.SUBMITTED, MessageStatus.DELIVERED, MessageStatus.READ
_RANK = {SUBMITTED: 1, DELIVERED: 2, READ: 3}
_MEETS = {Condition.DELIVERED: {DELIVERED, READ}, Condition.READ: {READ}}


@dataclass(frozen=True)
class Expectation:
    status: str  #: completed | error
    completed_by: int | None
    #: For each step whose acceptance was saved: when it ended (µs), or None if it never ended
    #: before the dispatch completed through it.
    ends: dict[int, int]
    #: Per step, the statuses the application must be told about its message, in order.
    told: dict[int, list[MessageStatus]]
    why: list[str]


def recorded_send(rec: DispatchRecord, step: int) -> SendAttempt | None:
    return next((s for s in rec.sends if s.step == step and s.recorded), None)


def expect(rec: DispatchRecord, policy: Policy) -> Expectation:
    ends: dict[int, int] = {}
    why: list[str] = []
    told = {k: _told(rec, k, policy) for k in range(len(rec.specs))}
    for k, spec in enumerate(rec.specs):
        send = recorded_send(rec, k)
        if send is None:
            why.append(f"step {k}: no saved acceptance, so it failed")
            continue
        condition = spec.condition or Condition.DELIVERED
        deadline = send.at_us + (spec.expiry_time or policy.last_step_report_seconds) * S
        end, verdict = _judge(rec, send, condition, deadline)
        ends[k] = end
        why.append(f"step {k}: {verdict} at +{(end - rec.created_us) / S:.3f}s")
        if verdict == "condition met":
            return Expectation("completed", k, ends, told, why)
    return Expectation("error", None, ends, told, why)


def _judge(rec: DispatchRecord, send: SendAttempt, condition: Condition, deadline: int) -> tuple[int, str]:
    current, seen = SUBMITTED, {SUBMITTED}
    for applied in rec.applied:
        if applied.provider_message_id != send.provider_message_id:
            continue
        if applied.at_us >= deadline:
            break  # processing order never goes back in time: nothing later counts either
        status = applied.status
        if status in seen:
            continue
        seen.add(status)
        if status.is_failure:
            if current in (DELIVERED, READ):
                continue  # a failure never undoes a success
            return applied.at_us, f"{status.value}"
        if _RANK[status] > _RANK[current]:
            current = status
        if current in _MEETS[condition]:
            return applied.at_us, "condition met"
    return deadline, "expired"


def _told(rec: DispatchRecord, step: int, policy: Policy) -> list[MessageStatus]:
    attempts = [s for s in rec.sends if s.step == step]
    if not attempts:
        return []
    last = attempts[-1]
    if last.crashed:
        return []  # its result was never saved: the send guard gives the step up, untold
    if last.result == "send_permanent":
        return [MessageStatus.REJECTED]
    if last.result in TRANSIENT and len(attempts) >= policy.max_send_attempts:
        return [MessageStatus.UNDELIVERABLE]
    if not last.recorded:
        return []
    told = [SUBMITTED]
    current, seen = SUBMITTED, {SUBMITTED}
    for applied in rec.applied:
        if applied.provider_message_id != last.provider_message_id or applied.status in seen:
            continue
        seen.add(applied.status)
        status = applied.status
        if current.is_failure:
            continue
        if status.is_failure:
            if current in (DELIVERED, READ):
                continue
        elif _RANK[status] <= _RANK[current]:
            continue
        told.append(status)
        current = status
    return told
