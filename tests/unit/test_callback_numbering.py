"""Every callback a dispatch decides gets the next number and an event id derived from it, saved
with the state change that decided it: numbers run 1, 2, 3... with no gap and no repeat, whatever
the inputs (duplicates, late statuses, a deadline applied before a late status)."""
from __future__ import annotations

from datetime import timedelta

from chalicelib.domain import transitions as t
from chalicelib.domain.actions import NotifyFinal, NotifyStatus
from chalicelib.domain.model import Channel, Condition, MessageStatus, StatusEvent
from chalicelib.service.callback_payloads import callback_event_id
from tests.fakes import T0
from tests.service_harness import POLICY, Harness, spec

UUID = "2b0f3f4c-7f0e-4a57-9d7e-6b8f3b4a9c01"


def test_a_decision_numbers_its_callbacks_after_the_last_and_counts_them():
    started = t.start(UUID, "app", [spec(Channel.WHATSAPP, Condition.READ, 600), spec(Channel.SMS)], T0, POLICY)
    assert started.dispatch.callbacks == 0  # nothing to tell yet
    d = t.on_send_result(started.dispatch, 0, t.SendAccepted("p", "m0"), T0, POLICY).dispatch
    assert d.callbacks == 1  # submitted
    late = t.on_status(d, 0, StatusEvent(MessageStatus.DELIVERED), T0 + timedelta(seconds=601), POLICY)
    # The deadline is applied first (the SMS goes out), then the late status is told: one number each.
    notes = [a for a in late.actions if isinstance(a, (NotifyStatus, NotifyFinal))]
    assert [n.seq for n in notes] == [2] and late.dispatch.callbacks == 2
    again = t.on_status(late.dispatch, 0, StatusEvent(MessageStatus.DELIVERED), T0 + timedelta(seconds=602), POLICY)
    assert not again.changed and again.dispatch.callbacks == 2  # a duplicate takes no number


def test_a_whole_dispatch_tells_its_callbacks_numbered_without_gaps_and_with_stable_event_ids():
    h = Harness()
    uuid = h.service.create(h.app, [spec(Channel.WHATSAPP, Condition.READ, 600), spec(Channel.SMS)])
    h.advance(601)  # nobody read it: SMS
    h.status(uuid, 0, StatusEvent(MessageStatus.DELIVERED))  # late, told
    h.status(uuid, 0, StatusEvent(MessageStatus.DELIVERED))  # duplicate, not told
    h.status(uuid, 1, StatusEvent(MessageStatus.DELIVERED))  # completes: status + final report

    seqs = [c.seq for c in h.callbacks.ids]
    assert seqs == list(range(1, len(h.callbacks.delivered) + 1))
    assert h.dispatch(uuid).callbacks == len(seqs) == 5
    assert [c.event_id for c in h.callbacks.ids] == [callback_event_id(uuid, n) for n in seqs]
    assert len({c.event_id for c in h.callbacks.ids}) == len(seqs)
    assert "dispatch_uuid" in h.callbacks.delivered[-1][1]  # the final report is the last number
