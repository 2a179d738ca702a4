"""One shape for every figure `make bench` prints, so runs can be compared line by line.

A figure is one measured value with its unit, the target it answers (if any) and whether it met
it. The table's columns and the figures' names are stable: tools may diff two runs' output.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Figure:
    section: str  #: lateness, calls, overhead, cold_start, cost, load, auth_timing
    name: str  #: stable within its section, e.g. "p99" or "create.total"
    value: float
    unit: str  #: ms, calls, ratio, MB, USD, per_s, count...
    #: The target as written in the issue, e.g. "<= 250"; None for a figure that only informs.
    target: str | None = None
    met: bool | None = None
    note: str = ""

    def formatted_value(self) -> str:
        if self.value == int(self.value) and abs(self.value) < 1e15:
            return f"{int(self.value)}"
        if abs(self.value) >= 100:
            return f"{self.value:.1f}"
        return f"{self.value:.4g}" if abs(self.value) < 0.01 else f"{self.value:.3f}"


def at_most(section: str, name: str, value: float, unit: str, limit: float, note: str = "") -> Figure:
    """A figure whose target is an upper bound."""
    return Figure(section, name, value, unit, f"<= {limit:g}", value <= limit, note)


def _met(figure: Figure) -> str:
    return "-" if figure.met is None else ("yes" if figure.met else "NO")


def table(figures: Iterable[Figure]) -> str:
    """A fixed-width table: section, figure, value, unit, target, met, note."""
    header = ("section", "figure", "value", "unit", "target", "met", "note")
    rows = [
        (f.section, f.name, f.formatted_value(), f.unit, f.target or "-", _met(f), f.note)
        for f in figures
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def markdown(figures: Iterable[Figure]) -> str:
    """The same rows as a Markdown table, for docs/benchmarks.md."""
    lines = ["| section | figure | value | unit | target | met | note |", "|---|---|---|---|---|---|---|"]
    for f in figures:
        lines.append(
            f"| {f.section} | {f.name} | {f.formatted_value()} | {f.unit} | {f.target or '-'} "
            f"| {_met(f)} | {f.note} |"
        )
    return "\n".join(lines)


def json_lines(figures: Iterable[Figure]) -> str:
    return "\n".join(json.dumps(asdict(f), sort_keys=True) for f in figures)
