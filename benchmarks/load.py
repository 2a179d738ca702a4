"""`make bench` section "load": many dispatches over HTTP, with statuses arriving meanwhile.

Starts its own local stack (as `lateness.py` does) and creates dispatches from a thread pool while
another pool injects channel statuses (`POST /sandbox/messages/{message_uuid}/status`) for the ones
already created, so creates, statuses, failover checks and callback deliveries all run at once.
Each dispatch follows one plan, in turn:

- `delivered`: its first message is delivered: completed by it;
- `read`: delivered, then read, against a `read` condition: completed by the first message;
- `duplicates`: `delivered` three times at once: completed by the first message, once;
- `rejected`: rejected, so the SMS goes out at once, and is delivered: completed by it;
- `timeout`: nothing, so the SMS goes out at the 15 s deadline, and is delivered: completed by it;
- `fails`: undeliverable, then the SMS is rejected: the dispatch ends in `error`.

The plans that end on a status have a long expiry, so that a status still counts when it waited
its turn behind many creates. A last message that never reports keeps its dispatch open for
24 h, so the plans that reach the SMS report a status for it once it is sent. Then the run waits
until every dispatch is final (bounded), and reads the stack's callback sink: every dispatch
must have received exactly one final report, signed, agreeing with its GET, and the GET must
show the plan's outcome.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from benchmarks.lateness import StackClient, failover_body, local_stack
from benchmarks.report import Figure, at_most
from benchmarks.stats import per_second, percentile

SECTION = "load"
COUNT, QUICK_COUNT = 1000, 100
CREATE_WORKERS, INJECT_WORKERS, READ_WORKERS = 16, 8, 16
#: The `timeout` plan's expiry: the contract's minimum, so it ends soon. The other plans end on
#: a status, which must arrive before their deadline to count: their expiry leaves room for a
#: status that waited its turn behind many creates.
TIMEOUT_EXPIRY_SECONDS, STATUS_EXPIRY_SECONDS = 15, 300
#: How long after the last create every dispatch may take to end, and how long after that
#: every final report may take to arrive.
FINAL_WITHIN_SECONDS, REPORTS_WITHIN_SECONDS = TIMEOUT_EXPIRY_SECONDS + 90.0, 600.0
#: Between two rounds of reads of open dispatches, and two reads of one dispatch's callbacks.
POLL_SECONDS, PROBE_SECONDS = 2.0, 0.5
SINK_WORKERS = 4
#: After every final report has arrived, how long to keep listening for a duplicate.
DUPLICATE_WATCH_SECONDS = 3.0


@dataclass(frozen=True)
class Plan:
    name: str
    expiry: int
    condition: str
    first: tuple[str, ...]  #: statuses for the first message, each injected as its own request
    second: str | None  #: the status for the SMS, once it is sent
    status: str  #: the dispatch's expected final status
    completed_by: int | None  #: which message completes it


PLANS = (
    Plan("delivered", STATUS_EXPIRY_SECONDS, "delivered", ("delivered",), None, "completed", 0),
    Plan("read", STATUS_EXPIRY_SECONDS, "read", ("delivered", "read"), None, "completed", 0),
    Plan("duplicates", STATUS_EXPIRY_SECONDS, "delivered", ("delivered",) * 3, None, "completed", 0),
    Plan("rejected", STATUS_EXPIRY_SECONDS, "delivered", ("rejected",), "delivered", "completed", 1),
    Plan("timeout", TIMEOUT_EXPIRY_SECONDS, "delivered", (), "delivered", "completed", 1),
    Plan("fails", STATUS_EXPIRY_SECONDS, "delivered", ("undeliverable",), "rejected", "error", None),
)


def run(quick: bool) -> list[Figure]:
    with local_stack() as client:
        result = measure(client, QUICK_COUNT if quick else COUNT)
    return figures(result, client)


@dataclass
class Tracked:
    plan: Plan
    dispatch_uuid: str
    message_uuids: list[str]
    created_at: float  #: time.monotonic() once created
    view: dict[str, Any] | None = None  #: the last GET
    second_injected: bool = False
    final_reports: list[dict[str, Any]] = field(default_factory=list)
    unsigned: int = 0  #: callbacks whose signature did not check out
    #: For a final report the sink never got: its state in the service's callback list.
    missing_report_state: str | None = None


@dataclass
class LoadResult:
    count: int
    wall_seconds: float = 0.0
    create_seconds: float = 0.0
    create_ms: list[float] = field(default_factory=list)
    injections: int = 0  #: status requests queued while dispatches were being created
    injection_seconds: float = 0.0
    tracked: list[Tracked] = field(default_factory=list)
    final_seconds: float = 0.0  #: from the creates' end until every dispatch was final (or gave up)
    reports_seconds: float = 0.0  #: from then until every final report had arrived (or gave up)


def measure(client: StackClient, count: int) -> LoadResult:
    result = LoadResult(count)
    began = time.monotonic()
    _create_and_inject(client, count, result)
    _finish(client, result)
    result.reports_seconds = _collect_final_reports(client, result.tracked)
    result.wall_seconds = time.monotonic() - began
    return result


def _create_and_inject(client: StackClient, count: int, result: LoadResult) -> None:
    """Create every dispatch; as each is created, queue its statuses on the other pool."""
    lock = threading.Lock()
    injected: list[float] = []  # when each injection answered
    pending: list[Future] = []

    def inject(message_uuid: str, status: str) -> bool:
        done = client.inject(message_uuid, status)
        with lock:
            injected.append(time.monotonic())
        return done

    def fail_over(tracked: Tracked) -> None:
        # The failure's request sends the SMS before it answers, so the SMS can report at once.
        if inject(tracked.message_uuids[0], tracked.plan.first[0]) and tracked.plan.second:
            tracked.second_injected = inject(tracked.message_uuids[1], tracked.plan.second)

    with ThreadPoolExecutor(INJECT_WORKERS) as injectors:

        def create(index: int) -> None:
            plan = PLANS[index % len(PLANS)]
            created = client.timed_create(failover_body(plan.expiry, plan.condition))
            view = client.dispatch(created[0]) if created else None
            if created is None or view is None:
                return
            uuids = [m["message_uuid"] for m in view["messages"]]
            tracked = Tracked(plan, created[0], uuids, time.monotonic(), view)
            with lock:
                result.create_ms.append(created[1])
                result.tracked.append(tracked)
                if plan.first and plan.second:
                    pending.append(injectors.submit(fail_over, tracked))
                else:  # each its own request, so duplicates race each other
                    pending.extend(injectors.submit(inject, uuids[0], status) for status in plan.first)

        started = time.monotonic()
        with ThreadPoolExecutor(CREATE_WORKERS) as creators:
            list(creators.map(create, range(count)))
        result.create_seconds = time.monotonic() - started
        wait(list(pending))
    result.injections = len(injected)
    result.injection_seconds = max(injected) - started if injected else 0.0


def _finish(client: StackClient, result: LoadResult) -> None:
    """Report the SMS's status for the dispatches that time out, once it is sent; then read every
    dispatch until all are final. Only what can have changed is read: reads compete with the
    stack's own work."""
    started = time.monotonic()
    give_up = started + FINAL_WITHIN_SECONDS
    timing_out = [t for t in result.tracked if t.plan.second and not t.second_injected]
    open_ = list(result.tracked)
    with ThreadPoolExecutor(READ_WORKERS) as pool:
        while timing_out and time.monotonic() < give_up:
            due = [t for t in timing_out if time.monotonic() > t.created_at + t.plan.expiry]
            list(pool.map(lambda t: _advance(client, t), due))
            timing_out = [t for t in timing_out if not t.second_injected]
            if timing_out:
                time.sleep(POLL_SECONDS)
        while open_ and time.monotonic() < give_up:
            list(pool.map(lambda t: _advance(client, t), open_))
            open_ = [t for t in open_ if not _is_final(t)]
            if open_:
                time.sleep(POLL_SECONDS)
    result.final_seconds = time.monotonic() - started


def _advance(client: StackClient, tracked: Tracked) -> None:
    view = client.dispatch(tracked.dispatch_uuid)
    if view is None:
        return
    tracked.view = view
    second = view["messages"][1]
    if tracked.plan.second and not tracked.second_injected and second["sent_at"] is not None:
        tracked.second_injected = client.inject(second["message_uuid"], tracked.plan.second)


def _is_final(tracked: Tracked) -> bool:
    return tracked.view is not None and tracked.view["status"] != "in_progress"


def _collect_final_reports(client: StackClient, tracked: list[Tracked]) -> float:
    """Wait for every dispatch's final report, then read them all once more after a pause, so a
    duplicate on its way is counted too; returns how long the reports took to be complete.

    Callbacks go through the queue and its single poller, so they trail the dispatches' ends.
    Every read competes with the delivery it waits for: a few workers take the dispatches in
    the order they were created and read each until its report is in (or the cap is reached),
    so each dispatch is read about once plus what the waiting costs."""
    started = time.monotonic()
    give_up = started + REPORTS_WITHIN_SECONDS

    def await_report(one: Tracked) -> None:
        while time.monotonic() < give_up:  # past the cap, only the last read below counts it
            _read_sink(client, one)
            if one.final_reports:
                return
            time.sleep(PROBE_SECONDS)

    with ThreadPoolExecutor(SINK_WORKERS) as pool:
        list(pool.map(await_report, tracked))
        complete_after = time.monotonic() - started
        time.sleep(DUPLICATE_WATCH_SECONDS)
        list(pool.map(lambda t: _read_sink(client, t), tracked))
        list(pool.map(lambda t: _explain_missing(client, t), [t for t in tracked if not t.final_reports]))
    return complete_after


def _explain_missing(client: StackClient, tracked: Tracked) -> None:
    """For a dispatch the sink has no final report of: where the service says it is. `pending`
    means still on its way (slow, not lost); `delivered` with nothing in the sink would be a loss."""
    callbacks = client.dispatch_callbacks(tracked.dispatch_uuid) or []
    states = [c["state"] for c in callbacks if c["type"] == "final_report"]
    tracked.missing_report_state = states[-1] if states else "not recorded"


def _read_sink(client: StackClient, tracked: Tracked) -> None:
    received = client.callbacks(tracked.dispatch_uuid)
    if received is None:
        return
    tracked.final_reports = [r["body"] for r in received if is_final_report(r["body"])]
    tracked.unsigned = sum(1 for r in received if not r["signature_valid"])


def is_final_report(body: object) -> bool:
    """The final report's shape: the dispatch at the top level (a message status has it only
    under `_links.workflow`) and the template it ran."""
    return isinstance(body, dict) and "dispatch_uuid" in body and "template" in body


def outcome_disagreements(tracked: Tracked) -> list[str]:
    """What is wrong with one dispatch's end: against its plan, and between its GET and report."""
    view, plan = tracked.view, tracked.plan
    if view is None:
        return ["never read"]
    problems = []
    expected_by = None if plan.completed_by is None else tracked.message_uuids[plan.completed_by]
    if (view["status"], view["completed_by"]) != (plan.status, expected_by):
        problems.append(f"{plan.name}: GET says {view['status']} by {view['completed_by']}")
    for report in tracked.final_reports:
        if (report["status"], report["completed_by"]) != (view["status"], view["completed_by"]):
            problems.append(f"{plan.name}: final report says {report['status']}, GET {view['status']}")
    return problems


def figures(result: LoadResult, client: StackClient) -> list[Figure]:
    tracked = result.tracked
    final = sum(1 for t in tracked if _is_final(t))
    not_exactly_one = result.count - sum(1 for t in tracked if len(t.final_reports) == 1)
    duplicated = sum(1 for t in tracked if len(t.final_reports) > 1)
    missing = Counter(t.missing_report_state for t in tracked if t.missing_report_state)
    missing_states = ", ".join(f"{n} {state}" for state, n in sorted(missing.items()))
    disagreements = [problems for t in tracked if (problems := outcome_disagreements(t))]
    unsigned = sum(t.unsigned for t in tracked)
    plans = ", ".join(p.name for p in PLANS)
    return [
        Figure(SECTION, "count", result.count, "dispatches", note=f"plans in turn: {plans}"),
        Figure(SECTION, "creates.per_s", per_second(len(result.create_ms), result.create_seconds), "per_s",
               note=f"{CREATE_WORKERS} threads, statuses injected meanwhile"),
        Figure(SECTION, "create.p50", percentile(result.create_ms, 50), "ms"),
        Figure(SECTION, "create.p99", percentile(result.create_ms, 99), "ms"),
        Figure(SECTION, "injections.per_s", per_second(result.injections, result.injection_seconds), "per_s",
               note=f"{result.injections} statuses while creating, {INJECT_WORKERS} threads"),
        at_most(SECTION, "http_errors", client.errors, "count", 0, "; ".join(client.error_samples)),
        _at_least("dispatches_final", final, "dispatches", result.count,
                  f"within {result.final_seconds:.0f} s of the creates' end"),
        at_most(SECTION, "missing_or_duplicate_final_reports", not_exactly_one, "dispatches", 0,
                f"{duplicated} duplicated; missing, as the service lists them: {missing_states or 'none'};"
                f" sink read for {result.reports_seconds:.0f} s after the dispatches ended"),
        at_most(SECTION, "outcome_disagreements", len(disagreements), "dispatches", 0,
                "; ".join(p[0] for p in disagreements[:3])),
        at_most(SECTION, "unsigned_callbacks", unsigned, "callbacks", 0),
        Figure(SECTION, "wall", result.wall_seconds, "s", note="first create to last sink read"),
    ]


def _at_least(name: str, value: float, unit: str, limit: float, note: str = "") -> Figure:
    return Figure(SECTION, name, value, unit, f">= {limit:g}", value >= limit, note)
