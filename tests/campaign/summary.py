"""What a campaign prints: its counts, and for each broken dispatch a reproducer."""

from __future__ import annotations

from collections import Counter

from tests.campaign.campaign import CampaignResult

#: How many broken dispatches to print in full; the rest are listed by index.
SHOWN = 5
TRACE_LINES = 60

_SECTIONS = [
    ("dispatches", ("dispatches created", "final reports:", "completed after")),
    ("sends", ("send attempts", "messages", "failovers:", "last message failed:")),
    ("channels (what each accepted message would report)", ("channel fate:",)),
    ("webhooks", ("webhooks", "statuses recorded as late")),
    ("timers and the sweeper", ("sweeps", "sweeper:", "backstops", "cancels")),
    ("callbacks", ("callback", "callbacks")),
    ("races and process deaths", ("races:", "processes died in:", "inputs raised unexpectedly:")),
    ("AWS faults and the inputs they ended (moto)", ("inputs failed on an AWS error:", "aws calls faulted:", "creates")),
]


def command(result: CampaignResult) -> str:
    faults = f" --faults {result.fault_scale:g}" if result.fault_scale != 1 else ""
    backend = f" --backend {result.backend}" if result.backend != "memory" else ""
    return f"python -m tests.campaign{backend} --count {result.count} --seed {result.seed}{faults}"


def reproducer(result: CampaignResult, index: int) -> str:
    return f"{command(result)} --only {index}"


def render(result: CampaignResult) -> str:
    scope = (
        f"dispatch {result.only} of {result.count}"
        if result.only is not None
        else f"{result.count} dispatches"
    )
    faults = f", faults x{result.fault_scale:g}" if result.fault_scale != 1 else ""
    backend = (
        ", the AWS adapters under moto, faults on the wire"
        if result.backend == "moto"
        else ", the in-memory repository"
    )
    lines = [f"fault campaign: seed {result.seed}, {scope}{faults}{backend}"]
    shown: set[str] = set()
    for title, prefixes in _SECTIONS:
        keys = [k for k in sorted(result.counts) if k.startswith(prefixes) and k not in shown]
        if keys:
            lines.append(f"  {title}:")
            lines += [f"    {key:<64} {result.counts[key]:>9}" for key in keys]
            shown.update(keys)
    rest = [k for k in sorted(result.counts) if k not in shown]
    lines += [f"    {key:<64} {result.counts[key]:>9}" for key in rest]
    if result.backend == "moto":
        lines.append(f"  AWS API attempts ({sum(result.aws_calls.values())}):")
        lines += [f"    {key:<64} {n:>9}" for key, n in sorted(result.aws_calls.items())]
        retries = ", ".join(f"{name} {cfg}" for name, cfg in sorted(result.retries.items()))
        lines.append(f"    botocore retries: {retries}")
        lines.append(f"    back-off botocore would have slept (not slept): {result.backoff_seconds:.1f} s")
    lines.append(f"  faults injected ({sum(result.faults.values())}):")
    lines += [f"    {key:<64} {n:>9}" for key, n in sorted(result.faults.items())]
    by_invariant = Counter(v.invariant for v in result.violations)
    lines.append(f"  invariant violations: {len(result.violations)}")
    lines += [f"    {key:<64} {n:>9}" for key, n in sorted(by_invariant.items())]
    lines.append(
        f"  simulated {result.simulated_seconds / 3600:.1f} h in {result.wall_seconds:.1f} s wall "
        f"({result.count / max(result.wall_seconds, 1e-9):.0f} dispatches/s)"
    )
    lines.append(f"  seed {result.seed}")
    return "\n".join(lines)


def render_failures(result: CampaignResult) -> str:
    if result.ok:
        return ""
    lines = [f"FAILED: {len(result.failed)} dispatches broke an invariant (seed {result.seed})"]
    for index in sorted(result.failed)[:SHOWN]:
        rec = result.failed[index]
        lines.append(f"--- dispatch {index} (dispatch seed {rec.seed}, uuid {rec.uuid})")
        lines += [f"  VIOLATION {v.invariant}: {v.detail}" for v in result.violations if v.index == index]
        lines.append("  fault plan and inputs:")
        lines += [f"    {line}" for line in rec.trace[:TRACE_LINES]]
        if len(rec.trace) > TRACE_LINES:
            lines.append(f"    ... {len(rec.trace) - TRACE_LINES} more")
        lines.append(f"  reproduce: {reproducer(result, index)}")
    more = sorted(result.failed)[SHOWN:]
    if more:
        lines.append(f"also broken: dispatches {more[:50]}{' ...' if len(more) > 50 else ''}")
    lines.append(
        "a dispatch runs alone exactly as among the others unless a crash cut short a sweep that "
        "was also serving it; if --only does not reproduce, run: "
        f"{command(result)}"
    )
    return "\n".join(lines)
