"""`python -m tests.campaign [--backend memory|moto] --count 10000 [--seed N] [--faults X] [--only I]`: run the fault campaign, print
its counts, and exit 1 with a reproducer for every broken dispatch."""

from __future__ import annotations

import argparse
import random
import sys

from tests.campaign.campaign import BACKENDS, run_campaign
from tests.campaign.summary import render, render_failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.campaign", description=__doc__)
    parser.add_argument("--count", type=int, default=10_000, help="dispatches in the world")
    parser.add_argument("--seed", type=int, default=None, help="campaign seed (default: random, printed)")
    parser.add_argument(
        "--faults",
        type=float,
        default=1.0,
        help="multiply every fault probability by this, process deaths included (default 1)",
    )
    parser.add_argument("--only", type=int, default=None, help="run only this dispatch index of the campaign")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="memory",
        help="memory: the in-memory repository, faults at the ports (default); moto: the real "
        "DynamoDB, Step Functions, Scheduler and SQS adapters under moto, faults on the wire too",
    )
    args = parser.parse_args(argv)
    if args.count < 1 or (args.only is not None and not 0 <= args.only < args.count):
        parser.error("--count must be positive and --only an index below it")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seed {seed}", flush=True)
    result = run_campaign(args.count, seed, args.only, fault_scale=args.faults, backend=args.backend)
    print(render(result))
    if not result.ok:
        print(render_failures(result))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
