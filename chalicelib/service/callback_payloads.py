"""The JSON bodies of the two callbacks a dispatch sends to the application's status URL.

Contract §3.2 (per-message status) and §3.3 (final report). Pure functions over the domain
model: no I/O, no clock. Also home to `iso`, the one timestamp format used on the wire.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib.domain.model import Dispatch, Phase, StatusRecord, Step, Usage


def iso(dt: datetime) -> str:
    """UTC, millisecond precision, "Z" suffix: "2026-11-24T06:22:36.123Z".

    Naive datetimes are refused: guessing their zone would silently shift timestamps.
    """
    if dt.tzinfo is not timezone.utc:  # the service's own times are; checking it first is cheap
        if dt.tzinfo is None or dt.utcoffset() is None:
            raise ValueError("iso() needs a timezone-aware datetime")
        dt = dt.astimezone(timezone.utc)
    # isoformat truncates to the millisecond rather than rounding, so .9995 never rolls over into
    # the next second; it ends "+00:00", written "Z" here.
    return dt.isoformat(timespec="milliseconds")[:-6] + "Z"


def dispatch_href(dispatch_uuid: str) -> str:
    return f"/v0.1/dispatch/{dispatch_uuid}"


def message_status_payload(dispatch: Dispatch, step: Step, record: StatusRecord) -> dict[str, Any]:
    """One status of one message, with the link back to its dispatch (§3.2)."""
    payload: dict[str, Any] = {
        "message_uuid": step.message_uuid,
        "to": dict(step.spec.to),
        "from": dict(step.spec.sender),
        "timestamp": iso(record.at),
        "status": record.status.value,
    }
    if record.error_code is not None or record.error_reason is not None:
        payload["error"] = {"code": record.error_code, "reason": record.error_reason}
    if step.usage is not None:
        payload["usage"] = _usage(step.usage)
    payload["_links"] = {
        "workflow": {
            "dispatch_uuid": dispatch.dispatch_uuid,
            "href": dispatch_href(dispatch.dispatch_uuid),
        }
    }
    return payload


def final_report_payload(dispatch: Dispatch, at: datetime) -> dict[str, Any]:
    """The dispatch-level report sent once the dispatch has ended (§3.3)."""
    if not dispatch.status.is_final:
        raise ValueError("a final report needs a completed or errored dispatch")
    payload: dict[str, Any] = {
        "dispatch_uuid": dispatch.dispatch_uuid,
        "template": dispatch.template,
        "status": dispatch.status.value,
        "timestamp": iso(at),
    }
    total = total_usage(dispatch.steps)
    if total is not None:
        payload["usage"] = total
    completed = dispatch.completed_by
    payload["completed_by"] = None if completed is None else dispatch.steps[completed].message_uuid
    payload["_links"] = {
        "messages": [_message_link(dispatch, s) for s in dispatch.steps if was_started(s)]
    }
    return payload


def was_started(step: Step) -> bool:
    """Whether the step ever got as far as a send attempt."""
    return step.phase is not Phase.PENDING


def total_usage(steps: tuple[Step, ...]) -> dict[str, str] | None:
    """Sum of the steps' prices, or None when no step has usage or no honest total exists.

    Prices stay decimal strings end to end: floats would turn "0.0333" into 0.0333000000001.
    When currencies differ there is no single-currency total to report and we have no exchange
    rates, so the total is omitted; the per-message usages in `_links` still carry every price.
    An unparseable or non-finite price is treated the same way rather than failing the report.
    """
    usages = [s.usage for s in steps if s.usage is not None]
    if not usages:
        return None
    currencies = {u.currency for u in usages}
    if len(currencies) != 1:
        return None
    try:
        price = sum((Decimal(u.price) for u in usages), Decimal(0))
    except (InvalidOperation, TypeError):
        return None
    if not price.is_finite():
        return None
    # Fixed-point, so an input like "1E-4" never leaks exponent notation onto the wire.
    return {"price": format(price, "f"), "currency": currencies.pop()}


def encode(payload: Mapping[str, Any]) -> str:
    """The body as sent: compact JSON, UTF-8 text kept as is."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def callback_event_id(dispatch_uuid: str, seq: int) -> str:
    """The event id of a dispatch's `seq`-th callback: the same on every delivery and replay."""
    return str(uuid.uuid5(uuid.UUID(dispatch_uuid), f"callback:{seq}"))


def dispatch_uuid_of(body: Any) -> str | None:
    """The dispatch a received callback belongs to, from either payload shape.

    Final reports carry `dispatch_uuid` at the top; message statuses carry it under
    `_links.workflow`. Anything else (including non-object JSON) gives None.
    """
    if not isinstance(body, Mapping):
        return None
    top = body.get("dispatch_uuid")
    if isinstance(top, str) and top:
        return top
    links = body.get("_links")
    workflow = links.get("workflow") if isinstance(links, Mapping) else None
    nested = workflow.get("dispatch_uuid") if isinstance(workflow, Mapping) else None
    return nested if isinstance(nested, str) and nested else None


def _usage(usage: Usage) -> dict[str, str]:
    return {"price": usage.price, "currency": usage.currency}


def _message_link(dispatch: Dispatch, step: Step) -> dict[str, Any]:
    link: dict[str, Any] = {
        "message_uuid": step.message_uuid,
        "href": dispatch_href(dispatch.dispatch_uuid),
        "channel": step.channel.value,
        "status": step.status.value if step.status is not None else None,
    }
    if step.usage is not None:
        link["usage"] = _usage(step.usage)
    return link
