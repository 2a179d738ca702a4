"""How late does the local timer fire? Schedules checks all due at one instant and reports lateness.

    .venv/bin/python scripts/bench_local_timer.py [--count 200] [--ahead 1.0]

Lateness is the firing time minus the due time, in milliseconds; checks that share an instant
fire one after another, so the tail measures the per-check cost of the loop as well.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

# Run as a plain script from anywhere: make the project importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.adapters.local_timer import LocalTimer


def measure(count: int, ahead: float) -> list[float]:
    due = datetime.now(timezone.utc) + timedelta(seconds=ahead)
    lateness_ms: list[float] = []
    done = threading.Event()

    def fire(event: dict) -> None:
        lateness_ms.append((datetime.now(timezone.utc) - due).total_seconds() * 1000)
        if len(lateness_ms) == count:
            done.set()

    timer = LocalTimer(fire)
    timer.start()
    for i in range(count):
        timer.schedule(f"bench-{i}", 0, due)
    if not done.wait(ahead + 30):
        raise SystemExit(f"only {len(lateness_ms)} of {count} checks fired")
    timer.stop()
    return lateness_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--ahead", type=float, default=1.0, help="seconds until the due time")
    args = parser.parse_args()

    samples = sorted(measure(args.count, args.ahead))
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    print(
        f"{len(samples)} checks due at one instant: lateness p50 {p50:.2f} ms, "
        f"p99 {p99:.2f} ms, max {samples[-1]:.2f} ms, min {samples[0]:.2f} ms"
    )


if __name__ == "__main__":
    main()
