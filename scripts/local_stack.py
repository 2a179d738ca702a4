"""The local stack behind `make run`: the real app, with AWS emulated on loopback.

Starts moto's server (DynamoDB, Secrets Manager and SQS) on a free loopback port, points every
boto3 client at it, creates the table, the callback queue with its dead-letter queue, and a demo
application, and serves the Chalice app in this process at http://127.0.0.1:$PORT, behind the
local front (`scripts/local_front.py`: bounded requests, problem+json refusals, a drain on
SIGTERM), with:
- the local timer firing failover checks through the same handler the `failover_check` Lambda runs;
- the safety sweeper running once a minute, as the `sweep_overdue` schedule does on AWS;
- callbacks queued on SQS as on AWS, and a poller doing what Lambda's event source mapping does:
  it hands each batch to the real `deliver_callbacks` handler, which posts them (the demo
  application's status URL is this stack's own sandbox sink, `GET /sandbox/callbacks`);
- large webhook batches queued on SQS as on AWS, and a poller handing each chunk to the real
  `apply_webhooks` handler.
Nothing leaves the machine: every channel goes to the sandbox provider. State lives in memory
and is gone when the stack stops.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Where the demo credentials go; tests point it elsewhere to leave a developer's own alone.
STATE_DIR = Path(os.environ.get("DISPATCH_LOCAL_DIR", ROOT / ".local"))
HOST = "127.0.0.1"
MESSENGER_TEXT = "This is a Facebook Messenger Message sent from the Dispatch API"
#: Settings a developer may set in the shell to override the local stage's, e.g. to send
#: WhatsApp through the real provider: DISPATCH_CHANNEL_PROVIDERS='{"whatsapp": "whatsapp"}'
#: (with DISPATCH_WHATSAPP_* credentials, which the stage never sets).
SHELL_OVERRIDES = ("DISPATCH_CHANNEL_PROVIDERS",)
#: How often the sweeper runs: the `sweep_overdue` schedule's rate on AWS.
SWEEP_INTERVAL_SECONDS = 60.0
#: How long the callback poller waits after finding the queue empty: a callback reaches its
#: receiver within about this long of being queued (Lambda's long poll answers at once).
CALLBACK_POLL_IDLE_SECONDS = 0.2
#: The stack's queues take their settings from here, so local redelivery and dead-lettering
#: behave as they do on AWS.
MERGE_TEMPLATE = ROOT / "infra" / "dispatch.json"


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    # The emulator's per-request lines would drown the service's own logs.
    for noisy in ("werkzeug", "botocore", "urllib3", "responses", "waitress.queue"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    moto = _start_moto()
    from chalice.cli.factory import CLIFactory

    chosen = {name: os.environ[name] for name in SHELL_OVERRIDES if os.environ.get(name)}
    factory = CLIFactory(str(ROOT), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name="local")
    app = config.chalice_app  # imports app.py and applies the stage's environment variables
    os.environ.update(chosen)  # what the developer set in the shell wins over the stage's default
    queue_url = _create_callback_queues()
    webhook_queue_url = _create_webhook_queues()
    demo = _prepare(port, moto.endpoint_url, queue_url)
    stop_sweeper = _start_sweeper(SWEEP_INTERVAL_SECONDS)
    stop_callbacks = _start_callback_poller(app, config, queue_url)
    stop_webhooks = _start_queue_poller(app, config, webhook_queue_url, "apply_webhooks", batch_size=1)
    front = _local_front(app, config, port)
    front.start()
    _print_banner(port, demo)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        front.wait()
    except KeyboardInterrupt:
        pass
    finally:
        from chalicelib import bootstrap

        # First, while every service is still up: what the front answered 202 is finished.
        front.shutdown()

        stop_webhooks()
        stop_callbacks()
        stop_sweeper()
        bootstrap.local_timer().stop()
        moto.stop()
    return 0


def _start_sweeper(interval: float) -> Callable[[], None]:
    """Sweep every `interval` seconds on a daemon thread; returns the function that stops it.

    `chalice local` never fires schedules, so without this a check the local timer gave up on
    (its retries ran out) would strand its dispatch here while AWS would recover it. It runs the
    same `sweep()` as the Lambda, which logs only when it found something.
    """
    from chalicelib.bootstrap import get_services

    stopping = threading.Event()

    def loop() -> None:
        while not stopping.wait(interval):
            try:
                get_services().sweeper.sweep()
            except Exception:  # the next minute's sweep may well succeed: keep the loop alive
                logging.getLogger(__name__).exception("sweep failed")

    thread = threading.Thread(target=loop, name="sweeper", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=5)  # let a sweep in progress finish before the emulator goes

    return stop


def _create_callback_queues() -> str:
    """Create the callback queue and its dead-letter queue as the stack declares them; point the
    app at the queue (before any service is built, so the queue adapter is the SQS one)."""
    from app import CALLBACK_QUEUE

    queue_url = _create_queues(CALLBACK_QUEUE, "CallbackQueue", "CallbackDeadLetters")
    os.environ.update(DISPATCH_CALLBACK_DELIVERY="sqs", DISPATCH_CALLBACK_QUEUE_URL=queue_url)
    return queue_url


def _create_webhook_queues() -> str:
    """The same for the webhook queue, which large webhook batches go to."""
    from app import WEBHOOK_QUEUE

    queue_url = _create_queues(WEBHOOK_QUEUE, "WebhookQueue", "WebhookDeadLetters")
    os.environ.update(DISPATCH_WEBHOOK_QUEUE_URL=queue_url)
    return queue_url


def _create_queues(name: str, queue_resource: str, dead_letters_resource: str) -> str:
    """Create a queue and its dead-letter queue with the settings the merge template gives them."""
    import boto3

    resources = json.loads(MERGE_TEMPLATE.read_text())["Resources"]
    queue = resources[queue_resource]["Properties"]
    dead_letters = resources[dead_letters_resource]["Properties"]
    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq",
        Attributes={"MessageRetentionPeriod": str(dead_letters["MessageRetentionPeriod"])},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": queue["RedrivePolicy"]["maxReceiveCount"],
    }
    return sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(queue["VisibilityTimeout"]),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]


def _start_callback_poller(app: Any, config: Any, queue_url: str) -> Callable[[], None]:
    """Deliver queued callbacks as the `deliver_callbacks` Lambda does on AWS; returns the stop."""
    return _start_queue_poller(app, config, queue_url, "deliver_callbacks")


def _start_queue_poller(
    app: Any, config: Any, queue_url: str, function: str, batch_size: int = 10
) -> Callable[[], None]:
    """Hand the queue's messages to the SQS-triggered `function` as its event source mapping
    does on AWS (`batch_size` is its `@app.on_sqs_message`'s); returns the stop.

    The handler is the app's own (`handler_map`), called with the event Lambda would build, so
    Chalice's `SQSEvent` wrapping and what the function runs behave exactly as deployed.
    """
    import boto3
    from chalice.local import LambdaContext
    from sqs_event_source import start_poller  # a sibling: this script's folder is on sys.path

    handler = app.handler_map[function]
    scoped = config.scope(config.chalice_stage, function)

    def invoke(event: dict) -> Any:
        context = LambdaContext(
            function, scoped.lambda_memory_size, max_runtime_ms=scoped.lambda_timeout * 1000
        )
        return handler(event, context)

    return start_poller(
        boto3.client("sqs"),
        queue_url,
        invoke,
        idle_seconds=CALLBACK_POLL_IDLE_SECONDS,
        batch_size=batch_size,
        name=function,
    )


def _local_front(app: Any, config: Any, port: int) -> Any:
    """The app behind the local front (scripts/local_front.py), bound to `port`."""
    from chalice import local
    from local_front import FrontLimits, LocalFront, gateway_app  # a sibling, like sqs_event_source

    # Puts the app in chalice's local mode (a per-thread current_request), as `chalice local`
    # does; the throwaway server it binds on a free port is closed at once.
    local.create_local_server(app, config, HOST, 0).server.server_close()
    seconds = os.environ.get("DISPATCH_LOCAL_REQUEST_SECONDS")
    limits = FrontLimits(request_seconds=float(seconds)) if seconds else FrontLimits()
    return LocalFront(gateway_app(app, config), HOST, port, limits)


def _start_moto() -> Any:
    """Emulate AWS with moto: in-process for this app, and on a loopback port for other tools.

    The app's own boto3 clients go to moto in-process (about 10x faster than over HTTP); the
    loopback endpoint, written to demo-app.json, lets the operator command reach the same state.
    moto is not thread-safe (TransactWriteItems deep-copies a table while other requests write
    to it), so both paths share one lock. Real DynamoDB has no such limit: the emulator is
    serialised, never the service.
    """
    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    lock = threading.RLock()
    in_process = BotocoreStubber.__call__

    def locked_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return in_process(self, *args, **kwargs)

    BotocoreStubber.__call__ = locked_call  # type: ignore[method-assign]
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "eu-west-1"),
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        }
    )
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    mock = mock_aws()
    mock.start()
    import moto_shims  # a sibling, like sqs_event_source

    moto_shims.install_item_backups()
    moto_shims.install_partition_queries()
    moto_shims.install_direct_retention()
    moto_shims.install_plain_attribute_values()
    moto_shims.install_queue_counts()

    app = DomainDispatcherApplication(create_backend_app)

    def serialised(environ: dict, start_response: Any) -> Any:
        with lock:
            return list(app(environ, start_response))

    class Handler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # one line per emulated AWS call would drown the service's own logs

    server = make_server(HOST, _free_port(), serialised, threaded=True, request_handler=Handler)
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    return _Emulator(mock, server)


class _Emulator:
    def __init__(self, mock: Any, server: Any) -> None:
        self.mock, self.server = mock, server
        self.endpoint_url = f"http://{HOST}:{server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.mock.stop()


def _prepare(port: int, aws_endpoint_url: str, callback_queue_url: str) -> dict:
    """Create the table and the demo application; write its credentials under .local/."""
    import boto3

    from chalicelib.adapters.dynamodb_table import create_table
    from chalicelib.bootstrap import get_services
    from chalicelib.service.applications import create_application

    services = get_services()
    create_table(boto3.client("dynamodb"), services.settings.table_name)
    status_url = f"http://{HOST}:{port}/sandbox/callbacks"
    creds = create_application(
        services.applications,
        services.secrets,
        "demo",
        status_url,
        None,
        services.clock.now(),
        services.settings.secret_prefix,
    )
    STATE_DIR.mkdir(exist_ok=True)
    key_path = STATE_DIR / "demo-app.key"
    _write_private(key_path, creds.private_key_pem)
    demo = {
        "application_id": creds.application_id,
        "api_key": creds.api_key,
        "api_secret": creds.api_secret,
        "private_key_path": str(key_path),
        "signature_secret": creds.signature_secret,
        "status_url": status_url,
        "base_url": f"http://{HOST}:{port}",
        "aws_endpoint_url": aws_endpoint_url,
        "aws_region": os.environ["AWS_DEFAULT_REGION"],
        "table": services.settings.table_name,
        "callback_queue_url": callback_queue_url,
    }
    _write_private(STATE_DIR / "demo-app.json", json.dumps(demo, indent=2) + "\n")
    return demo


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, from the first byte (no chmod afterwards)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def _print_banner(port: int, demo: dict) -> None:
    seed = {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "messenger", "id": "1111111111111111"},
                "to": {"type": "messenger", "id": "0000000000000000"},
                "message": {"content": {"type": "text", "text": MESSENGER_TEXT}},
                "failover": {"expiry_time": 600, "condition_status": "read"},
            },
            {
                "from": {"type": "sms", "number": "447700900001"},
                "to": {"type": "sms", "number": "447700900000"},
                "message": {"content": {"type": "text", "text": "This is an SMS sent from the Dispatch API"}},
            },
        ],
    }
    print(f"dispatch local stack on {demo['base_url']}  (demo credentials: {STATE_DIR / 'demo-app.json'})")
    print("Send the seed's Messenger -> SMS dispatch:\n")
    print(f"curl -sS -X POST {demo['base_url']}/v0.1/dispatch \\")
    print(f"  -u '{demo['api_key']}:{demo['api_secret']}' \\")
    print("  -H 'Content-Type: application/json' \\")
    print(f"  -d '{json.dumps(seed)}'\n")
    print("Its callbacks, as the demo application's status URL received them (through the SQS queue):")
    print(f"  curl -sS -u '{demo['api_key']}:{demo['api_secret']}' \\")
    print(f"  '{demo['status_url']}?dispatch_uuid=DISPATCH_UUID'\n")
    print("The operator command against this stack:")
    print(
        f"  AWS_ENDPOINT_URL={demo['aws_endpoint_url']} AWS_DEFAULT_REGION={demo['aws_region']} "
        f"AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local DISPATCH_TABLE={demo['table']} "
        "make admin ARGS=list\n",
        flush=True,
    )


def _interrupt(*_: object) -> None:
    # Unwinds the main thread out of front.wait() into the clean-up, which drains the front.
    # A second signal during the clean-up would only interrupt the clean-up.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
