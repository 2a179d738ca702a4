"""`make bench` section "overhead": what the service adds to a request, against bare Chalice.

In one process, `POST /v0.1/dispatch` (a valid two-step body, Basic auth) and
`GET /v0.1/dispatch/{id}` go through `chalice.test.Client(app)` with every adapter in memory
(`benchmarks.in_memory`: no AWS emulator, whose cost would hide ours), and the same requests go to
`benchmarks.bare_app`, a Chalice app whose routes only parse the body and answer. Requests
alternate service, bare, service, bare... after a warm-up, so a slow moment of this shared
machine falls on both; each figure is a median, and the ratio is of the two medians.

The JSON log lines the service writes are formatted as usual and thrown away (on Lambda they go
to stdout, which costs about the same), so logging is in the figures.

Where the create path's time goes, for deciding what to cut:
- `create.stage.<name>`: each stage of the route called alone with the same input (auth, body
  decoding, validation and its phonenumbers share, the use case and its logging share, the
  state machine's start, the response), medians without the client or a profiler;
- `create.profile.*`: cProfile over extra requests: the share of a create spent in calls from
  chalicelib out to libraries, and the self time of each package. cProfile slows Python code
  more than C, so read these as shares, not as µs.
"""
from __future__ import annotations

import base64
import cProfile
import io
import json
import logging
import os
import pstats
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chalice.test import Client

from benchmarks import bare_app
from benchmarks.bodies import TWO_STEPS
from benchmarks.in_memory import InMemoryStack, in_memory_services, installed
from benchmarks.report import Figure, at_most

SECTION = "overhead"
ROOT = Path(__file__).resolve().parent.parent
#: The issue's target: the service's median at most this many times bare Chalice's.
RATIO_TARGET = 1.5
WARM_UP = 50
PROFILED = 300


Request = Callable[[], Any]


def run(quick: bool) -> list[Figure]:
    repeats = 200 if quick else 2000
    stack = in_memory_services()
    service, bare = _clients()
    token = base64.b64encode(
        f"{stack.credentials.api_key}:{stack.credentials.api_secret}".encode()
    ).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    body = json.dumps(TWO_STEPS).encode()
    with installed(stack), _quiet_logs():
        created = _expect(202, lambda: service.http.post("/v0.1/dispatch", headers=headers, body=body))
        dispatch_uuid = created().json_body["dispatch_uuid"]
        requests = {
            "create": (
                created,
                _expect(202, lambda: bare.http.post("/v0.1/dispatch", headers=headers, body=body)),
            ),
            "get": (
                _expect(200, lambda: service.http.get(f"/v0.1/dispatch/{dispatch_uuid}", headers=headers)),
                _expect(200, lambda: bare.http.get(f"/v0.1/dispatch/{dispatch_uuid}", headers=headers)),
            ),
        }
        figures = []
        for name, (ours, baseline) in requests.items():
            figures += _compare(name, ours, baseline, repeats)
        figures += _stages(stack, headers, body, repeats)
        figures += _profile(created, 100 if quick else PROFILED)
    return figures


def _clients() -> tuple[Client, Client]:
    """Test clients of the service and of the bare app, with the same stage configuration (the
    client copies the stage's environment into os.environ on every request: both pay it)."""
    from app import app

    return (
        Client(app, stage_name="local", project_dir=str(ROOT)),
        Client(bare_app.app, stage_name="local", project_dir=str(ROOT)),
    )


def _expect(status: int, request: Request) -> Request:
    """`request`, failing loudly if it answers anything but `status`: a 4xx or 500 is fast, and
    timing one would flatter the service."""

    def checked() -> Any:
        response = request()
        if response.status_code != status:
            raise AssertionError(f"expected {status}, got {response.status_code}: {response.body[:300]!r}")
        return response

    return checked


def _compare(name: str, ours: Request, baseline: Request, repeats: int) -> list[Figure]:
    ours_us, baseline_us = interleaved(ours, baseline, repeats)
    ours_median, baseline_median = statistics.median(ours_us), statistics.median(baseline_us)
    ratio = ours_median / baseline_median
    spread = f"p90 {_p90(ours_us):.0f} vs {_p90(baseline_us):.0f} µs; {repeats} interleaved pairs"
    return [
        Figure(SECTION, f"{name}.service", round(ours_median, 1), "µs", note="median, in-memory adapters"),
        Figure(SECTION, f"{name}.bare", round(baseline_median, 1), "µs", note="median, bare Chalice route"),
        at_most(SECTION, f"{name}.ratio", round(ratio, 2), "ratio", RATIO_TARGET, spread),
    ]


def interleaved(first: Request, second: Request, repeats: int) -> tuple[list[float], list[float]]:
    """Each request's durations in µs, run alternately `repeats` times after a warm-up."""
    for _ in range(WARM_UP):
        first()
        second()
    first_us, second_us = [], []
    clock = time.perf_counter_ns
    for _ in range(repeats):
        started = clock()
        first()
        middle = clock()
        second()
        ended = clock()
        first_us.append((middle - started) / 1000)
        second_us.append((ended - middle) / 1000)
    return first_us, second_us


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def _stages(stack: InMemoryStack, headers: dict[str, str], body: bytes, repeats: int) -> list[Figure]:
    """Each stage of the create route timed alone, without the client or a profiler: medians in µs.

    `service.logging` is the service's create with its log lines minus without them (both
    measured alternately); `validation.phonenumbers` is the phonenumbers library's share of
    validation, the four numbers of the body parsed and checked as validation does."""
    import phonenumbers

    from chalicelib.api.auth import authenticate
    from chalicelib.api.body import decode_json_body
    from chalicelib.api.http import json_response
    from chalicelib.api.validation import parse_create_request
    from chalicelib.domain import transitions

    services = stack.services
    decoded = json.loads(body)
    application = authenticate(headers["Authorization"], services.applications, services.clock.now())
    specs = parse_create_request(decoded, services.carried)
    numbers = [
        "+" + side["number"] for step in TWO_STEPS["workflow"] for side in (step["from"], step["to"])
    ]

    def check_numbers() -> None:
        for number in numbers:
            phonenumbers.is_possible_number_with_reason(phonenumbers.parse(number))

    stages: dict[str, Request] = {
        "auth": lambda: authenticate(headers["Authorization"], services.applications, services.clock.now()),
        "body": lambda: decode_json_body(body, headers["Content-Type"]),
        "validation": lambda: parse_create_request(decoded, services.carried),
        "validation.phonenumbers": check_numbers,
        "transitions": lambda: transitions.start(
            "00000000-0000-4000-8000-000000000000", application.application_id, specs,
            services.clock.now(), services.settings.policy,
        ),
        "response": lambda: json_response(
            {"dispatch_uuid": "00000000-0000-4000-8000-000000000000"}, status=202, headers={"Location": "x"}
        ),
    }
    medians = {name: statistics.median(timed(stage, repeats)) for name, stage in stages.items()}
    create = lambda: services.dispatches.create(application, specs)
    with_logs, without_logs = _with_and_without_logs(create, repeats)
    medians["service"] = statistics.median(with_logs)
    medians["service.logging"] = medians["service"] - statistics.median(without_logs)
    notes = {
        "service": "create use case: transitions, in-memory save, sandbox send, timer, outbox, logs",
        "service.logging": "the log lines of one create (formatted, then discarded)",
        "validation.phonenumbers": "4 numbers: phonenumbers.parse + is_possible_number_with_reason",
        "transitions": "the pure state machine's start(), part of service",
    }
    return [
        Figure(SECTION, f"create.stage.{name}", round(value, 1), "µs", note=notes.get(name, "median, alone"))
        for name, value in medians.items()
    ]


def timed(request: Request, repeats: int) -> list[float]:
    """Durations of `request` in µs, after a warm-up."""
    for _ in range(WARM_UP):
        request()
    clock = time.perf_counter_ns
    durations = []
    for _ in range(repeats):
        started = clock()
        request()
        durations.append((clock() - started) / 1000)
    return durations


def _with_and_without_logs(request: Request, repeats: int) -> tuple[list[float], list[float]]:
    """`request` timed alternately with logging on and with every log call a no-op."""
    with_logs, without_logs = [], []
    clock = time.perf_counter_ns
    try:
        for index in range(WARM_UP + repeats):
            logging.disable(logging.NOTSET)
            started = clock()
            request()
            logged = clock() - started
            logging.disable(logging.CRITICAL)
            started = clock()
            request()
            silent = clock() - started
            if index >= WARM_UP:
                with_logs.append(logged / 1000)
                without_logs.append(silent / 1000)
    finally:
        logging.disable(logging.NOTSET)
    return with_logs, without_logs


def _profile(create: Request, repeats: int) -> list[Figure]:
    """Where a create request's time goes under cProfile (which slows Python code more than C:
    read the shares, not the µs): the calls chalicelib makes into libraries and the standard
    library, and the self time of each package."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        create()
    profiler.disable()
    raw: dict[Any, Any] = pstats.Stats(profiler, stream=io.StringIO()).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    calls_out: dict[str, float] = {}
    self_time: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, own, _cumulative, callers) in raw.items():
        package = _package(filename, function)
        self_time[package] = self_time.get(package, 0.0) + own
        if package.startswith(("chalicelib", "chalice", "benchmarks")):
            continue
        from_project = sum(
            caller_stats[3]
            for caller, caller_stats in callers.items()
            if _package(caller[0], caller[2]).startswith("chalicelib")
        )
        if from_project:
            name = f"{package}.{function}" if not function.startswith("<") else package
            calls_out[name] = calls_out.get(name, 0.0) + from_project

    def listed(times: dict[str, float], count: int) -> str:
        top = sorted(times.items(), key=lambda item: item[1], reverse=True)[:count]
        return ", ".join(f"{name} {100 * seconds / total:.0f}%" for name, seconds in top)

    per_request = total * 1e6 / repeats
    return [
        Figure(
            SECTION, "create.profile.calls_out", round(100 * sum(calls_out.values()) / total, 1), "%",
            note=f"of a create's time, in calls from chalicelib out to libraries: {listed(calls_out, 8)}",
        ),
        Figure(
            SECTION, "create.profile.self", round(per_request, 1), "µs",
            note=f"per request under cProfile ({repeats}); self time by package: {listed(self_time, 8)}",
        ),
    ]


def _package(filename: str, function: str) -> str:
    """What a profiled function belongs to: `chalicelib.api`, a distribution's top-level package
    (`phonenumbers`), a standard library module (`logging`), or `builtins` for C functions."""
    if filename == "~":
        for owner in ("pydantic_core", "re.Pattern", "json"):
            if owner in function:
                return owner.split(".")[0]
        return "builtins"
    if filename.startswith("<frozen "):
        return filename[len("<frozen ") : -1]
    parts = Path(filename).parts
    for anchor in ("site-packages", "python3.11"):
        if anchor in parts:
            module = parts[parts.index(anchor) + 1]
            return module.removesuffix(".py")
    try:
        relative = Path(filename).resolve().relative_to(ROOT).parts
    except ValueError:
        return filename
    return ".".join(relative[:2]).removesuffix(".py")


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Root log handlers write to /dev/null meanwhile: every line is still formatted."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    with open(os.devnull, "w") as null:
        previous = [h.setStream(null) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, previous, strict=True):
                handler.setStream(stream)
