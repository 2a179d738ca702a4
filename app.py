"""The Chalice application: wiring only. Routes live in blueprints under chalicelib/api."""
from __future__ import annotations

from typing import Any

from chalice import Chalice, Rate
from chalice.app import SQSEvent  # not re-exported by the `chalice` package

from chalicelib.api import callback_routes, checks, dispatch_routes, edges, sandbox_routes, webhook_routes
from chalicelib.api.deliveries import run_deliveries
from chalicelib.api.sweep import run_sweep
from chalicelib.api.webhook_batches import run_webhook_chunks
from chalicelib.logs import configure_logging

configure_logging()

app = Chalice(app_name="dispatch")
app.register_blueprint(dispatch_routes.bp)
app.register_blueprint(callback_routes.bp)
app.register_blueprint(sandbox_routes.bp)
app.register_blueprint(webhook_routes.bp)
# Last: the 405 views are generated from the routes above, and its middleware nets them all.
edges.install(app)


@app.lambda_function(name="failover_check")
def run_check(event: Any, context: Any) -> dict[str, Any]:
    """Invoked by the timer backend when a dispatch's check is due. The deployed name stays
    `failover_check`: timers already scheduled invoke it by that name."""
    return checks.run_check(event)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="sweep_overdue")
def sweep_overdue(event: Any) -> dict[str, Any]:
    """Re-drives checks a timer lost; infra/dispatch.json names this function `SweepOverdue`."""
    return run_sweep(event)


#: The queue's name at deploy time; infra/dispatch.json points the event source at the stack's
#: own queue (`CallbackQueue`), so this literal only names it for `chalice local` and tests.
CALLBACK_QUEUE = "dispatch-callbacks"


@app.on_sqs_message(queue=CALLBACK_QUEUE, batch_size=10, name="deliver_callbacks")
def deliver_callbacks(event: SQSEvent) -> dict[str, Any]:
    """Delivers the callbacks of the dispatches the queue's messages name."""
    context = getattr(event, "context", None)
    return run_deliveries(
        (record.body for record in event),
        getattr(context, "get_remaining_time_in_millis", None),
    )


#: As CALLBACK_QUEUE: infra/dispatch.json points the event source at `WebhookQueue`.
WEBHOOK_QUEUE = "dispatch-webhooks"


@app.on_sqs_message(queue=WEBHOOK_QUEUE, batch_size=1, name="apply_webhooks")
def apply_webhooks(event: SQSEvent) -> dict[str, Any]:
    """Applies one chunk of a large webhook batch; a failure raises so SQS redelivers it.

    One message per invocation: a failed invocation redelivers its whole batch, and a chunk
    applied already must not come round again with it."""
    return run_webhook_chunks(record.body for record in event)
