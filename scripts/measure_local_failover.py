"""Measure failover lateness on the local stack: from each first message's deadline to the send of
the next message, over many concurrent dispatches that never get a status.

Starts its own stack (`scripts/local_stack.py`) on a free port, so it never disturbs `make run`.
Prints a small table; this is a measurement, not a test.

    .venv/bin/python scripts/measure_local_failover.py --count 200
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_stack_process import running_local_stack

EXPIRY = 15


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="concurrent dispatches")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as state, running_local_stack(
        Path(state), DISPATCH_LOG_LEVEL="WARNING"
    ) as stack:
        base, auth = stack.base_url, stack.basic_auth
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=16) as pool:
            uuids = list(pool.map(lambda _: _create(base, auth), range(args.count)))
        created_in = time.monotonic() - started
        time.sleep(EXPIRY + created_in + 3)
        with ThreadPoolExecutor(max_workers=16) as pool:
            lateness = list(pool.map(lambda u: _lateness_ms(base, auth, u), uuids))
    _report(args.count, created_in, lateness)
    return 0


def _create(base: str, auth: tuple[str, str]) -> str:
    body = {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "viber_service_msg", "id": "12345"},
                "to": {"type": "viber_service_msg", "number": "447700900000"},
                "message": {"content": {"type": "text", "text": "first"}},
                "failover": {"expiry_time": EXPIRY, "condition_status": "delivered"},
            },
            {
                "from": {"type": "sms", "number": "447700900001"},
                "to": {"type": "sms", "number": "447700900000"},
                "message": {"content": {"type": "text", "text": "second"}},
            },
        ],
    }
    response = requests.post(f"{base}/v0.1/dispatch", json=body, auth=auth, timeout=10)
    response.raise_for_status()
    return str(response.json()["dispatch_uuid"])


def _lateness_ms(base: str, auth: tuple[str, str], dispatch_uuid: str) -> float:
    messages = requests.get(f"{base}/v0.1/dispatch/{dispatch_uuid}", auth=auth, timeout=10).json()["messages"]
    if messages[1]["sent_at"] is None:
        return float("inf")  # never failed over: counted as a miss
    return (_ts(messages[1]["sent_at"]) - _ts(messages[0]["deadline"])).total_seconds() * 1000


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _report(count: int, created_in: float, lateness: list[float]) -> None:
    done = sorted(v for v in lateness if v != float("inf"))
    p99 = done[min(len(done) - 1, int(len(done) * 0.99))] if done else float("nan")
    print(f"dispatches            {count}  (created in {created_in:.1f} s)")
    print(f"failed over           {len(done)}  missed {count - len(done)}")
    print(f"lateness p50 / p99 / max (ms)  {statistics.median(done):.1f} / {p99:.1f} / {done[-1]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
