"""The oracle's exception for a send whose acceptance was never saved but whose index item was."""
from __future__ import annotations

from chalicelib.domain.model import Channel, Condition, MessageStatus, Policy, StepSpec
from tests.campaign import invariants, oracle
from tests.campaign.records import AppliedStatus, DispatchRecord, S, SendAttempt

POLICY = Policy()
M = MessageStatus


def _record(applied, next_step_at=None):
    specs = tuple(
        StepSpec(Channel.VIBER, {}, {}, {}, condition, expiry)
        for condition, expiry in ((Condition.DELIVERED, 60), (None, None))
    )
    rec = DispatchRecord(0, 0, None, "38f66b63-0236-4950-a632-0ef839a56c36", specs, 0, True)
    # Accepted, but its save failed after the index item was written alone.
    rec.sends.append(SendAttempt(0, 0, "accepted", "p-0", crashed=True))
    if next_step_at is not None:
        rec.sends.append(SendAttempt(1, next_step_at, "accepted", "p-1"))
    rec.applied = [AppliedStatus("p-0", status, at * S, routed) for status, at, routed in applied]
    return rec


def test_a_status_before_the_guard_proves_the_unsaved_send():
    rec = _record([(M.DELIVERED, 5, False), (M.DELIVERED, 13, True), (M.READ, 42, True), (M.READ, 57, True)])
    expected = oracle.expect(rec, POLICY)
    assert (expected.status, expected.completed_by) == ("completed", 0)
    assert expected.ends[0] == 13 * S
    assert expected.told[0] == [M.DELIVERED, M.READ]  # never a `submitted` after the status
    assert not invariants._routing(rec, routed={"p-0"})


def test_a_status_after_the_guard_gave_the_step_up_proves_nothing():
    rec = _record([(M.READ, 130, True)], next_step_at=120 * S)
    expected = oracle.expect(rec, POLICY)
    assert expected.told[0] == [] and 0 not in expected.ends
    assert expected.told[1] == [M.SUBMITTED]


def test_an_index_item_for_a_message_never_accepted_is_still_a_routing_violation():
    rec = _record([])
    rec.sends[0] = SendAttempt(0, 0, "send_timeout_taken", "p-0")
    assert invariants._routing(rec, routed={"p-0"})
    saved = _record([(M.READ, 10, False)])
    saved.sends[0] = SendAttempt(0, 0, "accepted", "p-0")
    assert invariants._routing(saved, routed=set())
