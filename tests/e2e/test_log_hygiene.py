"""No secret, token or message text ever reaches the logs.

One whole lifecycle runs through the app with its logging configured as a deployment with
DISPATCH_LOG_LEVEL=DEBUG configures it (chalicelib.logs: the root logger at DEBUG, one JSON
handler on stdout), and stdout and stderr captured (the logs, metrics, anything printed):
dispatches created with Basic and with a JWT,
sent over WhatsApp (a real provider, scripted at its HTTP layer), a signed status webhook that
completes one, a failover by deadline, signed callbacks, a user's reply relayed, refused
credentials, a refused webhook signature and a validation error. Then every secret the run
handled is looked for in everything captured.

The capture is shown to work: it is not empty and holds the dispatches' ids, so a leak would
be seen.
"""
from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass

import boto3
import pytest

from chalicelib.adapters.dynamodb_table import create_table
from tests.conftest import TABLE_NAME
from tests.e2e.test_api import create
from tests.webhooks.meta_signing import meta_signed
from tests.webhooks.stack import INBOUND_URL, STATUS_URL, ScriptedSession, post_webhook, provider_stack
from tests.webhooks.test_whatsapp_e2e import GRAPH, USER, accepted, payload

#: Every text is distinctive, and they share a prefix, so a partial leak is caught too.
MARK = "TOP-SECRET-TEXT-7f3a"
TEXTS = {"whatsapp": f"{MARK}-whatsapp", "sms": f"{MARK}-sms", "reply": f"{MARK}-reply", "invalid": f"{MARK}-invalid"}
CREDENTIALS = {
    "DISPATCH_WHATSAPP_ACCESS_TOKEN": "EAAG-access-token-5e1d9c0b7a4f",
    "DISPATCH_WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "DISPATCH_WHATSAPP_APP_SECRET": "whatsapp-app-secret-0c4f2e9d8b7a",
    "DISPATCH_WHATSAPP_VERIFY_TOKEN": "whatsapp-verify-token-3b8e1f6a2d",
}
PROVIDER_SECRETS = ("ACCESS_TOKEN", "APP_SECRET", "VERIFY_TOKEN")
#: The id of our message in the WhatsApp fixtures, replaced by the ids the scripted API gave.
OUR_WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"


def workflow(first: str, second: str, expiry: int = 600) -> dict:
    return {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "whatsapp", "number": "15550783881"},
                "to": {"type": "whatsapp", "number": USER},
                "message": {"content": {"type": "text", "text": first}},
                "failover": {"expiry_time": expiry, "condition_status": "delivered"},
            },
            {
                "from": {"type": "sms", "number": "447700900001"},
                "to": {"type": "sms", "number": "447911123456"},
                "message": {"content": {"type": "text", "text": second}},
            },
        ],
    }


@dataclass
class Run:
    #: Everything logged or printed during the run.
    captured: str
    #: Each secret the run handled, by what it is.
    secrets: dict[str, str]
    dispatch_uuids: list[str]


def _signed(body: bytes) -> dict[str, str]:
    return meta_signed(body, CREDENTIALS["DISPATCH_WHATSAPP_APP_SECRET"])


def _lifecycle(stack, session: ScriptedSession) -> tuple[dict[str, str], list[str]]:
    """Runs the whole lifecycle; returns the secrets it handled and the dispatches it made."""
    secrets: dict[str, str] = {}
    basic, bearer = stack.basic(), stack.bearer()
    secrets["basic authorization header"] = basic["Authorization"]
    secrets["bearer authorization header"] = bearer["Authorization"]
    secrets["bearer JWT signature"] = bearer["Authorization"].rsplit(".", 1)[1]

    completed = create(stack, workflow(TEXTS["whatsapp"], TEXTS["sms"]), basic)
    status = payload("status_delivered", **{OUR_WAMID: "wamid.1"})
    headers = _signed(status)
    secrets["status webhook signature"] = headers["X-Hub-Signature-256"]
    response = post_webhook(stack, "whatsapp", "status", status, headers)
    assert response.json_body["applied"] == 1, response.body

    failed_over = create(stack, workflow(TEXTS["whatsapp"], TEXTS["sms"], expiry=15), bearer)
    stack.clock.advance(16)
    assert stack.fire_due_checks(failed_over) >= 1
    assert [c.json.get("to") for c in session.to(GRAPH)] == [USER, USER]  # the SMS went by sandbox

    reply = payload("inbound_reply_with_context", **{OUR_WAMID: "wamid.2", '"STOP"': json.dumps(TEXTS["reply"])})
    headers = _signed(reply)
    secrets["inbound webhook signature"] = headers["X-Hub-Signature-256"]
    response = post_webhook(stack, "whatsapp", "inbound", reply, headers)
    assert response.json_body["relayed"] == 1, response.body

    forged = {"X-Hub-Signature-256": "sha256=" + "5eb1" * 16, "Content-Type": "application/json"}
    secrets["forged webhook signature"] = forged["X-Hub-Signature-256"]
    assert post_webhook(stack, "whatsapp", "status", status, forged).status_code == 401

    wrong = stack.basic(stack.demo)["Authorization"].replace("Basic ", "Basic x")
    tampered = bearer["Authorization"][:-6] + "AAAAAA"
    for header in (wrong, tampered):
        secrets[f"refused authorization header {len(secrets)}"] = header
        refused = stack.get(f"/v0.1/dispatch/{completed}", {"Authorization": header})
        assert refused.status_code == 401

    too_long = workflow(TEXTS["invalid"] * 300, TEXTS["invalid"])
    too_long["workflow"][0]["unknown_field"] = TEXTS["invalid"]
    assert stack.post("/v0.1/dispatch", too_long).status_code == 400

    callbacks = session.callbacks()
    assert {url for url, _, _ in callbacks} == {STATUS_URL, INBOUND_URL}
    for index, (_, _, callback_headers) in enumerate(callbacks):
        secrets[f"callback {index} authorization"] = callback_headers["Authorization"]
    return secrets, [completed, failed_over]


@contextmanager
def debug_logs_into(buffer: io.StringIO) -> Iterator[None]:
    """Logging configured as a Lambda with DISPATCH_LOG_LEVEL=DEBUG configures it, at import
    (`configure_logging`), but with stdout, where its JSON handler writes, being `buffer`; the
    test run's own logging is put back after."""
    from chalicelib.logs import configure_logging

    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == "dispatch-json"]
    level, setting = root.level, os.environ.get("DISPATCH_LOG_LEVEL")
    for handler in ours:
        root.removeHandler(handler)
    os.environ["DISPATCH_LOG_LEVEL"] = "DEBUG"
    try:
        with redirect_stdout(buffer), redirect_stderr(buffer):
            configure_logging()
            [added] = [h for h in root.handlers if h.get_name() == "dispatch-json"]
            try:
                yield
            finally:
                root.removeHandler(added)
    finally:
        for handler in ours:
            root.addHandler(handler)
        root.setLevel(level)
        if setting is None:
            os.environ.pop("DISPATCH_LOG_LEVEL")
        else:
            os.environ["DISPATCH_LOG_LEVEL"] = setting


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    from moto import mock_aws

    buffer = io.StringIO()
    session = ScriptedSession()
    session.respond(GRAPH, lambda call: accepted(f"wamid.{len(session.to(GRAPH))}"))
    with mock_aws():
        create_table(boto3.client("dynamodb", region_name="eu-west-1"), TABLE_NAME)
        with (
            provider_stack(TABLE_NAME, {"whatsapp": "whatsapp"}, CREDENTIALS, session) as stack,
            debug_logs_into(buffer),
        ):
            secrets, dispatch_uuids = _lifecycle(stack, session)
    for application, creds in (("demo", stack.demo), ("other", stack.other)):
        secrets[f"{application} api_secret"] = creds.api_secret
        secrets[f"{application} callback signature secret"] = creds.signature_secret
        for number, line in enumerate(creds.private_key_pem.splitlines()[1:-1]):
            secrets[f"{application} private key line {number}"] = line
    for name in PROVIDER_SECRETS:
        secrets[f"whatsapp {name.lower()}"] = CREDENTIALS[f"DISPATCH_WHATSAPP_{name}"]
    secrets["message text"] = MARK
    yield Run(buffer.getvalue(), secrets, dispatch_uuids)


def test_the_capture_sees_the_apps_logs(run):
    lines = [json.loads(line) for line in run.captured.splitlines() if line.startswith("{")]
    assert len(lines) >= 5
    assert {line["service"] for line in lines} == {"dispatch"}
    for dispatch_uuid in run.dispatch_uuids:
        assert dispatch_uuid in run.captured


def test_no_secret_token_or_text_is_logged(run):
    leaked = {name: value for name, value in run.secrets.items() if value in run.captured}
    assert not leaked, f"found in the logs: {sorted(leaked)}"
