"""Mapping between the Dispatch aggregate and its DynamoDB item (low-level attribute values).

Pure: no I/O. The layout, one item per dispatch:

    pk=DSP#<uuid>  sk=DSP
    dispatch_uuid, application_id, template, status, current, version     scalars
    created_at, updated_at, due_at, ended_at                              ISO 8601 UTC strings
    completed_by                                                          number
    callbacks (how many callbacks were decided; absent means 0)           number
    steps: [ {index, message_uuid, phase, ..., spec: {...}, history: [...], usage: {...}} ]
    outbox: { "<seq>": {event_id, kind, decided_at, body} }               absent when empty

The outbox is a map keyed by the callback's seq (as a string) rather than a list, so that the
repository can remove the entries delivery took in by name (`REMOVE outbox.#seq`) without
touching entries another writer added meanwhile; decoding sorts them by seq.

Datetimes are stored as `YYYY-MM-DDTHH:MM:SS.ffffffZ`: exact to the microsecond, and they sort
as strings. Enums are stored as their values. Fields that are None are left out. `StepSpec.to`,
`sender` and `message` are JSON-like documents: numbers come back as int when integral, as float
otherwise; lists come back as lists and maps as dicts. Integers keep up to 38 digits; a float
round-trips exactly unless it is integral and beyond 2**53 (DynamoDB numbers are decimal and
untyped, so such a value reads back as the int its shortest repr names).
"""
from __future__ import annotations

import dataclasses
import decimal
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeDeserializer, TypeSerializer

from chalicelib.adapters.dynamodb_table import key
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

DISPATCH_PREFIX = "DSP#"
DISPATCH_SK = "DSP"
#: Attributes the repository adds around the aggregate (keys, TTL, the sweeper's and the callback
#: relay's index keys); decoding ignores them.
_ENVELOPE = frozenset(
    {"pk", "sk", "expires_at", "due_minute", "due_backstop", "relay_minute", "relay_at"}
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def dispatch_key(dispatch_uuid: str) -> dict[str, dict[str, str]]:
    return key(DISPATCH_PREFIX + dispatch_uuid, DISPATCH_SK)


def encode(dispatch: Dispatch) -> dict[str, Any]:
    """The full item for `dispatch`, keys included, in DynamoDB attribute-value format."""
    plain = _dispatch_to_plain(dispatch)
    item = {name: _serializer.serialize(value) for name, value in plain.items()}
    item.update(dispatch_key(dispatch.dispatch_uuid))
    return item


def decode(item: Mapping[str, Any]) -> Dispatch:
    """The Dispatch stored in `item`; attributes it does not know are ignored."""
    plain = {
        name: _from_document(_deserializer.deserialize(value))
        for name, value in item.items()
        if name not in _ENVELOPE
    }
    return _dispatch_from_plain(plain)


# --- datetimes and JSON-like documents ---------------------------------------------------------


def format_time(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive time has no defined instant; storing it would silently shift deadlines.
        raise ValueError("datetimes must be timezone-aware")
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(timezone.utc)


def _to_document(value: Any) -> Any:
    """Validate a JSON-like value and turn floats into Decimals (TypeSerializer refuses floats)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return _checked_decimal(decimal.Decimal(value), value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("DynamoDB cannot store NaN or infinity")
        # repr is the shortest string that reads back as the same float.
        return _checked_decimal(decimal.Decimal(repr(value)), value)
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("document keys must be strings")
        return {k: _to_document(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_document(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in a message document")


def _checked_decimal(number: decimal.Decimal, original: int | float) -> decimal.Decimal:
    try:
        return DYNAMODB_CONTEXT.create_decimal(number)
    except decimal.DecimalException as exc:
        raise ValueError(f"number {original!r} is outside what DynamoDB can store") from exc


def _from_document(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_document(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_document(v) for v in value]
    return value


def _drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _time_or_none(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _parse_or_none(value: str | None) -> datetime | None:
    return None if value is None else parse_time(value)


def _value_or_none(enum_value: Any) -> Any:
    return None if enum_value is None else enum_value.value


# --- aggregate <-> plain dicts -----------------------------------------------------------------


def _dispatch_to_plain(d: Dispatch) -> dict[str, Any]:
    if len({e.seq for e in d.outbox}) != len(d.outbox):
        # Keyed by seq, a repeated one would silently drop an entry.
        raise ValueError("outbox entries must have distinct seqs")
    return _drop_none(
        {
            "dispatch_uuid": d.dispatch_uuid,
            "application_id": d.application_id,
            "template": d.template,
            "status": d.status.value,
            "current": d.current,
            "version": d.version,
            "created_at": format_time(d.created_at),
            "updated_at": format_time(d.updated_at),
            "due_at": _time_or_none(d.due_at),
            "ended_at": _time_or_none(d.ended_at),
            "completed_by": d.completed_by,
            "callbacks": d.callbacks or None,
            "steps": [_step_to_plain(s) for s in d.steps],
            "outbox": {str(e.seq): _outbox_entry_to_plain(e) for e in d.outbox} or None,
        }
    )


def _dispatch_from_plain(p: dict[str, Any]) -> Dispatch:
    return Dispatch(
        dispatch_uuid=p["dispatch_uuid"],
        application_id=p["application_id"],
        template=p["template"],
        status=DispatchStatus(p["status"]),
        current=p["current"],
        version=p["version"],
        created_at=parse_time(p["created_at"]),
        updated_at=parse_time(p["updated_at"]),
        due_at=_parse_or_none(p.get("due_at")),
        ended_at=_parse_or_none(p.get("ended_at")),
        completed_by=p.get("completed_by"),
        callbacks=p.get("callbacks", 0),
        steps=tuple(_step_from_plain(s) for s in p["steps"]),
        outbox=tuple(
            _outbox_entry_from_plain(int(seq), entry)
            for seq, entry in sorted(p.get("outbox", {}).items(), key=lambda kv: int(kv[0]))
        ),
    )


def _outbox_entry_to_plain(e: OutboxEntry) -> dict[str, Any]:
    # The seq is the entry's key in the map, so it is not repeated inside.
    return {
        "event_id": e.event_id,
        "kind": e.kind.value,
        "decided_at": format_time(e.decided_at),
        "body": e.body,
    }


def _outbox_entry_from_plain(seq: int, p: dict[str, Any]) -> OutboxEntry:
    return OutboxEntry(
        seq=seq,
        event_id=p["event_id"],
        kind=CallbackKind(p["kind"]),
        decided_at=parse_time(p["decided_at"]),
        body=p["body"],
    )


def _step_to_plain(s: Step) -> dict[str, Any]:
    return _drop_none(
        {
            "index": s.index,
            "spec": _spec_to_plain(s.spec),
            "message_uuid": s.message_uuid,
            "phase": s.phase.value,
            "status": _value_or_none(s.status),
            "history": [_record_to_plain(r) for r in s.history],
            "attempts": s.attempts,
            "provider": s.provider,
            "provider_message_id": s.provider_message_id,
            "started_at": _time_or_none(s.started_at),
            "sent_at": _time_or_none(s.sent_at),
            "deadline": _time_or_none(s.deadline),
            "ended_at": _time_or_none(s.ended_at),
            "outcome": _value_or_none(s.outcome),
            "error_code": s.error_code,
            "error_reason": s.error_reason,
            "usage": None if s.usage is None else dataclasses.asdict(s.usage),
        }
    )


def _step_from_plain(p: dict[str, Any]) -> Step:
    usage = p.get("usage")
    return Step(
        index=p["index"],
        spec=_spec_from_plain(p["spec"]),
        message_uuid=p["message_uuid"],
        phase=Phase(p["phase"]),
        status=None if p.get("status") is None else MessageStatus(p["status"]),
        history=tuple(_record_from_plain(r) for r in p.get("history", ())),
        attempts=p["attempts"],
        provider=p.get("provider"),
        provider_message_id=p.get("provider_message_id"),
        started_at=_parse_or_none(p.get("started_at")),
        sent_at=_parse_or_none(p.get("sent_at")),
        deadline=_parse_or_none(p.get("deadline")),
        ended_at=_parse_or_none(p.get("ended_at")),
        outcome=None if p.get("outcome") is None else Outcome(p["outcome"]),
        error_code=p.get("error_code"),
        error_reason=p.get("error_reason"),
        usage=None if usage is None else Usage(price=usage["price"], currency=usage["currency"]),
    )


def _spec_to_plain(s: StepSpec) -> dict[str, Any]:
    return _drop_none(
        {
            "channel": s.channel.value,
            "to": _to_document(s.to),
            "sender": _to_document(s.sender),
            "message": _to_document(s.message),
            "condition": _value_or_none(s.condition),
            "expiry_time": s.expiry_time,
        }
    )


def _spec_from_plain(p: dict[str, Any]) -> StepSpec:
    return StepSpec(
        channel=Channel(p["channel"]),
        to=p["to"],
        sender=p["sender"],
        message=p["message"],
        condition=None if p.get("condition") is None else Condition(p["condition"]),
        expiry_time=p.get("expiry_time"),
    )


def _record_to_plain(r: StatusRecord) -> dict[str, Any]:
    return _drop_none(
        {
            "status": r.status.value,
            "at": format_time(r.at),
            "error_code": r.error_code,
            "error_reason": r.error_reason,
            "late": r.late,
        }
    )


def _record_from_plain(p: dict[str, Any]) -> StatusRecord:
    return StatusRecord(
        status=MessageStatus(p["status"]),
        at=parse_time(p["at"]),
        error_code=p.get("error_code"),
        error_reason=p.get("error_reason"),
        late=p.get("late", False),
    )
