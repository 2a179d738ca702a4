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
  One exception: a message the provider accepted whose index item was written (a save that
  lost its race writes it alone) though its acceptance was never saved. The first webhook for
  it that finds the step before its guard gives it up proves the send: the step counts as
  sent at that moment, and that webhook is the first status applied to it (no `submitted`
  is told before it). When the guard gave up is taken from the next step's first send
  attempt; with none, from the guard's own due time (a lower bound).
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


def proving_status(rec: DispatchRecord, step: int, policy: Policy) -> int | None:
    """Where in `rec.applied` the webhook is that proved step `step`'s unsaved acceptance."""
    attempts = [s for s in rec.sends if s.step == step]
    if not attempts or any(s.recorded for s in attempts):
        return None
    last = attempts[-1]
    if last.result != "accepted" or last.provider_message_id is None:
        return None
    following = next((s.at_us for s in rec.sends if s.step > step), None)
    for position, applied in enumerate(rec.applied):
        if applied.provider_message_id != last.provider_message_id or applied.routed is False:
            continue
        if following is not None:
            before_guard = applied.at_us <= following
        else:
            before_guard = applied.at_us < last.at_us + policy.send_guard_seconds * S
        return position if before_guard else None
    return None


def expect(rec: DispatchRecord, policy: Policy) -> Expectation:
    ends: dict[int, int] = {}
    why: list[str] = []
    told = {k: _told(rec, k, policy) for k in range(len(rec.specs))}
    for k, spec in enumerate(rec.specs):
        send = recorded_send(rec, k)
        proof = proving_status(rec, k, policy) if send is None else None
        first = 0
        if proof is not None:
            applied = rec.applied[proof]
            send, first = SendAttempt(k, applied.at_us, "accepted", applied.provider_message_id), proof
            why.append(f"step {k}: acceptance unsaved, proved by a {applied.status.value} webhook")
        if send is None:
            why.append(f"step {k}: no saved acceptance, so it failed")
            continue
        condition = spec.condition or Condition.DELIVERED
        deadline = send.at_us + (spec.expiry_time or policy.last_step_report_seconds) * S
        end, verdict = _judge(rec, send, condition, deadline, first)
        ends[k] = end
        why.append(f"step {k}: {verdict} at +{(end - rec.created_us) / S:.3f}s")
        if verdict == "condition met":
            return Expectation("completed", k, ends, told, why)
    return Expectation("error", None, ends, told, why)


def _judge(
    rec: DispatchRecord, send: SendAttempt, condition: Condition, deadline: int, first: int = 0
) -> tuple[int, str]:
    current, seen = SUBMITTED, {SUBMITTED}
    for applied in rec.applied[first:]:
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
    proof = proving_status(rec, step, policy)
    if proof is not None:
        return _forward(rec, rec.applied[proof].provider_message_id, [], proof)
    if last.crashed:
        return []  # its result was never saved: the send guard gives the step up, untold
    if last.result == "send_permanent":
        return [MessageStatus.REJECTED]
    if last.result in TRANSIENT and len(attempts) >= policy.max_send_attempts:
        return [MessageStatus.UNDELIVERABLE]
    if not last.recorded:
        return []
    return _forward(rec, last.provider_message_id, [SUBMITTED])


def _forward(rec: DispatchRecord, pmid: str | None, told: list[MessageStatus], first: int = 0) -> list[MessageStatus]:
    """`told`, then each status applied for `pmid` (from `rec.applied[first]`) that moves it on."""
    current: MessageStatus | None = told[-1] if told else None
    seen = set(told)
    for applied in rec.applied[first:]:
        if applied.provider_message_id != pmid or applied.status in seen:
            continue
        seen.add(applied.status)
        status = applied.status
        if current is not None and current.is_failure:
            continue
        if status.is_failure:
            if current in (DELIVERED, READ):
                continue
        elif current is not None and _RANK[status] <= _RANK[current]:
            continue
        told.append(status)
        current = status
    return told
