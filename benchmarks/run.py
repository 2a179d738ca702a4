"""Run every benchmark and print one table: `make bench` (or `python -m benchmarks.run`).

    python -m benchmarks.run                 # everything, at the sizes the issue sets
    python -m benchmarks.run --quick         # smaller sizes, for a smoke run
    python -m benchmarks.run --only calls,cost
    python -m benchmarks.run --json out.jsonl --markdown out.md

Every section is a module of this package with `run(quick: bool) -> list[Figure]`. Timings are
medians over repeated runs, compared as ratios against a baseline measured in the same run, since
the machine may be shared and noisy. The exit code is 0 when every section ran, whether or not
its targets were met: a missed target is a figure to report, not a crash.
"""
from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/run.py` too
    sys.path.insert(0, str(ROOT))

from benchmarks.report import Figure, json_lines, markdown, table  # noqa: E402

#: In the order they print; the in-process ones first, the local stack ones last.
SECTIONS = ("calls", "overhead", "cold_start", "cost", "auth_timing", "lateness", "load")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", default="", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON lines here")
    parser.add_argument("--markdown", type=Path, help="also write the figures as a Markdown table here")
    args = parser.parse_args(argv)
    chosen = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections: {', '.join(unknown)}")

    print(machine())
    figures: list[Figure] = []
    failed: list[str] = []
    for section in chosen:
        started = time.monotonic()
        print(f"# {section} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{section}")
            figures.extend(module.run(quick=args.quick))
        except Exception:
            traceback.print_exc()
            failed.append(section)
        print(f"# {section} took {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    print(table(figures))
    if args.json:
        args.json.write_text(json_lines(figures) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(figures) + "\n")
    if failed:
        print(f"sections that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def machine() -> str:
    """One line naming what the figures were measured on."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"# machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


if __name__ == "__main__":
    sys.exit(main())
