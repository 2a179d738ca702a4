"""Run a campaign: build the world, let it run until quiet, check every dispatch."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from chalicelib.domain.callbacks import CallbackKind
from chalicelib.domain.model import Outcome, Phase
from chalicelib.service.callback_relay import CallbackRelay
from chalicelib.service.dispatches import DispatchService
from chalicelib.service.sweeper import Sweeper
from tests.campaign import aws, invariants, oracle
from tests.campaign.faults import FaultRates
from tests.campaign.invariants import Violation
from tests.campaign.records import TAKEN, DispatchRecord, S
from tests.campaign.world import World


@dataclass
class CampaignResult:
    seed: int
    count: int
    only: int | None
    faults: Counter[str]
    counts: Counter[str]
    violations: list[Violation]
    #: The records of dispatches with a violation, by index (for their fault plans).
    failed: dict[int, DispatchRecord] = field(default_factory=dict)
    wall_seconds: float = 0.0
    simulated_seconds: float = 0.0
    #: Every fault probability was multiplied by this (`--faults`).
    fault_scale: float = 1.0
    #: `memory` (the in-memory repository) or `moto` (the AWS adapters, faults on the wire).
    backend: str = "memory"
    #: moto only: AWS API attempts by operation, the back-off botocore would have slept, and the
    #: retry configuration of the service's clients.
    aws_calls: dict[str, int] = field(default_factory=dict)
    backoff_seconds: float = 0.0
    retries: dict[str, dict] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations


def run_campaign(
    count: int,
    seed: int,
    only: int | None = None,
    fault_scale: float = 1.0,
    service_class: type[DispatchService] = DispatchService,
    relay_class: type[CallbackRelay] = CallbackRelay,
    sweeper_class: type[Sweeper] = Sweeper,
    backend: str = "memory",
) -> CampaignResult:
    """`count` dispatches of campaign `seed` (or only dispatch `only` of them, exactly as it
    runs among the others), through the real service, relay and sweeper, unless a test hands
    in a broken variant to prove the checks catch it; over the in-memory repository, or over
    the AWS adapters under moto (`backend="moto"`)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}")
    with ExitStack() as stack:
        stats = stack.enter_context(aws.moto_backend()) if backend == "moto" else None
        result = _run(count, seed, only, fault_scale, service_class, relay_class, sweeper_class, backend)
        if stats is not None:
            result.backoff_seconds = stats.backoff_seconds
    return result


BACKENDS = ("memory", "moto")


def _run(
    count: int,
    seed: int,
    only: int | None,
    fault_scale: float,
    service_class: type[DispatchService],
    relay_class: type[CallbackRelay],
    sweeper_class: type[Sweeper],
    backend: str,
) -> CampaignResult:
    started = time.perf_counter()
    with _quiet_logs():
        world = World(
            seed,
            count,
            FaultRates().scaled(fault_scale),
            only,
            service_class,
            relay_class,
            sweeper_class,
            backend=backend,
        )
        world.run()
        world.settle_sends()
    violations: list[Violation] = []
    failed: dict[int, DispatchRecord] = {}
    counts = world.counts
    for rec in world.records:
        stored = world.base_repo.get(rec.uuid)
        expected = oracle.expect(rec, world.policy)
        found = invariants.check(rec, stored, expected, world.policy, world.routed)
        if found:
            violations += found
            failed[rec.index] = rec
        _tally(counts, rec, stored)
    return CampaignResult(
        seed=seed,
        count=count,
        only=only,
        faults=world.faults,
        counts=counts,
        violations=violations,
        failed=failed,
        wall_seconds=time.perf_counter() - started,
        simulated_seconds=world.end_us / S,
        fault_scale=fault_scale,
        backend=backend,
        aws_calls=dict(world.wire.calls) if world.wire is not None else {},
        retries=world.retries,
    )


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """The service logs every injected failure it survives (thousands); the campaign counts them
    instead. Logging is restored afterwards, for whatever runs next in the process."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def _tally(counts: Counter[str], rec: DispatchRecord, stored) -> None:
    """Figures for the summary, read after the fact (the checks do not depend on them)."""
    reports = {r.event_id: r for r in rec.received if r.kind is CallbackKind.FINAL_REPORT}
    for report in reports.values():
        counts[f"final reports: {json.loads(report.body)['status']}"] += 1
    for k in range(len(rec.specs)):
        taken = sum(1 for s in rec.sends if s.step == k and s.result in TAKEN)
        counts["messages the person got again after an ambiguous timeout"] += max(0, taken - 1)
    distinct = {r.event_id for r in rec.received}
    counts["callbacks delivered (distinct)"] += len(distinct)
    counts["callbacks posted again (deduplicated by event id)"] += len(rec.received) - len(distinct)
    if "create" in rec.aws_errors:
        # The client was answered 503 (unavailable): right when nothing was stored; when the
        # write landed all the same, the dispatch runs, and a client that retries makes another.
        stored_or_not = "stored all the same" if stored is not None else "nothing stored"
        counts[f"creates answered an AWS error: {stored_or_not}"] += 1
    if stored is None:
        return
    for step in stored.steps:
        if step.phase is not Phase.FAILED or step.outcome is None:
            continue
        followed = step.index < len(stored.steps) - 1
        label = "failovers" if followed else "last message failed"
        counts[f"{label}: {step.outcome.value}"] += 1
    if any(s.outcome is Outcome.CONDITION_MET and s.index > 0 for s in stored.steps):
        counts["completed after at least one failover"] += 1
    late = sum(1 for s in stored.steps for r in s.history if r.late)
    counts["statuses recorded as late"] += late
