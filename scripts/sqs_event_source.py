"""What Lambda's SQS event source mapping does for `deliver_callbacks` and `apply_webhooks`,
outside Lambda.

`chalice local` never fires `on_sqs_message` handlers, so the local stack runs this poller, and
the AWS-backend tests use `poll_once` to hand the handler the event Lambda would build. A batch is
received, the handler is invoked with a Lambda-shaped SQS event (so Chalice's own `SQSEvent`
wrapping runs), and the batch is deleted once the handler returns. If it raises, the messages
stay and come back after the queue's visibility timeout, as they would on AWS.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: The event source mapping's batch size (`batch_size` of `@app.on_sqs_message`), unless given.
BATCH_SIZE = 10

Handler = Callable[[dict[str, Any]], Any]


def queue_arn(client: Any, queue_url: str) -> str:
    """The queue's ARN, as the event source mapping reads it (GetQueueAttributes)."""
    attributes = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def lambda_event(messages: list[dict[str, Any]], arn: str, region: str) -> dict[str, Any]:
    """The event Lambda invokes an SQS-triggered function with, for ReceiveMessage's messages."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {
                    name: _lambda_attribute(value)
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    # ReceiveMessage spells these in PascalCase; Lambda's event in camelCase, with empty lists.
    converted = {
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = value["BinaryValue"]
    return converted


def poll_once(
    client: Any,
    queue_url: str,
    arn: str,
    handler: Handler,
    *,
    wait_seconds: int = 0,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Receive up to one batch and run `handler` on it; returns how many messages it received.

    The messages are deleted one by one after the handler returns; when it raises they are left
    for redelivery and the error is logged (the handler never raises by design, so this is a bug).
    """
    received = client.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=batch_size,
        WaitTimeSeconds=wait_seconds,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    if not received:
        return 0
    try:
        handler(lambda_event(received, arn, client.meta.region_name))
    except Exception:
        logger.exception("queue batch failed: left for redelivery", extra={"messages": len(received)})
        return len(received)
    for message in received:
        client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return len(received)


def start_poller(
    client: Any,
    queue_url: str,
    handler: Handler,
    *,
    idle_seconds: float,
    batch_size: int = BATCH_SIZE,
    name: str = "callback-queue",
) -> Callable[[], None]:
    """Poll the queue on a daemon thread until the returned function is called (it waits for a
    batch in progress to finish).

    Lambda long-polls; here each receive is a short poll and the thread itself waits
    `idle_seconds` after an empty one. The local stack serialises every emulated AWS call behind
    one lock (moto is not thread-safe), and moto's long poll waits inside the call: a 1 s long
    poll would hold every API request, timer and sweep for up to a second.
    """
    arn = queue_arn(client, queue_url)
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.is_set():
            try:
                received = poll_once(client, queue_url, arn, handler, batch_size=batch_size)
            except Exception:  # the emulator hiccuped; the messages are still on the queue
                logger.exception("queue poll failed", extra={"queue": name})
                received = 0
            if not received:
                stopping.wait(idle_seconds)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=10)  # a drain in progress finishes before the emulator goes

    return stop
