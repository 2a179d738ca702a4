"""Read models: a dispatch, as `GET /v0.1/dispatch/{dispatch_uuid}` returns it, and its
callbacks, as the callbacks API lists them."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib.domain.callbacks import Attempt, CallbackRecord, DeliveryState
from chalicelib.domain.model import Dispatch, StatusRecord, Step, Usage
from chalicelib.service.callback_payloads import iso, total_usage


def dispatch_view(dispatch: Dispatch) -> dict[str, Any]:
    completed_by = dispatch.completed_by
    usage = total_usage(dispatch.steps)
    return {
        "dispatch_uuid": dispatch.dispatch_uuid,
        "template": dispatch.template,
        "status": dispatch.status.value,
        "created_at": iso(dispatch.created_at),
        "updated_at": iso(dispatch.updated_at),
        "ended_at": _iso(dispatch.ended_at),
        "completed_by": None if completed_by is None else dispatch.steps[completed_by].message_uuid,
        "usage": usage,
        "messages": [_message_view(step) for step in dispatch.steps],
        "_links": {"self": {"href": f"/v0.1/dispatch/{dispatch.dispatch_uuid}"}},
    }


def _message_view(step: Step) -> dict[str, Any]:
    spec = step.spec
    has_error = step.error_code is not None or step.error_reason is not None
    return {
        "index": step.index,
        "channel": step.channel.value,
        "message_uuid": step.message_uuid,
        "to": dict(spec.to),
        "from": dict(spec.sender),
        "phase": step.phase.value,
        "status": step.status.value if step.status else None,
        "condition_status": spec.condition.value if spec.condition else None,
        "expiry_time": spec.expiry_time,
        "attempts": step.attempts,
        "sent_at": _iso(step.sent_at),
        "deadline": _iso(step.deadline),
        "ended_at": _iso(step.ended_at),
        "outcome": step.outcome.value if step.outcome else None,
        "error": {"code": step.error_code, "reason": step.error_reason} if has_error else None,
        "usage": _usage(step.usage),
        "history": [_history_entry(record) for record in step.history],
    }


def _history_entry(record: StatusRecord) -> dict[str, Any]:
    has_error = record.error_code is not None or record.error_reason is not None
    return {
        "status": record.status.value,
        "timestamp": iso(record.at),
        "late": record.late,
        "error": {"code": record.error_code, "reason": record.error_reason} if has_error else None,
    }


def callback_view(record: CallbackRecord, *, with_dispatch: bool = False) -> dict[str, Any]:
    """One callback with its delivery history. `with_dispatch` adds `dispatch_uuid`, for lists
    that span dispatches."""
    pending = record.state is DeliveryState.PENDING
    view: dict[str, Any] = {"dispatch_uuid": record.dispatch_uuid} if with_dispatch else {}
    view.update(
        {
            "seq": record.seq,
            "event_id": record.event_id,
            "type": record.kind.value,
            "state": record.state.value,
            "decided_at": iso(record.decided_at),
            # Only a pending callback waits; a stale next_at on another state would mislead.
            "next_attempt_at": _iso(record.next_at) if pending else None,
            "dead_at": _iso(record.dead_at),
            "dead_reason": record.dead_reason,
            "replays": record.replays,
            "attempts": [_attempt_view(attempt) for attempt in record.attempts],
            # The stored body is the exact bytes posted; parsed, so clients need not decode twice.
            "payload": json.loads(record.body),
        }
    )
    return view


def _attempt_view(attempt: Attempt) -> dict[str, Any]:
    return {
        "at": iso(attempt.at),
        "http_status": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }


def _usage(usage: Usage | None) -> dict[str, str] | None:
    return {"price": usage.price, "currency": usage.currency} if usage else None


def _iso(value: datetime | None) -> str | None:
    return iso(value) if value else None
