"""`make bench` section "calls": the AWS calls each input costs, counted live.

Every input goes through the real service code as `chalicelib.bootstrap` wires it for the `prod`
stage (Step Functions timer, callbacks on SQS, secrets in Secrets Manager) against moto, with a
real channel provider (Vonage, as both AWS stages route every channel, so a send also writes its
recipient's index item) and, for comparison, the sandbox. Calls are counted with botocore's event
hooks on the functions' own clients (`aws_counts.CallRecorder`); nothing is expected or embedded.

One figure per input and AWS service it touched, with DynamoDB's calls broken down by operation in
the note; and per input the DynamoDB read and write request units, computed from item sizes (see
`aws_counts`). The scheduler backend's timer calls are counted too (`.scheduler` figures).

`count_operations()` is what `cost.py` builds on.
"""
from __future__ import annotations

from benchmarks.aws_counts import OperationCalls
from benchmarks.aws_stack import BenchStack, aws_stack
from benchmarks.report import Figure, at_most

SECTION = "calls"
#: The issue's target: each of these inputs costs at most this many DynamoDB calls.
DYNAMODB_TARGET = 2
TARGETED = ("create", "status_current", "deadline")
#: The inputs that depend on the channel provider, compared with the sandbox.
PROVIDER_DEPENDENT = ("create", "status_current", "status_late", "status_duplicate", "deadline")
#: The inputs that touch the timer, compared with the scheduler backend.
TIMER_DEPENDENT = ("create", "status_current", "deadline")


def run(quick: bool) -> list[Figure]:
    """Counts do not vary with size: `quick` changes nothing."""
    del quick
    main = count_operations()
    figures = operation_figures(main)
    sandbox = count_operations(provider="sandbox")
    for name in PROVIDER_DEPENDENT:
        figures.append(_dynamodb_figure(sandbox[name], f"{name}.sandbox.dynamodb"))
    scheduler = count_operations(timer="scheduler")
    for name in TIMER_DEPENDENT:
        figures.append(_service_figure(scheduler[name], name, "scheduler"))
    return figures


def count_operations(timer: str = "stepfunctions", provider: str = "vonage") -> dict[str, OperationCalls]:
    """The calls of each input, by name, in a stack of that timer backend and provider."""
    with aws_stack(timer, provider) as stack:
        return run_operations(stack)


def run_operations(stack: BenchStack) -> dict[str, OperationCalls]:
    """Each input once, in an order where each finds the state it needs; the stack's process is
    warmed up first (one dispatch created and its callbacks delivered) unless noted."""
    ops: dict[str, OperationCalls] = {}

    def last() -> OperationCalls:
        return stack.invocations[-1].calls

    stack.create(name="warm-up")
    stack.deliver_callbacks("warm-up")

    # The sweeper's minute with nothing overdue and no callback stranded.
    swept = stack.sweep()
    assert swept["found"] == swept["callbacks_recovered"] == 0, swept
    ops["sweep"] = last()

    # A create in a fresh process (Lambda cold start): services built, caches empty.
    later = stack.create(name="create.cold", cold=True)
    ops["create.cold"] = last()
    stack.deliver_callbacks("between")

    # A create in a warm process, and the drain of its one callback (`submitted`).
    first = stack.create()
    ops["create"] = last()
    _drain(stack, ops, "drain_1", posts=1)

    # `delivered` meets the first step's condition: the dispatch completes.
    stack.status(first, 0, "delivered", name="status_current")
    ops["status_current"] = last()
    assert stack.dispatch(first).status.value == "completed"
    _drain(stack, ops, "drain_2", posts=2)  # `delivered` and the final report

    stack.status(first, 0, "delivered", name="status_duplicate")
    ops["status_duplicate"] = last()
    assert stack.deliver_callbacks("between") == 0, "a duplicate decided a callback"

    stack.get(first)
    ops["get"] = last()

    # The first step's deadline passes with no status: the check sends the second step.
    stack.fire_deadline(later, 0)
    ops["deadline"] = last()
    assert stack.dispatch(later).steps[1].phase.value == "waiting"
    stack.deliver_callbacks("between")

    # `delivered` for the first step after it failed over: recorded late, forwarded.
    stack.status(later, 0, "delivered", name="status_late")
    ops["status_late"] = last()
    assert stack.dispatch(later).steps[0].history[-1].late
    stack.deliver_callbacks("between")

    ops["callbacks.per_callback"] = ops["drain_2"].minus(ops["drain_1"], "callbacks.per_callback")
    ops["callbacks.per_drain"] = ops["drain_1"].minus(ops["callbacks.per_callback"], "callbacks.per_drain")
    return ops


def _drain(stack: BenchStack, ops: dict[str, OperationCalls], name: str, posts: int) -> None:
    """One `deliver_callbacks` invocation for one queued message, posting `posts` callbacks."""
    assert stack.deliver_callbacks(name) == 1, "expected one queued message"
    invocation = stack.invocations[-1]
    assert invocation.callback_posts == posts, (name, invocation.callback_posts)
    ops[name] = invocation.calls


#: The figures, in the order they print, with what each input is.
DESCRIBED = {
    "create": "POST /v0.1/dispatch, warm process",
    "create.cold": "POST /v0.1/dispatch, cold start (services built)",
    "status_current": "delivered on the current step",
    "status_late": "delivered on a step already failed over",
    "status_duplicate": "the same status again",
    "deadline": "failover_check: no status, sends step 2",
    "get": "GET /v0.1/dispatch/{id}",
    "callbacks.per_drain": "deliver_callbacks, fixed part of one drain",
    "callbacks.per_callback": "deliver_callbacks, each callback posted",
    "sweep": "sweep_overdue, nothing to do",
}


def operation_figures(ops: dict[str, OperationCalls]) -> list[Figure]:
    figures: list[Figure] = []
    for name, what in DESCRIBED.items():
        calls = ops[name]
        figures.append(_dynamodb_figure(calls, f"{name}.dynamodb", what))
        for service in calls.services():
            if service != "dynamodb":
                figures.append(_service_figure(calls, name, service))
        computed = "computed from item sizes"
        figures.append(Figure(SECTION, f"{name}.rru", calls.read_units, "RRU", note=computed))
        figures.append(Figure(SECTION, f"{name}.wru", calls.write_units, "WRU", note=computed))
    return figures


def _service_figure(calls: OperationCalls, name: str, service: str) -> Figure:
    return Figure(SECTION, f"{name}.{service}", calls.count(service), "calls", note=calls.breakdown(service))


def _dynamodb_figure(calls: OperationCalls, name: str, what: str = "") -> Figure:
    note = calls.breakdown("dynamodb") + (f" ({what})" if what else "")
    if name.removesuffix(".dynamodb").removesuffix(".sandbox") in TARGETED:
        return at_most(SECTION, name, calls.count("dynamodb"), "calls", DYNAMODB_TARGET, note)
    return Figure(SECTION, name, calls.count("dynamodb"), "calls", note=note)
