"""`make run`'s stack as a user meets it: a real process, real HTTP, the real local timer, and
callbacks through the real SQS queue (moto's) and the real `deliver_callbacks` handler.

This is the issue's acceptance scenario, so it waits for a real 15 s deadline and a real retry
backoff (about 30 s in all); everything else in the suite controls time instead.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path

import boto3
import jwt
import pytest
import requests

from scripts.local_stack_process import running_local_stack


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    with running_local_stack(tmp_path_factory.mktemp("local")) as stack:
        yield stack.base_url, stack.demo
    assert stack.exit_code == 0  # SIGTERM stops it cleanly


def _seed(expiry: int) -> dict:
    return {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "messenger", "id": "1111111111111111"},
                "to": {"type": "messenger", "id": "0000000000000000"},
                "message": {"content": {"type": "text", "text": "Messenger first"}},
                "failover": {"expiry_time": expiry, "condition_status": "read"},
            },
            {
                "from": {"type": "sms", "number": "447700900001"},
                "to": {"type": "sms", "number": "447700900000"},
                "message": {"content": {"type": "text", "text": "then SMS"}},
            },
        ],
    }


def _bearer(demo: dict) -> dict:
    key = Path(demo["private_key_path"]).read_text()
    claims = {"application_id": demo["application_id"], "iat": int(time.time()), "jti": str(uuid.uuid4())}
    return {"Authorization": "Bearer " + jwt.encode(claims, key, algorithm="RS256")}


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _wait_for_callbacks(base: str, auth: tuple[str, str], dispatch_uuid: str, count: int, timeout: float) -> list:
    """What the sandbox sink received for the dispatch, once it holds `count` callbacks."""
    deadline = time.monotonic() + timeout
    while True:
        callbacks = requests.get(
            f"{base}/sandbox/callbacks", params={"dispatch_uuid": dispatch_uuid}, auth=auth, timeout=5
        ).json()
        if len(callbacks) >= count or time.monotonic() > deadline:
            return callbacks
        time.sleep(0.1)


def _queue_depths(demo: dict) -> dict[str, int]:
    """The callback queue's messages, read through the stack's emulator endpoint."""
    sqs = boto3.client(
        "sqs",
        endpoint_url=demo["aws_endpoint_url"],
        region_name=demo["aws_region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
    found = sqs.get_queue_attributes(QueueUrl=demo["callback_queue_url"], AttributeNames=names)
    return {name: int(value) for name, value in found["Attributes"].items()}


def test_failover_after_15_seconds_and_none_after_read(local_stack):
    base, demo = local_stack
    auth = (demo["api_key"], demo["api_secret"])
    unread = requests.post(f"{base}/v0.1/dispatch", json=_seed(15), auth=auth, timeout=5)
    read = requests.post(f"{base}/v0.1/dispatch", json=_seed(15), headers=_bearer(demo), timeout=5)
    assert unread.status_code == read.status_code == 202
    unread_uuid, read_uuid = unread.json()["dispatch_uuid"], read.json()["dispatch_uuid"]
    first = requests.get(f"{base}/v0.1/dispatch/{read_uuid}", auth=auth, timeout=5).json()["messages"][0]
    injected = requests.post(
        f"{base}/sandbox/messages/{first['message_uuid']}/status", json={"status": "read"}, auth=auth, timeout=5
    )
    assert injected.status_code == 202

    time.sleep(17.5)  # the real local timer must fire the 15 s deadline

    d = requests.get(f"{base}/v0.1/dispatch/{unread_uuid}", auth=auth, timeout=5).json()
    messenger, sms = d["messages"]
    gap = (_ts(sms["sent_at"]) - _ts(messenger["sent_at"])).total_seconds()
    assert messenger["outcome"] == "expired" and 15 <= gap <= 16, gap
    callbacks = requests.get(f"{base}/sandbox/callbacks", params={"dispatch_uuid": unread_uuid}, auth=auth, timeout=5).json()
    assert all(c["signature_valid"] for c in callbacks)
    assert [(c["body"]["message_uuid"], c["body"]["status"]) for c in callbacks] == [
        (messenger["message_uuid"], "submitted"),
        (sms["message_uuid"], "submitted"),
    ]

    d = requests.get(f"{base}/v0.1/dispatch/{read_uuid}", auth=auth, timeout=5).json()
    assert d["status"] == "completed" and d["messages"][1]["phase"] == "pending"
    callbacks = requests.get(f"{base}/sandbox/callbacks", params={"dispatch_uuid": read_uuid}, auth=auth, timeout=5).json()
    reports = [c["body"] for c in callbacks if "template" in c["body"]]
    assert [r["status"] for r in reports] == ["completed"]
    assert reports[0]["completed_by"] == first["message_uuid"]


def test_a_callback_reaches_the_sandbox_sink_through_the_queue(local_stack):
    base, demo = local_stack
    auth = (demo["api_key"], demo["api_secret"])
    created = requests.post(f"{base}/v0.1/dispatch", json=_seed(600), auth=auth, timeout=5)
    assert created.status_code == 202
    dispatch_uuid = created.json()["dispatch_uuid"]

    # Queued by the API's process, received by the poller, posted by deliver_callbacks.
    (callback,) = _wait_for_callbacks(base, auth, dispatch_uuid, 1, timeout=10)
    messenger = requests.get(f"{base}/v0.1/dispatch/{dispatch_uuid}", auth=auth, timeout=5).json()["messages"][0]
    assert callback["signature_valid"]
    assert (callback["body"]["message_uuid"], callback["body"]["status"]) == (messenger["message_uuid"], "submitted")
    history = requests.get(f"{base}/v0.1/dispatch/{dispatch_uuid}/callbacks", auth=auth, timeout=5).json()
    (record,) = history["callbacks"]
    assert record["state"] == "delivered"
    assert [a["http_status"] for a in record["attempts"]] == [204]

    # The poller deleted the message once the handler returned: nothing is left to redeliver.
    deadline = time.monotonic() + 5
    while any(_queue_depths(demo).values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_queue_depths(demo).values()), _queue_depths(demo)


def test_a_refused_callback_is_retried_from_the_queue_after_its_backoff(local_stack):
    base, demo = local_stack
    auth = (demo["api_key"], demo["api_secret"])
    outage = requests.post(f"{base}/sandbox/callbacks/outage", json={"seconds": 2, "status": 503}, auth=auth, timeout=5)
    assert outage.status_code == 202
    created = requests.post(f"{base}/v0.1/dispatch", json=_seed(600), auth=auth, timeout=5)
    dispatch_uuid = created.json()["dispatch_uuid"]

    # The first attempt meets the outage; the retry waits 5-10 s as a delayed SQS message.
    started = time.monotonic()
    (callback,) = _wait_for_callbacks(base, auth, dispatch_uuid, 1, timeout=20)
    assert time.monotonic() - started >= 4
    assert callback["body"]["status"] == "submitted" and callback["signature_valid"]
    history = requests.get(f"{base}/v0.1/dispatch/{dispatch_uuid}/callbacks", auth=auth, timeout=5).json()
    (record,) = history["callbacks"]
    assert record["state"] == "delivered"
    assert [a["http_status"] for a in record["attempts"]] == [503, 204]
