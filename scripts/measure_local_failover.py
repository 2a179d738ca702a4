"""Measure failover lateness on the local stack, at any size: `benchmarks/lateness.py` from the shell.

`make bench` runs the same measurement at its fixed sizes (`--only lateness`); this runs it once
with the number of concurrent dispatches given, and prints the same figures.

    .venv/bin/python scripts/measure_local_failover.py --count 200
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import lateness
from benchmarks.report import table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=lateness.COUNT, help="concurrent dispatches")
    args = parser.parse_args(argv)
    with lateness.local_stack() as client:
        result = lateness.measure(client, args.count)
    print(table(lateness.figures(result, client.errors)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
