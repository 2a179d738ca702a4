"""The scheduled sweep: what the `sweep_overdue` Lambda runs once a minute.

It only runs the sweeper that bootstrap built and reports the counts as CloudWatch metrics, in
Embedded Metric Format (a JSON line on stdout that CloudWatch Logs turns into metrics: no
PutMetricData call, no extra permission). `TimerChecksLost` above zero means a timer lost a
check it owned, and `OverdueChecksFailed` above zero means a dispatch could not be moved on: both
are worth an alarm. `OverdueStepsFound` also counts backstops (send guards, report limits) that
the AWS timers leave to the sweep by design. `CallbackDrainsRecovered` counts dispatches whose
callbacks had to be nudged again (a queue message lost, a drain that died). `IndexReadsFailed`
counts the sweep's index reads that failed (the rest of the sweep still ran, and the next run
reads those minutes again): above zero for long is worth an alarm. Every run emits every
metric, zeros included, so an alarm can tell "nothing went wrong" from "the sweep did not run".
"""
from __future__ import annotations

from typing import Any

NAMESPACE = "Dispatch"


def run_sweep(event: Any) -> dict[str, int]:
    """One sweep with the configured look-back; the schedule's event carries nothing we need."""
    from chalicelib.bootstrap import get_services

    result = get_services().sweeper.sweep()
    counts = {
        "found": result.found,
        "redriven": result.redriven,
        "failed": result.failed,
        "lost": result.lost,
        "callbacks_recovered": result.callbacks_recovered,
        "unread": result.unread,
    }
    _emit_metrics(counts)
    return counts


def _emit_metrics(counts: dict[str, int]) -> None:
    # Imported here: app.py imports this module, and the API's cold start need not pay for it.
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    # Built per call, not at import: Powertools' `Metrics` keeps one metric set per process,
    # which a warm Lambda would carry over between invocations if a flush were ever missed.
    metrics = EphemeralMetrics(namespace=NAMESPACE, service="dispatch")
    metrics.add_metric(name="OverdueStepsFound", unit=MetricUnit.Count, value=counts["found"])
    metrics.add_metric(name="OverdueStepsRedriven", unit=MetricUnit.Count, value=counts["redriven"])
    metrics.add_metric(name="OverdueChecksFailed", unit=MetricUnit.Count, value=counts["failed"])
    metrics.add_metric(name="TimerChecksLost", unit=MetricUnit.Count, value=counts["lost"])
    metrics.add_metric(
        name="CallbackDrainsRecovered", unit=MetricUnit.Count, value=counts["callbacks_recovered"]
    )
    metrics.add_metric(name="IndexReadsFailed", unit=MetricUnit.Count, value=counts["unread"])
    metrics.flush_metrics()
