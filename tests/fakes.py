"""Fakes for the service's own ports: a settable clock, a recording timer, scriptable providers
and a callback recorder. The in-memory repositories live in fake_repository.py and
fake_applications.py."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from chalicelib.domain.application import Application
from chalicelib.domain.callbacks import AttemptResult, CallbackKind, CallbackRecord
from chalicelib.domain.model import Step
from chalicelib.service.ports import ProviderError

T0 = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self, start: datetime = T0):
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


class RecordingTimer:
    """Keeps the latest check of each (dispatch, step), as the local timer does; tests fire them."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, int], datetime] = {}
        self.scheduled: list[tuple[str, int, datetime]] = []
        self.cancelled: list[tuple[str, int, datetime]] = []
        #: The `at` of every check scheduled or cancelled as a backstop.
        self.backstops: set[datetime] = set()

    def schedule(
        self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False
    ) -> None:
        self.pending[(dispatch_uuid, step_index)] = at
        self.scheduled.append((dispatch_uuid, step_index, at))
        if backstop:
            self.backstops.add(at)

    def cancel(
        self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False
    ) -> None:
        if self.pending.get((dispatch_uuid, step_index)) == at:
            del self.pending[(dispatch_uuid, step_index)]
        self.cancelled.append((dispatch_uuid, step_index, at))
        if backstop:
            self.backstops.add(at)

    def due(self, now: datetime) -> list[tuple[str, int]]:
        return sorted(
            (key for key, at in self.pending.items() if at <= now),
            key=lambda key: self.pending[key],
        )


@dataclass
class SentMessage:
    dispatch_uuid: str
    step_index: int
    message_uuid: str
    provider_message_id: str


class ScriptedProvider:
    """Accepts every message unless a failure is queued for its next sends."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.accepted: list[SentMessage] = []
        self.attempts: list[tuple[str, int]] = []
        self.failures: list[ProviderError | Exception] = []

    def fail_next(self, *errors: ProviderError | Exception) -> None:
        self.failures.extend(errors)

    def send(self, dispatch_uuid: str, step: Step) -> str:
        self.attempts.append((dispatch_uuid, step.index))
        if self.failures:
            raise self.failures.pop(0)
        provider_message_id = f"{self.name}-{step.message_uuid}"
        self.accepted.append(
            SentMessage(dispatch_uuid, step.index, step.message_uuid, provider_message_id)
        )
        return provider_message_id

    def recipient_key(self, step: Step) -> str | None:
        to = step.spec.to
        return str(to.get("number") or to.get("id")) if (to.get("number") or to.get("id")) else None


@dataclass(frozen=True)
class CallbackId:
    event_id: str
    seq: int


@dataclass
class RecordingCallbacks:
    """A CallbackTransport that keeps what it delivers; `script` holds answers to give first
    (an AttemptResult each), after which every attempt is answered 204."""

    delivered: list[tuple[str, dict]] = field(default_factory=list)
    #: Relayed user messages, kept apart: they go to the inbound URL.
    inbound: list[tuple[str, dict]] = field(default_factory=list)
    #: The identity of each status callback, in the order delivered.
    ids: list[CallbackId] = field(default_factory=list)
    #: Every record attempted, delivered or not, in order.
    attempts: list[CallbackRecord] = field(default_factory=list)
    script: list[AttemptResult] = field(default_factory=list)

    def attempt(self, application: Application, record: CallbackRecord) -> AttemptResult:
        self.attempts.append(record)
        result = self.script.pop(0) if self.script else AttemptResult(status_code=204)
        if not result.delivered:
            return result
        payload = json.loads(record.body)
        inbound = record.kind is CallbackKind.INBOUND
        (self.inbound if inbound else self.delivered).append((application.application_id, payload))
        if not inbound:
            self.ids.append(CallbackId(record.event_id, record.seq))
        return result

    def for_dispatch(self, dispatch_uuid: str) -> list[dict]:
        return [
            payload
            for _, payload in self.delivered
            if payload.get("dispatch_uuid") == dispatch_uuid
            or payload.get("_links", {}).get("workflow", {}).get("dispatch_uuid") == dispatch_uuid
        ]

    def final_reports(self, dispatch_uuid: str) -> list[dict]:
        return [p for p in self.for_dispatch(dispatch_uuid) if "template" in p]

    def statuses(self, dispatch_uuid: str) -> list[dict]:
        return [p for p in self.for_dispatch(dispatch_uuid) if "message_uuid" in p]
