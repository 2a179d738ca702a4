"""`make bench` section "cost": what 1,000 dispatches cost in AWS, per timer backend.

The dispatch priced is the common failover: two steps, the first gets no status and fails over at
its deadline, the second gets `submitted` then `delivered`, and every callback is delivered at the
first attempt. It runs through the whole app under moto (`aws_stack`, the same stack and counters
as the "calls" section) on each AWS stage's timer backend, and every billable quantity is counted
live: API requests, Lambda invocations per function, DynamoDB request units (computed from item
sizes, see `aws_counts`), timer transitions or invocations, SQS requests and the bytes logged.
Only prices and the few latencies no emulator can show are constants, below.

The sweeper runs whatever the traffic, so its cost is reported per month, apart. So is the
callback queue's idle polling by Lambda.
"""
from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.aws_stack import API, CHECK, DELIVER, SWEEP, BenchStack, Invocation, aws_stack
from benchmarks.report import Figure, at_most

SECTION = "cost"
ROOT = Path(__file__).resolve().parent.parent

# --- public prices: us-east-1, on demand, taken 2026-11-24 ------------------------------------------
# "confirmed": read on the AWS page named. "unconfirmed": the official page's figure could not be
# read; the value is the best-known one, and every third-party page found agrees with it.

#: https://aws.amazon.com/lambda/pricing/ (x86; confirmed in "How AWS Pricing Works", docs.aws.amazon.com)
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND = 0.0000166667
#: https://aws.amazon.com/api-gateway/pricing/ (REST, first 333 M a month; confirmed, AWS whitepaper table)
APIGW_REST_PER_REQUEST = 3.50 / 1_000_000
#: https://aws.amazon.com/dynamodb/pricing/on-demand/ (after the November 2024 cut; unconfirmed)
DYNAMODB_PER_WRU = 0.625 / 1_000_000
DYNAMODB_PER_RRU = 0.125 / 1_000_000
#: https://aws.amazon.com/step-functions/pricing/ (Standard; confirmed: $0.0250 per 1,000 in us-east-1)
SFN_PER_TRANSITION = 0.025 / 1_000
#: https://aws.amazon.com/eventbridge/pricing/ (Scheduler; 14 M free a month, not applied; unconfirmed)
SCHEDULER_PER_INVOCATION = 1.00 / 1_000_000
#: https://aws.amazon.com/sqs/pricing/ (standard queue, each 64 KB chunk a request; unconfirmed)
SQS_PER_REQUEST = 0.40 / 1_000_000
#: https://aws.amazon.com/cloudwatch/pricing/ (Logs standard class, ingestion; unconfirmed)
LOGS_PER_GB = 0.50
#: https://aws.amazon.com/cloudwatch/pricing/ (custom metrics, first 10,000, per metric-month; unconfirmed)
METRIC_PER_MONTH = 0.30

# --- assumptions: what no emulator shows -------------------------------------------------------------

#: An AWS API call's round trip from a Lambda in the same region (assumed p50).
AWS_CALL_SECONDS = 0.005
#: The channel provider's send API (Vonage `POST /v1/messages`), and an application's callback
#: receiver answering (assumed p50s).
PROVIDER_SEND_SECONDS = 0.25
CALLBACK_POST_SECONDS = 0.10
#: Lambda's own START, END and REPORT lines per invocation (estimated from their format).
LAMBDA_PLATFORM_LOG_BYTES = 270
#: Lambda's SQS event source polls an idle queue: 5 long polls of 20 s at a time (unconfirmed).
IDLE_POLLERS, IDLE_POLL_SECONDS = 5, 20
SQS_CHUNK_BYTES = 64 * 1024
GB = 1_000_000_000
MONTH_MINUTES = 30 * 24 * 60
#: The target the issue sets per 1,000 dispatches.
TARGET_PER_1000 = 0.10
#: Each backend is priced as the stage that uses it is configured.
STAGES = {"stepfunctions": "prod", "scheduler": "dev"}


@dataclass(frozen=True)
class Prices:
    lambda_request: float = LAMBDA_PER_REQUEST
    lambda_gb_second: float = LAMBDA_PER_GB_SECOND
    apigw_request: float = APIGW_REST_PER_REQUEST
    wru: float = DYNAMODB_PER_WRU
    rru: float = DYNAMODB_PER_RRU
    transition: float = SFN_PER_TRANSITION
    schedule_invocation: float = SCHEDULER_PER_INVOCATION
    sqs_request: float = SQS_PER_REQUEST
    log_gb: float = LOGS_PER_GB


@dataclass(frozen=True)
class Invoked:
    """One Lambda invocation as billed: its function and duration in seconds."""

    function: str
    seconds: float


@dataclass(frozen=True)
class Usage:
    """Billable quantities of one dispatch (or one sweep)."""

    api_requests: int = 0
    invocations: tuple[Invoked, ...] = ()
    write_units: float = 0.0
    read_units: float = 0.0
    state_transitions: int = 0
    schedule_invocations: int = 0
    sqs_requests: int = 0
    log_bytes: int = 0

    def gb_seconds(self, memory_mb: Mapping[str, int], duration_factor: float = 1.0) -> float:
        """Lambda bills each invocation's duration rounded up to the millisecond."""
        return sum(
            memory_mb[i.function] / 1024 * math.ceil(i.seconds * duration_factor * 1000) / 1000
            for i in self.invocations
        )


LINE_ITEMS = ("lambda", "apigw", "dynamodb", "timer", "sqs", "logs")


def line_items(
    usage: Usage, memory_mb: Mapping[str, int], prices: Prices = Prices(), duration_factor: float = 1.0
) -> dict[str, float]:
    """USD per line item for `usage`; `duration_factor` scales every Lambda duration."""
    return {
        "lambda": len(usage.invocations) * prices.lambda_request
        + usage.gb_seconds(memory_mb, duration_factor) * prices.lambda_gb_second,
        "apigw": usage.api_requests * prices.apigw_request,
        "dynamodb": usage.write_units * prices.wru + usage.read_units * prices.rru,
        "timer": usage.state_transitions * prices.transition
        + usage.schedule_invocations * prices.schedule_invocation,
        "sqs": usage.sqs_requests * prices.sqs_request,
        "logs": usage.log_bytes / GB * prices.log_gb,
    }


def lambda_memory_mb(config: Mapping[str, Any], stage: str, function: str) -> int:
    """A function's memory as Chalice resolves it: the stage's setting for the function, the
    stage's, the top level's for the function, the top level's, else Chalice's default 128."""
    stage_config = config.get("stages", {}).get(stage, {})
    scopes = (
        stage_config.get("lambda_functions", {}).get(function, {}),
        stage_config,
        config.get("lambda_functions", {}).get(function, {}),
        config,
    )
    for scope in scopes:
        if "lambda_memory_size" in scope:
            return int(scope["lambda_memory_size"])
    return 128


def state_path(definition: Mapping[str, Any]) -> list[str]:
    """The states one execution runs through, from StartAt to a terminal state (no branches)."""
    path, name = [], definition["StartAt"]
    while True:
        path.append(name)
        state = definition["States"][name]
        if state.get("End") or state["Type"] in ("Succeed", "Fail"):
            return path
        name = state["Next"]


def state_transitions(started: int, stopped: int, path_length: int) -> int:
    """Transitions billed for `started` executions of which `stopped` were stopped while
    waiting: a state is billed each time one is entered ("each time a step of your workflow is
    executed", the pricing page), so a fired check pays for its whole path and a stopped one for
    its Wait state only."""
    return (started - stopped) * path_length + stopped


def sqs_requests(payload_bytes: int) -> int:
    """Requests one SQS call is billed as: each 64 KB chunk of its payload is one."""
    return max(1, math.ceil(payload_bytes / SQS_CHUNK_BYTES))


# --- the measured run ---------------------------------------------------------------------------------


@dataclass
class Measured:
    """One backend's run: the invocations of each repetition of the dispatch, and the sweeps."""

    timer: str
    runs: list[list[Invocation]]
    sweeps: list[Invocation]
    #: Distinct metrics the sweeps emitted in Embedded Metric Format.
    sweep_metrics: int
    path_length: int = 0
    memory_mb: dict[str, int] = field(default_factory=dict)
    #: One sweep that looked back the whole look-back (one run in `sweep_full_every_minutes`).
    full_sweep: Invocation | None = None
    full_every: int = 15


def measure(timer: str, repeats: int) -> Measured:
    """Run the priced dispatch `repeats` times (after one warm-up), and the idle sweep."""
    with aws_stack(timer, "vonage") as stack:
        _one_dispatch(stack)  # warms the process up: every cache filled, as in steady traffic
        runs = [_one_dispatch(stack) for _ in range(repeats)]
        sweeps, metrics = [], set()
        for _ in range(min(repeats, 3)):  # the slowest invocation; its count never varies
            _to_minute(stack, full=False)
            start = len(stack.logs.text)
            result = stack.sweep()
            assert result["found"] == result["callbacks_recovered"] == 0, result
            sweeps.append(stack.invocations[-1])
            metrics |= _emitted_metrics(stack.logs.text[start:])
        _to_minute(stack, full=True)
        assert stack.sweep()["found"] == 0
        full_sweep = stack.invocations[-1]
        full_every = stack.services.settings.sweep_full_every_minutes
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    template = json.loads((ROOT / "infra" / "dispatch.json").read_text())
    definition = template["Resources"]["FailoverTimer"]["Properties"]["Definition"]
    memory = {f: lambda_memory_mb(config, STAGES[timer], f) for f in (API, CHECK, DELIVER, SWEEP)}
    return Measured(
        timer, runs, sweeps, len(metrics), len(state_path(definition)), memory, full_sweep, full_every
    )


def _to_minute(stack: BenchStack, full: bool) -> None:
    """Move the clock to the next minute whose sweep is a full one (or a short one)."""
    every = stack.services.settings.sweep_full_every_minutes
    while True:
        stack.clock.current += timedelta(minutes=1)
        now = stack.clock.current
        if ((now.hour * 60 + now.minute) % every == 0) == full:
            return


def _one_dispatch(stack: BenchStack) -> list[Invocation]:
    start = len(stack.invocations)
    dispatch_uuid = stack.create()
    stack.deliver_callbacks()
    stack.fire_deadline(dispatch_uuid, 0)
    stack.deliver_callbacks()
    for status in ("submitted", "delivered"):
        stack.status(dispatch_uuid, 1, status)
        stack.deliver_callbacks()
    dispatch = stack.dispatch(dispatch_uuid)
    assert dispatch.status.value == "completed" and dispatch.completed_by == 1, dispatch.status
    assert stack.queue_depth() == 0
    return stack.invocations[start:]


def _emitted_metrics(lines: Sequence[str]) -> set[tuple[str, str, tuple[str, ...]]]:
    metrics = set()
    for line in "".join(lines).splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"] or [[]]:
                values = tuple(str(document.get(d)) for d in dimensions)
                for metric in directive["Metrics"]:
                    metrics.add((directive["Namespace"], metric["Name"], values))
    return metrics


def billed_seconds(invocations: Sequence[Invocation]) -> float:
    """An invocation's assumed duration on Lambda: the median of its in-process time here over
    the repetitions (our code and the emulator), plus the round trips the emulator does not
    have: each AWS call, each provider send and each callback post."""
    first = invocations[0]
    measured = statistics.median(i.calls.seconds for i in invocations)
    return (
        measured
        + len(first.calls.calls) * AWS_CALL_SECONDS
        + first.provider_sends * PROVIDER_SEND_SECONDS
        + first.callback_posts * CALLBACK_POST_SECONDS
    )


def dispatch_usage(measured: Measured) -> Usage:
    """The usage of one dispatch: counts from the last repetition, durations over all of them."""
    runs = measured.runs
    assert all([i.function for i in run] == [i.function for i in runs[-1]] for run in runs), "runs differ"
    last = runs[-1]
    invoked = tuple(
        Invoked(last[k].function, billed_seconds([run[k] for run in runs])) for k in range(len(last))
    )
    calls = [c for i in last for c in i.calls.calls]
    operations = [c.operation for c in calls]
    if measured.timer == "stepfunctions":
        transitions = state_transitions(
            operations.count("StartExecution"), operations.count("StopExecution"), measured.path_length
        )
        fired = 0
    else:
        transitions, fired = 0, operations.count("CreateSchedule") - operations.count("DeleteSchedule")
    # Every nudge is a tiny JSON body (one chunk); the event source receives it and deletes it.
    sends = sum(1 for c in calls if c.service == "sqs")
    received = sum(1 for i in last if i.function == DELIVER)
    return Usage(
        api_requests=sum(1 for i in last if i.function == API),
        invocations=invoked,
        write_units=sum(i.calls.write_units for i in last),
        read_units=sum(i.calls.read_units for i in last),
        state_transitions=transitions,
        schedule_invocations=fired,
        sqs_requests=sends * sqs_requests(len('{"dispatch_uuid": "00000000-0000-0000-0000-000000000000"}'))
        + 2 * received,
        log_bytes=sum(i.calls.log_bytes for i in last) + LAMBDA_PLATFORM_LOG_BYTES * len(last),
    )


def sweep_usage(measured: Measured) -> Usage:
    """One average sweep: short runs, and one full run in every `FULL_EVERY` minutes."""
    short = measured.sweeps[-1]
    full = measured.full_sweep or short
    weight = 1 / measured.full_every
    seconds = (1 - weight) * billed_seconds(measured.sweeps) + weight * billed_seconds([full])
    return Usage(
        invocations=(Invoked(SWEEP, seconds),),
        read_units=(1 - weight) * short.calls.read_units + weight * full.calls.read_units,
        write_units=(1 - weight) * short.calls.write_units + weight * full.calls.write_units,
        log_bytes=round((1 - weight) * short.calls.log_bytes + weight * full.calls.log_bytes)
        + LAMBDA_PLATFORM_LOG_BYTES,
    )


# --- figures ------------------------------------------------------------------------------------------


def run(quick: bool) -> list[Figure]:
    repeats = 3 if quick else 7
    figures: list[Figure] = []
    sweeper: Measured | None = None
    for timer in STAGES:
        measured = measure(timer, repeats)
        figures.extend(backend_figures(measured))
        sweeper = sweeper or measured
    assert sweeper is not None
    figures.extend(fixed_figures(sweeper))
    return figures


def backend_figures(measured: Measured) -> list[Figure]:
    usage = dispatch_usage(measured)
    items = line_items(usage, measured.memory_mb)
    doubled = line_items(usage, measured.memory_mb, duration_factor=2.0)
    per_1000 = 1000 * sum(items.values())
    name = f"cost.{measured.timer}"
    invocations = len(usage.invocations)
    notes = {
        "lambda": f"{invocations} invocations, {usage.gb_seconds(measured.memory_mb):.3f} GB-s "
        f"({_memory_note(measured.memory_mb)}; in-process median + assumed round trips)",
        "apigw": f"{usage.api_requests} REST requests (create and 2 webhooks; no GET counted)",
        "dynamodb": f"{usage.write_units:g} WRU, {usage.read_units:g} RRU (computed from item sizes)",
        "timer": (
            f"{usage.state_transitions} state transitions ({measured.path_length} states per fired check)"
            if measured.timer == "stepfunctions"
            else f"{usage.schedule_invocations} schedule invoked (free tier not applied)"
        ),
        "sqs": f"{usage.sqs_requests} requests (SendMessage, plus Receive and Delete per message)",
        "logs": f"{usage.log_bytes} bytes ({LAMBDA_PLATFORM_LOG_BYTES} of Lambda's own lines per invocation)",
    }
    figures = [
        at_most(SECTION, f"{name}.per_1000", per_1000, "USD", TARGET_PER_1000, "2 steps, 1 failover"),
        Figure(
            SECTION, f"{name}.per_1000_2x_duration", 1000 * sum(doubled.values()), "USD",
            note="every Lambda duration doubled",
        ),
    ]
    for item in LINE_ITEMS:
        figures.append(Figure(SECTION, f"{name}.{item}", 1000 * items[item], "USD", note=notes[item]))
    return figures


def fixed_figures(measured: Measured) -> list[Figure]:
    usage = sweep_usage(measured)
    per_run = sum(line_items(usage, measured.memory_mb).values())
    metrics = measured.sweep_metrics * METRIC_PER_MONTH
    sweeper = per_run * MONTH_MINUTES + metrics
    seconds = usage.invocations[0].seconds
    polls = IDLE_POLLERS * (60 / IDLE_POLL_SECONDS) * MONTH_MINUTES
    return [
        Figure(
            SECTION, "cost.sweeper.per_month", sweeper, "USD",
            note=f"{MONTH_MINUTES} runs, on average {seconds:.2f} s and {usage.read_units:.1f} RRU "
            f"(1 in {measured.full_every} a full look-back), "
            f"plus {measured.sweep_metrics} custom metrics (${metrics:.2f})",
        ),
        Figure(
            SECTION, "cost.callback_queue_polling.per_month", polls * SQS_PER_REQUEST, "USD",
            note=f"idle queue: {IDLE_POLLERS} pollers x 20 s long polls (unconfirmed)",
        ),
    ]


def _memory_note(memory_mb: Mapping[str, int]) -> str:
    sizes = sorted(set(memory_mb.values()))
    return "/".join(f"{s} MB" for s in sizes)

