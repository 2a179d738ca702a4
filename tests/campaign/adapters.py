"""The service's ports as the campaign drives them: each one real in behaviour, with faults.

Every adapter asks the world for the dispatch's record (its random generator and its trace), so
a fault is drawn from that dispatch's own stream and written into its fault plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.domain.application import Application
from chalicelib.domain.callbacks import AttemptResult, CallbackRecord
from chalicelib.domain.model import Dispatch, Step
from chalicelib.service.ports import DispatchRepository, MessageRef, OverdueCheck, ProviderError
from tests.campaign.faults import SimulatedCrash
from tests.campaign.records import S
from tests.fake_callbacks import InMemoryCallbackStore
from tests.fake_repository import InMemoryDispatchRepository

if TYPE_CHECKING:
    from tests.campaign.world import World

PROVIDER = "sim"


class FaultyRepository:
    """The in-memory repository (the one sharing the DynamoDB repository's contract tests),
    with a process death after a committed write and another input let in before a save."""

    def __init__(
        self, world: World, inner: InMemoryDispatchRepository | DispatchRepository, *, wire: bool = False
    ) -> None:
        self._world = world
        self.inner = inner
        #: On moto, what a save committed is read off the wire (`aws.FaultWire`), because a save
        #: that raised may have committed all the same; in memory, a save that returned did.
        self._wire = wire

    def get(self, dispatch_uuid: str) -> Dispatch | None:
        return self.inner.get(dispatch_uuid)

    def add(self, dispatch: Dispatch) -> Dispatch:
        stored = self.inner.add(dispatch)
        self._maybe_crash(dispatch.dispatch_uuid, "crash_after_save", "add")
        return stored

    def save(self, dispatch: Dispatch, message_refs: Sequence[MessageRef] = ()) -> Dispatch:
        self._world.race(dispatch.dispatch_uuid)
        stored = self.inner.save(dispatch, message_refs)
        if not self._wire:
            self._world.saves += 1
            for ref in message_refs:
                self._world.routed.add(ref.provider_message_id)
            self._world.saved(self._world.record_of(dispatch.dispatch_uuid))
        self._maybe_crash(dispatch.dispatch_uuid, "crash_after_save", "save")
        return stored

    def find_message(self, provider: str, provider_message_id: str) -> MessageRef | None:
        return self.inner.find_message(provider, provider_message_id)

    def find_recipient(self, provider: str, recipient: str) -> MessageRef | None:
        return self.inner.find_recipient(provider, recipient)

    def overdue(self, cutoff: datetime, since: datetime) -> list[OverdueCheck]:
        return self.inner.overdue(cutoff, since)

    def prune_outbox(self, dispatch: Dispatch, seqs: Collection[int]) -> None:
        self.inner.prune_outbox(dispatch, seqs)
        self._maybe_crash(dispatch.dispatch_uuid, "crash_after_prune", "prune")

    def unrelayed(self, cutoff: datetime, since: datetime) -> list[str]:
        return self.inner.unrelayed(cutoff, since)

    def _maybe_crash(self, dispatch_uuid: str, fault: str, where: str) -> None:
        rec = self._world.record_of(dispatch_uuid)
        if rec.rng.random() < getattr(self._world.rates, fault):
            self._world.note(rec, fault, where)
            raise SimulatedCrash(fault)


class IndexedCallbackStore(InMemoryCallbackStore):
    """The in-memory callback store, with its records also indexed by dispatch.

    Same contract and behaviour; only `records` no longer scans every record of every dispatch,
    which a campaign of thousands of dispatches could not afford on every drain."""

    def __init__(self) -> None:
        super().__init__()
        self._by_dispatch: dict[str, dict[int, CallbackRecord]] = defaultdict(dict)

    def put(self, record: CallbackRecord) -> None:
        super().put(record)
        self._by_dispatch[record.dispatch_uuid][record.seq] = record

    def records(self, dispatch_uuid: str) -> list[CallbackRecord]:
        by_seq = self._by_dispatch.get(dispatch_uuid, {})
        return [by_seq[seq] for seq in sorted(by_seq)]

    def all_records(self) -> list[CallbackRecord]:
        return [r for by_seq in self._by_dispatch.values() for r in by_seq.values()]


class SimProvider:
    """One provider for every channel. Each attempt draws: a death before the send, a refusal
    (5xx, timeout, an unexpected exception, a permanent error), a timeout after the provider took
    the message (the service cannot tell it from the other timeout), or acceptance, possibly
    followed by a death before the answer is saved. Every message the provider took gets its
    webhooks scheduled."""

    name = PROVIDER

    def __init__(self, world: World) -> None:
        self._world = world

    def send(self, dispatch_uuid: str, step: Step) -> str:
        world = self._world
        rec, rates = world.record_of(dispatch_uuid), world.rates
        draw = rec.rng.random()
        for fault, error in (
            ("crash_before_send", None),
            ("send_5xx", ProviderError("provider unavailable", permanent=False, code="503")),
            ("send_timeout", ProviderError("provider timed out", permanent=False, code="timeout")),
            ("send_exception", RuntimeError("provider adapter bug")),
            ("send_permanent", ProviderError("recipient blocked", permanent=True, code="1420")),
        ):
            rate = getattr(rates, fault)
            if draw < rate:
                world.note(rec, fault, f"step {step.index}")
                world.sent(rec, step.index, fault, None)
                if error is None:
                    raise SimulatedCrash(fault)
                raise error
            draw -= rate
        provider_message_id = f"{PROVIDER}-{step.message_uuid}-{len(rec.sends)}"
        if draw < rates.send_timeout_taken:
            world.note(rec, "send_timeout_taken", f"step {step.index}")
            world.sent(rec, step.index, "send_timeout_taken", provider_message_id)
            world.accepted(rec, step, provider_message_id)
            raise ProviderError("provider timed out", permanent=False, code="timeout")
        crash = rec.rng.random() < rates.crash_after_accept
        world.sent(rec, step.index, "accepted", provider_message_id, crashed=crash)
        world.accepted(rec, step, provider_message_id)
        if crash:
            world.note(rec, "crash_after_accept", f"step {step.index}")
            raise SimulatedCrash("crash_after_accept")
        return provider_message_id

    def recipient_key(self, step: Step) -> str | None:
        return str(step.spec.to.get("number") or step.spec.to.get("id"))


class SimTimer:
    """Checks named by (dispatch, step, due time), as the AWS backends name them. Each one may be
    lost, late or fired twice; a cancel may not take; setting one may kill the process. On the
    AWS backends backstop checks are never set: the sweeper owns them."""

    def __init__(self, world: World) -> None:
        self._world = world
        #: (dispatch_uuid, step, due µs) -> (backstop, the events that fire it) per schedule call
        self.pending: dict[tuple[str, int, int], list[tuple[bool, list]]] = {}

    def schedule(self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False) -> None:
        world = self._world
        rec, rates = world.record_of(dispatch_uuid), world.rates
        if rec.rng.random() < rates.crash_in_schedule:
            world.note(rec, "crash_in_schedule", f"step {step_index}")
            raise SimulatedCrash("crash_in_schedule")
        if backstop and rec.aws_backend:
            world.count("backstops left to the sweeper")
            return
        self.arm(dispatch_uuid, step_index, world.us(at), backstop)

    def arm(
        self, dispatch_uuid: str, step_index: int, due: int, backstop: bool = False, fire: int | None = None
    ) -> None:
        """A check named by `due` (µs) is set to fire at `fire` (default `due`), or is lost, late,
        or fires twice."""
        world = self._world
        rec, rates = world.record_of(dispatch_uuid), world.rates
        at = due if fire is None else fire
        fires = [at]
        draw = rec.rng.random()
        if draw < rates.timer_lost:
            world.note(rec, "timer_lost", f"step {step_index} due +{world.rel(rec, due)}")
            fires = []
        elif draw < rates.timer_lost + rates.timer_late:
            fires = [at + int(rec.rng.uniform(1, 60) * 1000) * 1000]
            world.note(rec, "timer_late", f"step {step_index} by {(fires[0] - at) / S:.0f}s")
        elif draw < rates.timer_lost + rates.timer_late + rates.timer_twice:
            fires.append(at + int(rec.rng.uniform(0, 30) * 1000) * 1000)
            world.note(rec, "timer_twice", f"step {step_index}")
        key = (dispatch_uuid, step_index, due)
        events = [world.push(rec, at_us, "timer", (step_index,)) for at_us in fires]
        self.pending.setdefault(key, []).append((backstop, events))

    def cancel(self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False) -> None:
        world = self._world
        rec = world.record_of(dispatch_uuid)
        if backstop and rec.aws_backend:
            return  # never set, so nothing to cancel
        self.disarm(dispatch_uuid, step_index, world.us(at), backstop)

    def disarm(self, dispatch_uuid: str, step_index: int, due: int, backstop: bool = False) -> None:
        """The check set for `due` (µs) is cancelled, unless the cancel does not take."""
        world = self._world
        rec = world.record_of(dispatch_uuid)
        checks = self.pending.pop((dispatch_uuid, step_index, due), [])
        if any(kind != backstop for kind, _ in checks):
            # A send guard and a deadline of the same length share (step, due time) when the send
            # takes no time. The service then keeps that one check rather than cancel the guard
            # (the local timer would drop both); a later cancel of the deadline drops both here.
            world.count("cancels of a check that shared its step and time with a guard")
        events = [event for _, fired in checks for event in fired]
        if events and rec.rng.random() < world.rates.cancel_lost:
            world.note(rec, "cancel_lost", f"step {step_index}")
            return
        for event in events:
            world.drop(event)


class SimQueue:
    """The callback queue (SQS): a nudge becomes a drain a moment later, unless it is lost."""

    def __init__(self, world: World) -> None:
        self._world = world

    def nudge(self, dispatch_uuid: str, at: datetime | None = None) -> None:
        world = self._world
        self.queued(dispatch_uuid, max(world.now_us, world.us(at)) if at is not None else world.now_us)

    def queued(self, dispatch_uuid: str, due: int) -> None:
        """A nudge is in the queue, due at `due` (µs)."""
        world = self._world
        rec = world.record_of(dispatch_uuid)
        if rec.rng.random() < world.rates.nudge_lost:
            world.note(rec, "nudge_lost", "")
            return
        world.push(rec, due + int(rec.rng.uniform(0, 0.5) * 1000) * 1000, "drain", ())


class SimReceiver:
    """The application's status URL: answers 204, or fails (5xx, timeout, 429 with Retry-After);
    or takes the callback and the drain that posted it dies before recording the attempt."""

    def __init__(self, world: World) -> None:
        self._world = world

    def attempt(self, application: Application, record: CallbackRecord) -> AttemptResult:
        world = self._world
        rec, rates = world.record_of(record.dispatch_uuid), world.rates
        draw = rec.rng.random()
        for fault, result in (
            ("receiver_5xx", AttemptResult(status_code=503)),
            ("receiver_timeout", AttemptResult(error="timeout")),
            ("receiver_429", AttemptResult(status_code=429, retry_after=30)),
        ):
            rate = getattr(rates, fault)
            if draw < rate:
                world.note(rec, fault, f"seq {record.seq}")
                world.count("callback attempts failed (retried)")
                return result
            draw -= rate
        world.received(rec, record)
        if draw < rates.crash_after_post:
            world.note(rec, "crash_after_post", f"seq {record.seq}")
            raise SimulatedCrash("crash_after_post")
        return AttemptResult(status_code=204)
