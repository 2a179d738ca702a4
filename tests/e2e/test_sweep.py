"""The `sweep_overdue` schedule through the Lambda handler: a lost check is re-driven and counted."""
from __future__ import annotations

import json

from tests.e2e.test_api import MESSENGER_TO_SMS, create, view, with_expiry


def scheduled_event(stack) -> dict:
    return stack.client.events.generate_cw_event(
        source="aws.events",
        detail_type="Scheduled Event",
        detail={},
        resources=["arn:aws:events:eu-west-1:123456789012:rule/dispatch-sweep_overdue"],
    )


def emitted_metrics(out: str) -> list[dict]:
    """The EMF documents among the captured stdout lines (log lines are JSON too)."""
    lines = (json.loads(line) for line in out.splitlines() if line.startswith("{"))
    return [doc for doc in lines if "_aws" in doc]


def test_the_schedule_redrives_a_lost_check_and_reports_it_as_a_metric(stack, capsys):
    dispatch_uuid = create(stack, with_expiry(MESSENGER_TO_SMS, 15))
    stack.timer.pending.clear()  # the timer lost the deadline's check
    grace = stack.services.settings.sweep_grace_seconds
    stack.clock.advance(15 + grace + 1)
    capsys.readouterr()

    result = stack.client.lambda_.invoke("sweep_overdue", scheduled_event(stack))

    assert result.payload == {
        "found": 1, "redriven": 1, "failed": 0, "lost": 1, "callbacks_recovered": 0, "unread": 0
    }
    first, second = view(stack, dispatch_uuid)["messages"]
    assert first["outcome"] == "expired" and second["phase"] == "waiting"
    [metrics] = emitted_metrics(capsys.readouterr().out)
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Dispatch"
    units = {m["Name"]: m["Unit"] for m in metrics["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {
        "OverdueStepsFound": "Count",
        "OverdueStepsRedriven": "Count",
        "OverdueChecksFailed": "Count",
        "TimerChecksLost": "Count",
        "CallbackDrainsRecovered": "Count",
        "IndexReadsFailed": "Count",
    }
    # Powertools writes each value as the list of the data points it aggregated.
    assert (metrics["OverdueStepsFound"], metrics["OverdueStepsRedriven"]) == ([1], [1])
    assert metrics["OverdueChecksFailed"] == [0]
    assert metrics["TimerChecksLost"] == [1]  # a deadline, which its timer owned
    assert metrics["IndexReadsFailed"] == [0]

    again = stack.client.lambda_.invoke("sweep_overdue", scheduled_event(stack))

    assert again.payload == {
        "found": 0, "redriven": 0, "failed": 0, "lost": 0, "callbacks_recovered": 0, "unread": 0
    }
    [quiet] = emitted_metrics(capsys.readouterr().out)
    assert quiet["OverdueStepsRedriven"] == [0]  # zeros too: a missing data point means no sweep


def test_the_schedule_recovers_a_callback_whose_queue_message_was_lost(stack, capsys):
    queue = stack.services.callback_queue
    working, queue.nudge = queue.nudge, lambda dispatch_uuid, at=None: None  # messages lost
    dispatch_uuid = create(stack, with_expiry(MESSENGER_TO_SMS, 15))
    queue.nudge = working
    assert stack.session.posts == []  # the submitted callback is saved, never sent
    stack.clock.advance(stack.services.settings.sweep_grace_seconds + 1)
    capsys.readouterr()

    result = stack.client.lambda_.invoke("sweep_overdue", scheduled_event(stack))

    assert result.payload["callbacks_recovered"] == 1
    [(_, body, headers)] = stack.session.posts
    assert json.loads(body)["status"] == "submitted"
    assert json.loads(body)["_links"]["workflow"]["dispatch_uuid"] == dispatch_uuid
    assert headers["X-Dispatch-Sequence"] == "1"
    [metrics] = emitted_metrics(capsys.readouterr().out)
    assert metrics["CallbackDrainsRecovered"] == [1]
