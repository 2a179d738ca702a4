"""The simulated world: one clock, one event heap, the real service code, many dispatches.

Every dispatch gets its own random generator, seeded from the campaign seed and its index, and
draws from it its workflow, its creation time and every fault that touches it. Events are
ordered by (time, dispatch index, the dispatch's own event counter), so a dispatch meets its
inputs in the same order whether it runs among thousands or alone (`--only`).

Inputs go through the real `DispatchService`, `CallbackRelay` and `Sweeper` over the in-memory
repository; the clock only moves between events, never inside one, and nothing sleeps. What
the simulation injected and observed is kept per dispatch in a `DispatchRecord`, from which
`oracle` derives what should have happened without reading the service's state.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config import Settings
from chalicelib.domain.callbacks import CallbackRecord, DeliveryState
from chalicelib.domain.model import (
    Channel,
    MessageStatus,
    StatusEvent,
    Step,
)
from chalicelib.service.callback_relay import CallbackRelay
from chalicelib.service.dispatches import DispatchService
from chalicelib.service.ports import MessageHint
from chalicelib.service.sweeper import Sweeper
from tests.campaign import aws, channel
from tests.campaign.adapters import (
    PROVIDER,
    FaultyRepository,
    IndexedCallbackStore,
    SimProvider,
    SimQueue,
    SimReceiver,
    SimTimer,
)
from tests.campaign.faults import FaultRates, SimulatedCrash
from tests.campaign.records import (
    TAKEN,
    AppliedStatus,
    DispatchRecord,
    Event,
    Input,
    Received,
    S,
    SendAttempt,
    dispatch_seed,
    plan,
)
from tests.fake_applications import InMemoryApplicationRepository
from tests.fake_repository import InMemoryDispatchRepository, InMemorySweepMarks
from tests.fakes import T0, FakeClock
from tests.service_harness import application

#: The deployed defaults (sweeper settings included), but a one-hour report limit for the last
#: message (DISPATCH_LAST_MESSAGE_REPORT_SECONDS), which keeps the simulated span to hours.
SETTINGS = Settings(table_name="campaign")
POLICY = replace(SETTINGS.policy, last_step_report_seconds=3600)
#: The sweeper runs every minute, as its schedule does.
SWEEP_EVERY_SECONDS = 60
#: Share of webhooks that echo our reference (Vonage client_ref...) and so carry a hint.
HINTED = 0.5
#: Past the last creation, give up after this long: whatever is still open is stranded.
HORIZON_SECONDS = 12 * 3600


class World:
    def __init__(
        self,
        seed: int,
        count: int,
        rates: FaultRates,
        only: int | None = None,
        service_class: type[DispatchService] = DispatchService,
        relay_class: type[CallbackRelay] = CallbackRelay,
        sweeper_class: type[Sweeper] = Sweeper,
        backend: str = "memory",
    ) -> None:
        self.seed, self.size, self.rates, self.policy = seed, count, rates, POLICY
        self.backend = backend
        self.clock = FakeClock(T0)
        #: When checks fire and nudges drain, with their faults; the memory mode's timer and queue.
        self.sim_timer = SimTimer(self)
        self.sim_queue = SimQueue(self)
        self.saves = 0  #: dispatch saves committed
        #: Faults of AWS calls that name no dispatch (the sweeper's queries and its mark).
        self.wire_rng = random.Random(dispatch_seed(seed, -1))
        self.wire: Any = None
        self.empty_queue: Any = None
        self.retries: dict[str, dict] = {}
        self.store: Any
        self.queue: Any
        self.timer: Any
        self.sweep_marks: Any
        if backend == "moto":
            aws.build(self)  # base_repo (read fault-free), service_repo, store, marks, timer, queue
            self.repo = FaultyRepository(self, self.service_repo, wire=True)
        else:
            self.base_repo = InMemoryDispatchRepository()
            self.repo = FaultyRepository(self, self.base_repo)
            self.store = IndexedCallbackStore()
            self.queue = self.sim_queue
            self.timer = self.sim_timer
            self.sweep_marks = InMemorySweepMarks()
        self.provider = SimProvider(self)
        self.receiver = SimReceiver(self)
        self.app = application("app-campaign")
        self._owners = itertools.count()
        self._draining: DispatchRecord | None = None
        self.relay = relay_class(
            repository=self.repo,
            store=self.store,
            transport=self.receiver,
            applications=InMemoryApplicationRepository([self.app]),
            queue=self.queue,
            clock=self.clock,
            random=self._jitter,
            new_owner=lambda: f"drain-{next(self._owners)}",
        )
        self._creating: str | None = None
        self.service = service_class(
            repository=self.repo,
            providers={chan: self.provider for chan in Channel},
            timer=self.timer,
            callback_queue=self.queue,
            clock=self.clock,
            policy=self.policy,
            new_uuid=self._new_uuid,
        )
        self.sweeper = sweeper_class(
            self.repo,
            self.service,
            self.clock,
            grace_seconds=SETTINGS.sweep_grace_seconds,
            lookback_minutes=SETTINGS.sweep_lookback_minutes,
            callback_store=self.store,
            callback_queue=self.queue,
            marks=self.sweep_marks,
            recent_minutes=SETTINGS.sweep_recent_minutes,
            full_every_minutes=SETTINGS.sweep_full_every_minutes,
        )
        indexes = range(count) if only is None else [only]
        self.records = [plan(seed, i, count) for i in indexes]
        for rec in self.records:
            rec.aws_backend = rec.rng.random() < rates.aws_backend or backend == "moto"
            if backend == "moto":
                rec.timer_backend = "stepfunctions" if rec.rng.random() < 0.5 else "scheduler"
            rec.trace.append(f"workflow: {rec.describe()}")
        self._by_uuid = {rec.uuid: rec for rec in self.records}
        #: Provider message ids whose message index item a save wrote (what webhooks route by).
        self.routed: set[str] = set()
        self.faults: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self._heap: list[tuple[int, int, int, Event]] = []
        self._sweeps = itertools.count()
        self._live = 0  #: live events other than sweeps
        #: The inputs being processed, innermost last (a race runs one inside another's save).
        self._inputs: list[Input] = []
        self._open = {rec.uuid for rec in self.records}  #: not yet seen final
        self.end_us = 0

    # --- time -----------------------------------------------------------------------------------

    @property
    def now_us(self) -> int:
        return self.us(self.clock.current)

    @staticmethod
    def us(at: datetime) -> int:
        return (at - T0) // timedelta(microseconds=1)

    @staticmethod
    def rel(rec: DispatchRecord, at_us: int) -> str:
        return f"{(at_us - rec.created_us) / S:.3f}s"

    # --- what adapters report -------------------------------------------------------------------

    def record_of(self, dispatch_uuid: str) -> DispatchRecord:
        return self._by_uuid[dispatch_uuid]

    def find_record(self, dispatch_uuid: str) -> DispatchRecord | None:
        return self._by_uuid.get(dispatch_uuid)

    # --- what moto committed (`aws.FaultWire`) --------------------------------------------------

    def dispatch_saved(self, dispatch_uuid: str) -> None:
        self.saves += 1
        rec = self.find_record(dispatch_uuid)
        if rec is not None:
            rec.sends_saved = len(rec.sends)
            self.saved(rec)

    def arm(self, dispatch_uuid: str, step_index: int, due: int, fire: int) -> None:
        if self.find_record(dispatch_uuid) is not None:
            self.count("timer checks set")
            self.sim_timer.arm(dispatch_uuid, step_index, due, fire=fire)

    def disarm(self, dispatch_uuid: str, step_index: int, due: int) -> None:
        if self.find_record(dispatch_uuid) is not None:
            self.count("timer checks cancelled")
            self.sim_timer.disarm(dispatch_uuid, step_index, due)

    def queued(self, dispatch_uuid: str, due: int) -> None:
        if self.find_record(dispatch_uuid) is not None:
            self.sim_queue.queued(dispatch_uuid, due)

    def settle_sends(self) -> None:
        """On moto, an accepted send is recorded when a committed dispatch item holds its id,
        which only the wire saw: a save that raised may have committed, one that returned did."""
        if self.wire is None:
            return
        for rec in self.records:
            rec.sends = [
                replace(s, crashed=s.crashed or s.provider_message_id not in self.wire.recorded)
                if s.result == "accepted"
                else s
                for s in rec.sends
            ]

    def note(self, rec: DispatchRecord, fault: str, detail: str) -> None:
        self.faults[fault] += 1
        rec.trace.append(f"+{self.rel(rec, self.now_us)} {fault} {detail}".rstrip())

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    def sent(
        self,
        rec: DispatchRecord,
        step: int,
        result: str,
        provider_message_id: str | None,
        crashed: bool = False,
    ) -> None:
        rec.sends.append(SendAttempt(step, self.now_us, result, provider_message_id, crashed))
        self.count("send attempts")
        if result in TAKEN:
            self.count("messages taken by the provider")
        if result == "accepted":
            rec.trace.append(f"+{self.rel(rec, self.now_us)} step {step} accepted as {provider_message_id}")

    def accepted(self, rec: DispatchRecord, step: Step, provider_message_id: str) -> None:
        """The provider took a message: schedule the webhooks its channel will send."""
        expiry = step.spec.expiry_time
        window = expiry or self.policy.last_step_report_seconds

        def note(what: str, detail: str) -> None:
            if what == "fate":
                self.count(f"channel fate: {detail}")
                rec.trace.append(f"+{self.rel(rec, self.now_us)} step {step.index} will report: {detail}")
            else:
                self.note(rec, what, f"step {step.index} {detail}")

        hooks = channel.webhooks(rec.rng, self.rates, step.channel, self.now_us, expiry, window, note)
        for hook in hooks:
            self.push(rec, hook.at_us, "status", (provider_message_id, step.index, hook.status, hook.tag))

    def saved(self, rec: DispatchRecord) -> None:
        """A save just committed: if the innermost input running is a webhook that has not saved
        yet, this was its own decision, so its status takes effect now."""
        applied = self._inputs[-1].applied if self._inputs else None
        if applied is not None and applied not in rec.applied:
            rec.applied.append(applied)

    def applying(self) -> str | None:
        """The provider message id of the webhook the innermost input running applies, if any."""
        applied = self._inputs[-1].applied if self._inputs else None
        return applied.provider_message_id if applied is not None else None

    def received(self, rec: DispatchRecord, record: CallbackRecord) -> None:
        rec.received.append(Received(record.seq, record.event_id, record.kind, record.body, self.now_us))

    # --- events ---------------------------------------------------------------------------------

    def push(self, rec: DispatchRecord, at_us: int, kind: str, args: tuple) -> Event:
        event = Event(at_us, kind, rec, args, next(rec.counter))
        heapq.heappush(self._heap, (at_us, rec.index, event.seq, event))
        rec.pending.add(event)
        self._live += 1
        return event

    def drop(self, event: Event) -> None:
        if event.live:
            event.live = False
            self._live -= 1
            if event.rec is not None:
                event.rec.pending.discard(event)

    def _push_sweep(self, at_us: int) -> None:
        event = Event(at_us, "sweep", None, (), next(self._sweeps))
        heapq.heappush(self._heap, (at_us, -1, event.seq, event))

    def run(self) -> None:
        for rec in self.records:
            self.push(rec, rec.created_us, "create", ())
        self._push_sweep(SWEEP_EVERY_SECONDS * S)
        last_created = max(rec.created_us for rec in self.records)
        give_up = last_created + HORIZON_SECONDS * S
        while self._heap:
            at_us, _, _, event = heapq.heappop(self._heap)
            if not event.live:
                continue
            if at_us > give_up:
                break
            self.clock.current = T0 + timedelta(microseconds=at_us)
            if event.kind == "sweep":
                self._sweep()
                if self._live == 0 and self._quiet():
                    break
                self._push_sweep(at_us + SWEEP_EVERY_SECONDS * S)
                continue
            self.drop(event)
            self._handle(event)
        self.end_us = self.now_us

    def _handle(self, event: Event) -> None:
        self._inputs.append(Input(event.kind))
        try:
            self._dispatch_event(event)
        finally:
            self._inputs.pop()
            if self.backend == "moto" and event.rec is not None and not self._inputs:
                self._unsaved_sends(event.rec)  # a race's inner input ends inside another's save

    def _unsaved_sends(self, rec: DispatchRecord) -> None:
        """On moto, a send no committed save followed before its input ended had its result
        lost (a save that met an AWS error, which `create` or the input's caller may swallow),
        as when the process dies right after the provider answered."""
        rec.sends[rec.sends_saved :] = [replace(s, crashed=True) for s in rec.sends[rec.sends_saved :]]
        rec.sends_saved = len(rec.sends)

    def _dispatch_event(self, event: Event) -> None:
        rec = event.rec
        assert rec is not None
        if event.kind == "create":
            self._create(rec)
        elif event.kind == "status":
            self._status(rec, *event.args)
        elif event.kind == "timer":
            rec.trace.append(f"+{self.rel(rec, self.now_us)} timer check of step {event.args[0]}")
            self._guarded(rec, "timer check", lambda: self.service.run_check(rec.uuid, event.args[0]))
        elif event.kind == "drain":
            self._drain(rec)

    def _guarded(self, rec: DispatchRecord, where: str, run) -> bool:
        """Run one input; a simulated death ends it (counted), as does an AWS error the adapters
        let through (the Lambda fails, and its trigger tries again or the sweeper recovers it).
        False when it died."""
        try:
            run()
        except SimulatedCrash:
            self.count(f"processes died in: {where}")
            return False
        except AWS_ERRORS as exc:
            self.count(f"inputs failed on an AWS error: {where}: {_aws_error(exc)}")
            rec.trace.append(f"+{self.rel(rec, self.now_us)} {where} failed: {_aws_error(exc)}")
            rec.aws_errors.append(where)
            return False
        except Exception as exc:  # a bug: the Lambda would fail, the API answer 500
            self.count(f"inputs raised unexpectedly: {where}: {type(exc).__name__}")
            rec.errors.append(f"+{self.rel(rec, self.now_us)} {where} raised {type(exc).__name__}: {exc}")
            rec.trace.append(rec.errors[-1])
            return False
        return True

    def _create(self, rec: DispatchRecord) -> None:
        self._creating = rec.uuid
        self.count("dispatches created")
        self._guarded(rec, "create", lambda: self.service.create(self.app, rec.specs))

    def _new_uuid(self) -> str:
        assert self._creating is not None
        created, self._creating = self._creating, None
        return created

    def _status(
        self, rec: DispatchRecord, provider_message_id: str, step: int, status: MessageStatus, tag: str
    ) -> None:
        saves = self.saves
        answer: list[bool] = []
        self.count("webhooks delivered")
        applied = self._inputs[-1].applied = AppliedStatus(provider_message_id, status, self.now_us)
        hint = MessageHint(rec.uuid, step) if rec.rng.random() < HINTED else None
        aws_errors = len(rec.aws_errors)
        ok = self._guarded(
            rec,
            "webhook",
            lambda: answer.append(
                self.service.apply_status(PROVIDER, provider_message_id, StatusEvent(status), hint=hint)
            ),
        )
        routed = applied.routed = answer[0] if answer else None
        # A death is simulated only after a save, so the status took effect; an AWS error can
        # end the input before it saved anything (then `saved` never recorded it): it did not.
        if applied not in rec.applied and len(rec.aws_errors) == aws_errors:
            rec.applied.append(applied)
        if not ok:
            outcome = "died"
        elif routed is False:
            outcome = "unrouted"
        else:
            outcome = "saved" if self.saves > saves else "no-op"
        rec.trace.append(
            f"+{self.rel(rec, self.now_us)} webhook {status.value} "
            f"for {provider_message_id} ({tag}): {outcome}"
        )
        if not ok:
            # The provider got no answer, so it delivers the webhook again a little later.
            self.push(
                rec,
                self.now_us + int(rec.rng.uniform(5, 60) * 1000) * 1000,
                "status",
                (provider_message_id, step, status, "redelivery"),
            )
            self.count("webhooks redelivered after a death")
        elif routed is False:
            self.count("webhooks for no known message (send never recorded)")
        elif self.saves > saves:
            self.count("webhooks that changed the dispatch")
        else:
            self.count("webhooks ignored (duplicate, stale or no step forward)")

    def _drain(self, rec: DispatchRecord) -> None:
        self._draining = rec
        self.count("callback drains")
        try:
            self._guarded(rec, "callback drain", lambda: self.relay.drain(rec.uuid))
        finally:
            self._draining = None

    def _jitter(self) -> float:
        return self._draining.rng.random() if self._draining is not None else 0.5

    # --- races ----------------------------------------------------------------------------------

    def race(self, dispatch_uuid: str) -> None:
        """Called before each save: maybe let another input for the same dispatch run first.

        A timer due at this very instant, or a webhook for a message whose index item exists
        (pulled forward to now), runs to its end between this input's read and its conditional
        save, as a concurrent Lambda would; this save then meets ConcurrentUpdate if that input
        changed the dispatch. One race per input and dispatch, and none inside a race."""
        if len(self._inputs) != 1 or dispatch_uuid in self._inputs[0].raced:
            return
        outer = self._inputs[0]
        rec = self.record_of(dispatch_uuid)
        now = self.now_us
        same = [
            e
            for e in rec.pending
            if e.time_us == now and (e.kind == "timer" or (e.kind == "status" and e.args[0] in self.routed))
        ]
        later = [e for e in rec.pending if e.kind == "status" and e.args[0] in self.routed]
        candidates = same or later
        if not candidates:
            return
        rate = self.rates.race_same_instant if same else self.rates.race
        if rec.rng.random() >= rate:
            return
        other = min(candidates, key=lambda e: (e.time_us, e.seq))
        outer.raced.add(dispatch_uuid)
        self.note(rec, "race", f"{outer.kind} vs {other.kind}{' at the same instant' if same else ''}")
        self.count(f"races: {outer.kind} interrupted by {other.kind}")
        self.drop(other)
        self._handle(other)

    # --- the sweeper ----------------------------------------------------------------------------

    def _sweep(self) -> None:
        self.count("sweeps")
        if self.backend == "moto":
            # The simulation drains what the wire saw queued; moto's copies are never read, and
            # moto's SQS costs the queue's length on every send.
            self.empty_queue()
        self._inputs.append(Input("sweep"))
        try:
            result = self.sweeper.sweep()
        except SimulatedCrash:
            self.count("processes died in: sweep")
            return
        except AWS_ERRORS as exc:
            self.count(f"inputs failed on an AWS error: sweep: {_aws_error(exc)}")
            return
        finally:
            self._inputs.pop()
            if self.backend == "moto":
                for rec in self.records:
                    self._unsaved_sends(rec)
        self.count("sweeper: overdue checks found", result.found)
        self.count("sweeper: checks re-driven", result.redriven)
        self.count("sweeper: lost timer checks recovered", result.lost)
        self.count("sweeper: backstop checks run", result.found - result.lost)
        self.count("sweeper: callback drains recovered", result.callbacks_recovered)
        self.count("sweeper: index reads that failed (read again next run)", result.unread)
        if not result.unread and not result.failed:
            self._check_nothing_stranded()  # else the next clean run is held to it

    def _check_nothing_stranded(self) -> None:
        """Right after a sweep that ran to its end, no live dispatch may still wait on a check
        due more than the grace period ago within the run's look-back: the sweep should just have
        run it. The look-back is the one the settings document: the whole of it on the minutes
        of the hour `sweep_full_every_minutes` divides, else the recent minutes."""
        cutoff = self.now_us - SETTINGS.sweep_grace_seconds * S
        minute = self.clock.current.hour * 60 + self.clock.current.minute
        full = minute % SETTINGS.sweep_full_every_minutes == 0
        minutes = SETTINGS.sweep_lookback_minutes if full else SETTINGS.sweep_recent_minutes
        since = cutoff - minutes * 60 * S
        for dispatch_uuid in sorted(self._open):
            dispatch = self.base_repo.get(dispatch_uuid)
            rec = self._by_uuid[dispatch_uuid]
            if dispatch is None:
                if rec.created_us < self.now_us and not rec.stranded and "create" not in rec.aws_errors:
                    rec.stranded.append(f"at +{self.rel(rec, self.now_us)} the dispatch was never stored")
                continue
            if dispatch.status.is_final:
                self._open.discard(dispatch_uuid)
            elif dispatch.due_at is None or since <= self.us(dispatch.due_at) <= cutoff:
                due = "never" if dispatch.due_at is None else f"+{self.rel(rec, self.us(dispatch.due_at))}"
                rec.stranded.append(
                    f"at +{self.rel(rec, self.now_us)} still waiting on step {dispatch.current} "
                    f"({dispatch.current_step.phase.value}), due {due}"
                )
                self._open.discard(dispatch_uuid)  # reported once

    def _quiet(self) -> bool:
        """Nothing left to happen: every dispatch final, every callback taken in and settled."""
        for rec in self.records:
            dispatch = self.base_repo.get(rec.uuid)
            if dispatch is None and "create" in rec.aws_errors:
                continue  # refused, and nothing stored
            if dispatch is None or not dispatch.status.is_final or dispatch.outbox:
                return False
        if self.backend == "moto":
            return not aws.callbacks_pending(self)
        return not any(r.state is DeliveryState.PENDING for r in self.store.all_records())


#: What the AWS adapters let through: botocore's errors, after its own retries.
AWS_ERRORS = (ClientError, BotoCoreError)


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__
