"""`make bench` section "lateness": how late the local stack fails over, under a bunch of deadlines.

Starts its own local stack (`scripts/local_stack.py` as a child process, on a free port, so a
developer's `make run` is left alone), creates many Messenger -> SMS dispatches at once from a
thread pool, each with `expiry_time` 15 on its first message and no status ever, waits past
their deadlines, then reads every dispatch back. Per dispatch, the lateness is the time from the
first message's `deadline` to the second message's `sent_at`: both stamped by the service's own
clock, so the client's scheduling does not enter the figure.

How bunched the deadlines are is set by how fast the creates went (each deadline is its first
send plus 15 s), so the creation throughput and the spread of the deadlines are reported too: a
p99 over deadlines spread across 10 s says less than one over deadlines within 1 s.

`StackClient` and `failover_body` are shared with `load.py`, the other local-stack section.
"""
from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from benchmarks.report import Figure, at_most
from benchmarks.stats import per_second, percentile, spread

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
if str(SCRIPTS) not in sys.path:  # the scripts folder is not a package (its files run as scripts)
    sys.path.insert(0, str(SCRIPTS))
from local_stack_process import running_local_stack  # noqa: E402

SECTION = "lateness"
EXPIRY_SECONDS = 15  #: the contract's minimum expiry_time
COUNT, QUICK_COUNT = 200, 40
WORKERS = 16
#: The issue's target for the p99 of failover lateness.
P99_TARGET_MS = 250
#: How long after the last deadline a dispatch may still fail over before it counts as missed.
MISS_AFTER_SECONDS = 20.0
REQUEST_TIMEOUT_SECONDS = 30


def run(quick: bool) -> list[Figure]:
    with local_stack() as client:
        result = measure(client, QUICK_COUNT if quick else COUNT)
    return figures(result, client.errors)


@dataclass
class LatenessResult:
    count: int
    create_seconds: float  #: wall time from the first create sent to the last answered
    deadlines: list[datetime]
    lateness_ms: list[float]  #: one per dispatch that failed over
    missed: int  #: dispatches whose second message was never sent


def measure(client: StackClient, count: int) -> LatenessResult:
    """Create `count` dispatches at once, wait for their deadlines, read the lateness of each."""
    body = failover_body(EXPIRY_SECONDS, "read")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        created = [u for u in pool.map(lambda _: client.timed_create(body), range(count)) if u]
    create_seconds = time.monotonic() - started
    uuids = [uuid for uuid, _ in created]
    # Every deadline is at most EXPIRY_SECONDS after its create answered. Reading them all while
    # the timer is still firing would compete with it and inflate the figure, so only the last
    # one created (about the last due) is watched until it has failed over.
    time.sleep(max(0.0, started + create_seconds + EXPIRY_SECONDS - time.monotonic()))
    if uuids:
        _poll_until_failed_over(client, uuids[-1:], interval=0.25)
    views = _poll_until_failed_over(client, uuids)
    deadlines, lateness = [], []
    for view in views.values():
        first, second = view["messages"][0], view["messages"][1]
        deadlines.append(parse_time(first["deadline"]))
        if second["sent_at"] is not None:
            late = parse_time(second["sent_at"]) - parse_time(first["deadline"])
            lateness.append(late.total_seconds() * 1000)
    return LatenessResult(
        count=count,
        create_seconds=create_seconds,
        deadlines=deadlines,
        lateness_ms=lateness,
        missed=count - len(lateness),
    )


def _poll_until_failed_over(
    client: StackClient, uuids: list[str], interval: float = 1.0
) -> dict[str, dict[str, Any]]:
    """Read every dispatch until its second message is sent, or MISS_AFTER_SECONDS pass."""
    views: dict[str, dict[str, Any]] = {}
    waiting = list(uuids)
    give_up = time.monotonic() + MISS_AFTER_SECONDS
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        while waiting:
            for uuid, view in zip(waiting, pool.map(client.dispatch, waiting), strict=True):
                if view is not None:
                    views[uuid] = view
            waiting = [u for u in waiting if u not in views or views[u]["messages"][1]["sent_at"] is None]
            if not waiting or time.monotonic() > give_up:
                break
            time.sleep(interval)
    return views


def figures(result: LatenessResult, http_errors: int) -> list[Figure]:
    late = result.lateness_ms
    deadline_spread = spread([d.timestamp() * 1000 for d in result.deadlines])
    creates_per_s = per_second(result.count, result.create_seconds)
    return [
        Figure(SECTION, "count", result.count, "dispatches", note=f"expiry {EXPIRY_SECONDS} s, no status"),
        at_most(SECTION, "missed", result.missed, "dispatches", 0, "second message never sent"),
        Figure(SECTION, "p50", percentile(late, 50), "ms", note="first deadline -> second sent_at"),
        at_most(SECTION, "p99", percentile(late, 99), "ms", P99_TARGET_MS),
        Figure(SECTION, "max", max(late) if late else float("nan"), "ms"),
        Figure(SECTION, "creates.per_s", creates_per_s, "per_s", note=f"{WORKERS} threads"),
        Figure(SECTION, "creates.seconds", result.create_seconds * 1000, "ms", note="first to last create"),
        Figure(SECTION, "deadline_spread", deadline_spread, "ms", note="latest minus earliest deadline"),
        at_most(SECTION, "http_errors", http_errors, "count", 0),
    ]


# --- talking to a local stack (shared with load.py) -------------------------------------------


@contextmanager
def local_stack() -> Iterator[StackClient]:
    """A fresh local stack in a temporary folder, quiet (WARNING logs), and a client for it."""
    with tempfile.TemporaryDirectory() as state, running_local_stack(
        Path(state), DISPATCH_LOG_LEVEL="WARNING"
    ) as stack:
        yield StackClient(stack.base_url, stack.basic_auth)


def failover_body(expiry_seconds: int, condition: str) -> dict[str, Any]:
    """A Messenger -> SMS failover dispatch, as in the README's walkthrough."""
    return {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "messenger", "id": "1111111111111111"},
                "to": {"type": "messenger", "id": "0000000000000000"},
                "message": {"content": {"type": "text", "text": "Your order has shipped"}},
                "failover": {"expiry_time": expiry_seconds, "condition_status": condition},
            },
            {
                "from": {"type": "sms", "number": "447700900001"},
                "to": {"type": "sms", "number": "447700900000"},
                "message": {"content": {"type": "text", "text": "Your order has shipped"}},
            },
        ],
    }


@dataclass
class StackClient:
    """HTTP to one local stack, from many threads: a keep-alive session per thread, and every
    failed request (an exception or an unexpected status) counted in `errors`, never raised, so
    one failure costs one sample and not the whole run."""

    base_url: str
    auth: tuple[str, str]
    errors: int = 0
    #: The first few failures, as "METHOD route: status or exception", for the report's note.
    error_samples: list[str] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def timed_create(self, body: dict[str, Any]) -> tuple[str, float] | None:
        """(dispatch_uuid, round trip in ms), or None when the create failed."""
        began = time.perf_counter()
        answer = self._call("POST", "/v0.1/dispatch", (202,), json=body)
        elapsed_ms = (time.perf_counter() - began) * 1000
        return (str(answer.json()["dispatch_uuid"]), elapsed_ms) if answer is not None else None

    def dispatch(self, dispatch_uuid: str) -> dict[str, Any] | None:
        answer = self._call("GET", f"/v0.1/dispatch/{dispatch_uuid}", (200,))
        return answer.json() if answer is not None else None

    def inject(self, message_uuid: str, status: str) -> bool:
        """Report a channel status for one message through the sandbox route."""
        path = f"/sandbox/messages/{message_uuid}/status"
        return self._call("POST", path, (202,), json={"status": status}) is not None

    def callbacks(self, dispatch_uuid: str) -> list[dict[str, Any]] | None:
        """What the stack's callback sink received for the dispatch, oldest first."""
        answer = self._call("GET", "/sandbox/callbacks", (200,), params={"dispatch_uuid": dispatch_uuid})
        return answer.json() if answer is not None else None

    def dispatch_callbacks(self, dispatch_uuid: str) -> list[dict[str, Any]] | None:
        """The service's own record of the dispatch's callbacks and their delivery states."""
        answer = self._call("GET", f"/v0.1/dispatch/{dispatch_uuid}/callbacks", (200,))
        return answer.json()["callbacks"] if answer is not None else None

    def _call(
        self, method: str, path: str, expected: Iterable[int], **kwargs: Any
    ) -> requests.Response | None:
        try:
            answer = self._session().request(
                method, self.base_url + path, auth=self.auth, timeout=REQUEST_TIMEOUT_SECONDS, **kwargs
            )
        except requests.RequestException as exc:
            self._failed(method, path, type(exc).__name__)
            return None
        if answer.status_code not in expected:
            self._failed(method, path, str(answer.status_code))
            return None
        return answer

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _failed(self, method: str, path: str, what: str) -> None:
        route = "/".join(part if len(part) < 30 else "{id}" for part in path.split("/"))
        with self._lock:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(f"{method} {route}: {what}")


def parse_time(value: str) -> datetime:
    """The service's timestamps: ISO 8601 UTC with a "Z"."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))

