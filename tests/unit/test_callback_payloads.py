"""Callback payload shapes: the per-message status (§3.2) and the final report (§3.3)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain.model import (
    Channel,
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
from chalicelib.service.callback_payloads import (
    dispatch_uuid_of,
    final_report_payload,
    iso,
    message_status_payload,
)

T0 = datetime(2026, 11, 24, 6, 22, 36, 123456, tzinfo=timezone.utc)
DISPATCH_UUID = "d0000000-0000-4000-8000-000000000001"


def _spec(channel: Channel = Channel.WHATSAPP) -> StepSpec:
    return StepSpec(
        channel=channel,
        to={"type": channel.value, "number": "447700900000"},
        sender={"type": channel.value, "number": "447700900001"},
        message={"content": {"type": "text", "text": "secret text"}},
    )


def _step(index: int, channel: Channel = Channel.WHATSAPP, **changes) -> Step:
    step = Step(index=index, spec=_spec(channel), message_uuid=f"m{index}")
    return replace(step, **changes)


def _dispatch(*steps: Step, **changes) -> Dispatch:
    dispatch = Dispatch(
        dispatch_uuid=DISPATCH_UUID,
        application_id="app-1",
        steps=steps,
        created_at=T0,
        updated_at=T0,
    )
    return replace(dispatch, **changes)


# --- iso -------------------------------------------------------------------------------------


def test_iso_is_utc_with_milliseconds_and_z():
    assert iso(T0) == "2026-11-24T06:22:36.123Z"


def test_iso_converts_other_zones_to_utc_and_truncates():
    plus_two = timezone(timedelta(hours=2))
    dt = datetime(2026, 1, 1, 2, 0, 0, 999999, tzinfo=plus_two)
    assert iso(dt) == "2026-01-01T00:00:00.999Z"


def test_iso_truncates_utc_times_too():
    assert iso(datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)) == "2026-12-31T23:59:59.999Z"


def test_iso_writes_any_zero_offset_zone_as_z():
    named = timezone(timedelta(0), "GMT")
    assert named is not timezone.utc
    assert iso(datetime(2026, 7, 1, 12, 0, 0, 5000, tzinfo=named)) == "2026-07-01T12:00:00.005Z"


def test_iso_pads_zero_milliseconds():
    assert iso(T0.replace(microsecond=0)) == "2026-11-24T06:22:36.000Z"


def test_iso_refuses_naive_datetimes():
    with pytest.raises(ValueError):
        iso(datetime(2026, 1, 1))


# --- message status --------------------------------------------------------------------------


def test_message_status_minimal_has_exact_keys_and_values():
    step = _step(0, phase=Phase.WAITING)
    record = StatusRecord(status=MessageStatus.DELIVERED, at=T0)

    payload = message_status_payload(_dispatch(step), step, record)

    assert payload == {
        "message_uuid": "m0",
        "to": {"type": "whatsapp", "number": "447700900000"},
        "from": {"type": "whatsapp", "number": "447700900001"},
        "timestamp": "2026-11-24T06:22:36.123Z",
        "status": "delivered",
        "_links": {
            "workflow": {
                "dispatch_uuid": DISPATCH_UUID,
                "href": f"/v0.1/dispatch/{DISPATCH_UUID}",
            }
        },
    }
    assert type(payload["to"]) is dict and type(payload["from"]) is dict


def test_message_status_never_carries_message_text():
    step = _step(0)
    payload = message_status_payload(_dispatch(step), step, StatusRecord(MessageStatus.READ, T0))
    assert "secret text" not in repr(payload)


def test_message_status_with_error_and_usage():
    step = _step(0, usage=Usage(price="0.0333", currency="EUR"))
    record = StatusRecord(
        status=MessageStatus.REJECTED, at=T0, error_code="1300", error_reason="Not in network"
    )

    payload = message_status_payload(_dispatch(step), step, record)

    assert set(payload) == {
        "message_uuid", "to", "from", "timestamp", "status", "error", "usage", "_links"
    }
    assert payload["status"] == "rejected"
    assert payload["error"] == {"code": "1300", "reason": "Not in network"}
    assert payload["usage"] == {"price": "0.0333", "currency": "EUR"}


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        ("1300", None, {"code": "1300", "reason": None}),
        (None, "timed out", {"code": None, "reason": "timed out"}),
    ],
)
def test_message_status_error_present_when_either_field_is_set(code, reason, expected):
    step = _step(0)
    record = StatusRecord(MessageStatus.UNDELIVERABLE, T0, error_code=code, error_reason=reason)
    assert message_status_payload(_dispatch(step), step, record)["error"] == expected


# --- final report ----------------------------------------------------------------------------

FINAL_KEYS = {"dispatch_uuid", "template", "status", "timestamp", "completed_by", "_links"}


def test_final_report_completed_by_second_step_with_summed_usage():
    first = _step(0, phase=Phase.FAILED, outcome=Outcome.EXPIRED, status=MessageStatus.SUBMITTED,
                  usage=Usage("0.0333", "EUR"))
    second = _step(1, Channel.SMS, phase=Phase.SUCCEEDED, outcome=Outcome.CONDITION_MET,
                   status=MessageStatus.DELIVERED, usage=Usage("0.0200", "EUR"))
    dispatch = _dispatch(first, second, status=DispatchStatus.COMPLETED, completed_by=1)

    payload = final_report_payload(dispatch, T0)

    assert set(payload) == FINAL_KEYS | {"usage"}
    assert payload["dispatch_uuid"] == DISPATCH_UUID
    assert payload["template"] == "failover"
    assert payload["status"] == "completed"
    assert payload["timestamp"] == "2026-11-24T06:22:36.123Z"
    assert payload["usage"] == {"price": "0.0533", "currency": "EUR"}
    assert payload["completed_by"] == "m1"
    assert payload["_links"]["messages"] == [
        {"message_uuid": "m0", "href": f"/v0.1/dispatch/{DISPATCH_UUID}", "channel": "whatsapp",
         "status": "submitted", "usage": {"price": "0.0333", "currency": "EUR"}},
        {"message_uuid": "m1", "href": f"/v0.1/dispatch/{DISPATCH_UUID}", "channel": "sms",
         "status": "delivered", "usage": {"price": "0.0200", "currency": "EUR"}},
    ]


def test_final_report_lists_only_started_steps():
    started = _step(0, Channel.VIBER, phase=Phase.SUCCEEDED, status=MessageStatus.READ)
    pending = _step(1, phase=Phase.PENDING)
    dispatch = _dispatch(started, pending, status=DispatchStatus.COMPLETED, completed_by=0)

    links = final_report_payload(dispatch, T0)["_links"]["messages"]

    assert [link["message_uuid"] for link in links] == ["m0"]
    assert links[0]["channel"] == "viber_service_msg"


def test_final_report_keeps_failed_steps_that_were_sent():
    failed = _step(0, phase=Phase.FAILED, outcome=Outcome.SEND_FAILED)
    dispatch = _dispatch(failed, status=DispatchStatus.ERROR)

    payload = final_report_payload(dispatch, T0)

    assert set(payload) == FINAL_KEYS  # no usage anywhere, so no total
    assert payload["status"] == "error"
    assert payload["completed_by"] is None
    assert payload["_links"]["messages"] == [
        {"message_uuid": "m0", "href": f"/v0.1/dispatch/{DISPATCH_UUID}", "channel": "whatsapp",
         "status": None}
    ]


def test_final_report_omits_total_when_currencies_differ():
    a = _step(0, phase=Phase.FAILED, outcome=Outcome.EXPIRED, usage=Usage("0.01", "EUR"))
    b = _step(1, phase=Phase.SUCCEEDED, usage=Usage("0.02", "GBP"))
    payload = final_report_payload(_dispatch(a, b, status=DispatchStatus.COMPLETED), T0)

    assert "usage" not in payload
    assert [m["usage"]["currency"] for m in payload["_links"]["messages"]] == ["EUR", "GBP"]


def test_final_report_sums_exactly_and_without_exponents():
    steps = [_step(i, phase=Phase.FAILED, outcome=Outcome.EXPIRED, usage=Usage(p, "EUR"))
             for i, p in enumerate(["0.1", "0.2", "1E-4"])]
    payload = final_report_payload(_dispatch(*steps, status=DispatchStatus.ERROR), T0)
    assert payload["usage"] == {"price": "0.3001", "currency": "EUR"}


def test_final_report_omits_total_when_a_price_is_garbage():
    a = _step(0, phase=Phase.FAILED, outcome=Outcome.EXPIRED, usage=Usage("abc", "EUR"))
    b = _step(1, phase=Phase.SUCCEEDED, usage=Usage("0.02", "EUR"))
    assert "usage" not in final_report_payload(_dispatch(a, b, status=DispatchStatus.ERROR), T0)


def test_final_report_refuses_a_dispatch_still_in_progress():
    with pytest.raises(ValueError):
        final_report_payload(_dispatch(_step(0, phase=Phase.WAITING)), T0)


# --- dispatch_uuid_of ------------------------------------------------------------------------


def test_dispatch_uuid_of_reads_both_shapes():
    step = _step(0, phase=Phase.SUCCEEDED, status=MessageStatus.DELIVERED)
    dispatch = _dispatch(step, status=DispatchStatus.COMPLETED, completed_by=0)
    status = message_status_payload(dispatch, step, StatusRecord(MessageStatus.DELIVERED, T0))

    assert dispatch_uuid_of(final_report_payload(dispatch, T0)) == DISPATCH_UUID
    assert dispatch_uuid_of(status) == DISPATCH_UUID


@pytest.mark.parametrize(
    "body",
    [{}, {"_links": "x"}, {"_links": {"workflow": None}}, {"dispatch_uuid": 5}, [1], "text", None],
)
def test_dispatch_uuid_of_gives_none_for_anything_else(body):
    assert dispatch_uuid_of(body) is None
