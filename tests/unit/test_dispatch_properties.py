"""Property test: random workflows under random interleavings of statuses, duplicates, timers
and send failures. Whatever happens, the invariants the service promises must hold."""
from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain.model import (
    READ_CAPABLE,
    SATISFIES,
    STATUS_RANK,
    Channel,
    Condition,
    DispatchStatus,
    MessageStatus,
    Phase,
    StatusEvent,
    StepSpec,
)
from chalicelib.service.ports import ProviderError
from tests.service_harness import Harness

CHANNELS = [Channel.MESSENGER, Channel.VIBER, Channel.WHATSAPP, Channel.SMS, Channel.MMS]


@st.composite
def step_specs(draw, last: bool) -> StepSpec:
    channel = draw(st.sampled_from(CHANNELS))
    base = dict(
        channel=channel,
        to={"type": channel.value, "number": "447700900000"},
        sender={"type": channel.value, "number": "447700900001"},
        message={"content": {"type": "text", "text": "x"}},
    )
    if last:
        return StepSpec(**base)
    conditions = list(Condition) if channel in READ_CAPABLE else [Condition.DELIVERED]
    return StepSpec(
        **base,
        condition=draw(st.sampled_from(conditions)),
        expiry_time=draw(st.sampled_from([15, 30, 600])),
    )


@st.composite
def workflows(draw) -> list[StepSpec]:
    size = draw(st.integers(min_value=1, max_value=4))
    return [draw(step_specs(last=i == size - 1)) for i in range(size)]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("status"), st.integers(0, 3), st.sampled_from(list(MessageStatus))),
        st.tuples(st.just("duplicate")),
        st.tuples(st.just("advance"), st.sampled_from([0, 1, 5, 14, 15, 16, 60, 700])),
        st.tuples(st.just("timer"), st.integers(0, 3)),
        st.tuples(st.just("fail_send"), st.booleans()),
    ),
    max_size=30,
)


def run(h: Harness, specs: list[StepSpec], ops: list[tuple]) -> str:
    uuid = h.service.create(h.app, specs)
    last_event = None
    for op in ops:
        if op[0] == "status":
            if op[1] < len(specs):
                last_event = (op[1], StatusEvent(op[2]))
                h.status(uuid, *last_event)
        elif op[0] == "duplicate" and last_event:
            h.status(uuid, *last_event)
        elif op[0] == "advance":
            h.advance(op[1])
        elif op[0] == "timer":
            h.service.run_check(uuid, op[1])  # early, late, repeated or for another step
        elif op[0] == "fail_send":
            h.provider.fail_next(ProviderError("scripted", permanent=op[1], code="x"))
    for _ in range(20):  # let every deadline, retry and report limit run out
        if h.dispatch(uuid).status.is_final:
            break
        h.advance(100_000)
    return uuid


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=workflows(), ops=operations)
def test_invariants_hold_for_any_interleaving(specs, ops):
    h = Harness()
    uuid = run(h, specs, ops)
    d = h.dispatch(uuid)

    # Each message is sent (accepted by the provider) at most once, in order.
    sent = [m.step_index for m in h.provider.accepted]
    assert sent == sorted(set(sent))

    # Exactly one final report, and it agrees with the stored dispatch.
    assert d.status.is_final
    [report] = h.callbacks.final_reports(uuid)
    assert report["status"] == d.status.value

    # Callbacks are numbered 1..n in the order told, exactly as many as the dispatch counted.
    assert [c.seq for c in h.callbacks.ids] == list(range(1, d.callbacks + 1))
    assert len(h.callbacks.ids) == len(h.callbacks.delivered)

    # Per message, the statuses the application is told never go backwards.
    told = defaultdict(list)
    for payload in h.callbacks.statuses(uuid):
        told[payload["message_uuid"]].append(MessageStatus(payload["status"]))
    for statuses in told.values():
        assert len(statuses) == len(set(statuses))
        failures = [s for s in statuses if s.is_failure]
        assert len(failures) <= 1 and (not failures or statuses[-1] is failures[0])
        ranks = [STATUS_RANK[s] for s in statuses if not s.is_failure]
        assert ranks == sorted(ranks)
        assert not (failures and ranks and max(ranks) > 1)

    # The report names the message that really met its condition, in time.
    winners = [s for s in d.steps if s.phase is Phase.SUCCEEDED]
    if d.status is DispatchStatus.COMPLETED:
        [winner] = winners
        assert report["completed_by"] == winner.message_uuid and d.completed_by == winner.index
        condition = winner.spec.condition or Condition.DELIVERED
        in_time = [r for r in winner.history if not r.late and r.status in SATISFIES[condition]]
        assert in_time and (winner.deadline is None or in_time[0].at < winner.deadline)
        assert all(s.phase is Phase.PENDING for s in d.steps[winner.index + 1 :])
    else:
        assert winners == [] and report["completed_by"] is None
