"""Dispatch <-> DynamoDB item: an exact round trip for any dispatch, and the stored form."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters import dispatch_codec
from chalicelib.domain.callbacks import CallbackKind, OutboxEntry
from chalicelib.domain.model import (
    Channel,
    Condition,
    Dispatch,
    DispatchStatus,
    MessageStatus,
    Outcome,
    Phase,
    StatusRecord,
    Step,
    StepSpec,
    Usage,
)

# --- strategies (also used by the DynamoDB round-trip test) -----------------------------------

_offsets = st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(
    lambda d: timezone(timedelta(minutes=d // timedelta(minutes=1)))
)
#: Aware times in any offset: they must come back as the same instant, in UTC.
aware_times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=_offsets
)
_texts = st.text(max_size=12)
#: DynamoDB numbers: 38 significant digits, and floats whose shortest repr fits its range.
_numbers = st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1) | st.floats(
    min_value=-(2.0**53), max_value=2.0**53, allow_nan=False, allow_infinity=False
).filter(lambda f: f == 0 or abs(f) > 1e-100)
json_values = st.recursive(
    st.none() | st.booleans() | _numbers | _texts,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=3),
    max_leaves=8,
)
_documents = st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=4)
_small = st.integers(min_value=0, max_value=10_000)


def _optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


_specs = st.builds(
    StepSpec,
    channel=st.sampled_from(Channel),
    to=_documents,
    sender=_documents,
    message=_documents,
    condition=_optional(st.sampled_from(Condition)),
    expiry_time=_optional(_small),
)
_records = st.builds(
    StatusRecord,
    status=st.sampled_from(MessageStatus),
    at=aware_times,
    error_code=_optional(_texts),
    error_reason=_optional(_texts),
    late=st.booleans(),
)
_steps = st.builds(
    Step,
    index=_small,
    spec=_specs,
    message_uuid=_texts,
    phase=st.sampled_from(Phase),
    status=_optional(st.sampled_from(MessageStatus)),
    history=st.lists(_records, max_size=3).map(tuple),
    attempts=_small,
    provider=_optional(_texts),
    provider_message_id=_optional(_texts),
    started_at=_optional(aware_times),
    sent_at=_optional(aware_times),
    deadline=_optional(aware_times),
    ended_at=_optional(aware_times),
    outcome=_optional(st.sampled_from(Outcome)),
    error_code=_optional(_texts),
    error_reason=_optional(_texts),
    usage=_optional(st.builds(Usage, price=_texts, currency=_texts)),
)
_outbox_entries = st.builds(
    OutboxEntry,
    seq=st.integers(min_value=1, max_value=10**6),
    event_id=_texts,
    kind=st.sampled_from(CallbackKind),
    decided_at=aware_times,
    body=st.text(max_size=40),
)
#: Distinct seqs, by seq: the order the service keeps its outbox in.
outboxes = st.lists(_outbox_entries, max_size=4, unique_by=lambda e: e.seq).map(
    lambda entries: tuple(sorted(entries, key=lambda e: e.seq))
)
dispatches = st.builds(
    Dispatch,
    dispatch_uuid=st.uuids().map(str),
    application_id=_texts,
    steps=st.lists(_steps, min_size=1, max_size=3).map(tuple),
    created_at=aware_times,
    updated_at=aware_times,
    template=_texts,
    status=st.sampled_from(DispatchStatus),
    current=_small,
    due_at=_optional(aware_times),
    completed_by=_optional(_small),
    ended_at=_optional(aware_times),
    version=_small,
    callbacks=_small,
    outbox=outboxes,
).map(lambda d: dataclasses.replace(d, current=d.current % len(d.steps)))  # a real step


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(dispatches)
def test_round_trip_is_exact(dispatch: Dispatch) -> None:
    decoded = dispatch_codec.decode(dispatch_codec.encode(dispatch))

    assert decoded == dispatch
    assert isinstance(decoded.steps, tuple)
    assert all(isinstance(s.history, tuple) for s in decoded.steps)


@settings(max_examples=100, deadline=None)
@given(dispatches)
def test_decoded_times_are_utc(dispatch: Dispatch) -> None:
    decoded = dispatch_codec.decode(dispatch_codec.encode(dispatch))

    assert decoded.created_at.tzinfo is timezone.utc
    assert decoded.created_at.replace(tzinfo=None) == dispatch.created_at.astimezone(
        timezone.utc
    ).replace(tzinfo=None)


# --- the stored form --------------------------------------------------------------------------

T0 = datetime(2025, 3, 1, 12, 0, 0, 1, tzinfo=timezone.utc)


def _dispatch(**changes) -> Dispatch:
    spec = StepSpec(
        channel=Channel.WHATSAPP,
        to={"type": "whatsapp", "number": "447700900000"},
        sender={"type": "whatsapp", "number": "447700900001"},
        message={"content": {"type": "text", "text": "hi"}, "ttl": 600, "flags": [True, None]},
        condition=Condition.READ,
        expiry_time=600,
    )
    step = Step(index=0, spec=spec, message_uuid="m-0")
    base = Dispatch(
        dispatch_uuid="d-1", application_id="app-1", steps=(step,), created_at=T0, updated_at=T0
    )
    return Dispatch(**{**base.__dict__, **changes})


def test_item_has_keys_iso_times_and_enum_values() -> None:
    item = dispatch_codec.encode(_dispatch(due_at=T0 + timedelta(seconds=600)))

    assert item["pk"] == {"S": "DSP#d-1"} and item["sk"] == {"S": "DSP"}
    assert item["created_at"] == {"S": "2025-03-01T12:00:00.000001Z"}
    assert item["due_at"] == {"S": "2025-03-01T12:10:00.000001Z"}
    assert item["status"] == {"S": "in_progress"}
    step = item["steps"]["L"][0]["M"]
    assert step["phase"] == {"S": "pending"}
    assert step["spec"]["M"]["channel"] == {"S": "whatsapp"}
    assert step["spec"]["M"]["message"]["M"]["ttl"] == {"N": "600"}


def test_none_fields_are_left_out() -> None:
    item = dispatch_codec.encode(_dispatch())
    step = item["steps"]["L"][0]["M"]

    assert not {"due_at", "ended_at", "completed_by"} & item.keys()
    assert not {"status", "provider", "sent_at", "outcome", "usage"} & step.keys()


def test_times_in_other_offsets_are_stored_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    item = dispatch_codec.encode(_dispatch(created_at=T0.astimezone(paris)))

    assert item["created_at"] == {"S": "2025-03-01T12:00:00.000001Z"}


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        dispatch_codec.encode(_dispatch(updated_at=T0.replace(tzinfo=None)))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 10**40])
def test_numbers_dynamodb_cannot_hold_are_refused(bad) -> None:
    step = _dispatch().steps[0]
    spec = StepSpec(**{**step.spec.__dict__, "message": {"n": bad}})
    with pytest.raises(ValueError):
        dispatch_codec.encode(_dispatch(steps=(Step(**{**step.__dict__, "spec": spec}),)))


def test_non_json_values_are_refused() -> None:
    step = _dispatch().steps[0]
    spec = StepSpec(**{**step.spec.__dict__, "to": {"raw": b"\x00"}})
    with pytest.raises(TypeError, match="bytes"):
        dispatch_codec.encode(_dispatch(steps=(Step(**{**step.__dict__, "spec": spec}),)))


def test_numbers_read_back_as_int_when_integral() -> None:
    item = dispatch_codec.encode(_dispatch())
    message = item["steps"]["L"][0]["M"]["spec"]["M"]["message"]["M"]
    message["ttl"] = {"N": "600.0"}
    message["ratio"] = {"N": "0.25"}

    decoded = dispatch_codec.decode(item).steps[0].spec.message

    assert decoded["ttl"] == 600 and type(decoded["ttl"]) is int
    assert decoded["ratio"] == 0.25 and type(decoded["ratio"]) is float
    assert not any(isinstance(v, Decimal) for v in decoded.values())


def test_envelope_and_unknown_attributes_are_ignored() -> None:
    item = dispatch_codec.encode(_dispatch())
    item["expires_at"] = {"N": "1700000000"}
    item["added_later"] = {"S": "x"}

    assert dispatch_codec.decode(item) == _dispatch()


# --- the outbox -------------------------------------------------------------------------------


def _entry(seq: int, kind: CallbackKind = CallbackKind.MESSAGE_STATUS, **changes) -> OutboxEntry:
    fields = {
        "seq": seq,
        "event_id": f"evt-{seq}",
        "kind": kind,
        "decided_at": T0 + timedelta(seconds=seq),
        "body": f'{{"seq": {seq}}}',
    }
    return OutboxEntry(**{**fields, **changes})


def test_the_outbox_is_a_map_keyed_by_seq() -> None:
    paris = timezone(timedelta(hours=1))
    entry = _entry(7, CallbackKind.FINAL_REPORT, decided_at=T0.astimezone(paris), body="")

    item = dispatch_codec.encode(_dispatch(outbox=(entry,)))

    assert item["outbox"] == {
        "M": {
            "7": {
                "M": {
                    "event_id": {"S": "evt-7"},
                    "kind": {"S": "final_report"},
                    "decided_at": {"S": "2025-03-01T12:00:00.000001Z"},
                    "body": {"S": ""},
                }
            }
        }
    }


def test_an_empty_outbox_is_left_out() -> None:
    assert "outbox" not in dispatch_codec.encode(_dispatch())
    assert dispatch_codec.decode(dispatch_codec.encode(_dispatch())).outbox == ()


def test_the_outbox_decodes_by_seq_not_as_strings_sort() -> None:
    entries = (_entry(2), _entry(10), _entry(100, CallbackKind.INBOUND))
    item = dispatch_codec.encode(_dispatch(outbox=entries))
    # Map order in an item means nothing: store them in string order, the worst case.
    item["outbox"]["M"] = dict(sorted(item["outbox"]["M"].items()))

    assert dispatch_codec.decode(item).outbox == entries


def test_repeated_outbox_seqs_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct seqs"):
        dispatch_codec.encode(_dispatch(outbox=(_entry(1), _entry(1, body="other"))))


def test_the_relay_index_attributes_are_envelope() -> None:
    dispatch = _dispatch(outbox=(_entry(1),))
    item = dispatch_codec.encode(dispatch)
    item["relay_minute"] = {"S": "outbox#2025-03-01T12:00"}
    item["relay_at"] = {"S": "2025-03-01T12:00:01.000001Z"}

    assert dispatch_codec.decode(item) == dispatch
