"""Every webhook route against bodies Python's `json` mishandles (issue 14, findings 2 and 6).

The signature comes first wherever the scheme allows: such a body is 401 unless its provider
signed it, and 400 `webhook-payload` when it did; for aws_sms, whose signature is inside the SNS
envelope, an envelope that is not strict JSON is unsigned (401), and a signed envelope whose
`Message` is not is 400. Never a 5xx (a provider would retry it for an hour), never an ERROR
line, and not one item of the table nor one callback differs afterwards.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timezone

import boto3
import pytest

from tests.e2e.test_api import view
from tests.webhooks.signature_cases.aws_sms import CASE_CERT_URL, DELIVERED_EVENT, SNS_KEY, body_of
from tests.webhooks.signature_suite import SignatureCase
from tests.webhooks.stack import ScriptedSession, post_webhook
from tests.webhooks.test_signatures import CASES, KINDS, _table, _targeted, ids

PAYLOAD_PROBLEM = "urn:dispatch:problem:webhook-payload"
SIGNATURE_PROBLEM = "urn:dispatch:problem:webhook-signature"


def _duplicated(body: bytes) -> bytes:
    """The case's own body with its first key given twice: the first copy says something else."""
    first_key = next(iter(json.loads(body)))
    return b'{"' + first_key.encode() + b'": "not this", ' + body.lstrip()[1:]


#: (name, body from the case's genuine body). Every one is refused by the strict parser.
HOSTILE = {
    "100,000 deep": lambda body: b"[" * 100_000,
    "deep inside the payload": lambda body: body.rstrip()[:-1] + b', "x": ' + b"[" * 70 + b"]" * 70 + b"}",
    "duplicate key": _duplicated,
    "5,001-digit number": lambda body: body.rstrip()[:-1] + b', "x": ' + b"1" * 5001 + b"}",
    "1e400": lambda body: body.rstrip()[:-1] + b', "x": 1e400}',
    "NaN": lambda body: body.rstrip()[:-1] + b', "x": NaN}',
    "lone surrogate": lambda body: body.rstrip()[:-1] + rb', "x": "\ud800"}',
    "not UTF-8": lambda body: body.rstrip()[:-1] + b', "x": "\xc0\xaf"}',
    "truncated": lambda body: body[: len(body) // 2],
}
#: What a signed SNS Message can hold: SNS carries text, so never bytes that are not UTF-8.
SNS_MESSAGE_CASES = [name for name in HOSTILE if name != "not UTF-8"]


def _signed(case: SignatureCase, name: str) -> tuple[bytes, Mapping[str, str]]:
    if case.provider == "aws_sms":
        message = HOSTILE[name](json.dumps(DELIVERED_EVENT).encode()).decode("utf-8")
        envelope = SNS_KEY.notification(message, timestamp=datetime.now(timezone.utc), url=CASE_CERT_URL)
        body = body_of(envelope)
        return body, case.sign(body, case.secret)
    body = HOSTILE[name](case.body)
    return body, case.sign(body, case.secret)


def _unsigned(case: SignatureCase, name: str) -> tuple[bytes, Mapping[str, str]]:
    body = HOSTILE[name](case.body)
    # The headers of a genuine request, whose signature is of another body (or, for SNS,
    # nowhere: it would be inside the body).
    return body, case.sign(case.body, case.secret)


def _answers_and_nothing_changes(stack, case, dispatch_uuid, body, headers, status, problem, caplog):
    session: ScriptedSession = stack.session  # type: ignore[assignment]
    client = boto3.client("dynamodb", region_name="eu-west-1")
    before, dispatch_before, callbacks_before = _table(client), view(stack, dispatch_uuid), session.callbacks()
    caplog.clear()
    for kind in KINDS:
        response = post_webhook(stack, case.provider, kind, body, headers)
        assert response.status_code == status, (kind, response.body[:300])
        assert response.headers["Content-Type"] == "application/problem+json"
        document = response.json_body
        assert document["type"] == problem
        assert {"type", "title", "detail", "instance"} <= set(document)
        for internal in ("Error", "sys.", "set_int_max_str_digits", "Traceback"):
            assert internal not in document["detail"]
        assert len(document["detail"]) < 500
    assert _table(client) == before
    assert view(stack, dispatch_uuid) == dispatch_before
    assert session.callbacks() == callbacks_before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_signed_body_that_is_not_strict_json_is_a_400(table_name, monkeypatch, subtests, caplog, case):
    names = SNS_MESSAGE_CASES if case.provider == "aws_sms" else list(HOSTILE)
    with _targeted(case, monkeypatch) as (stack, dispatch_uuid):
        for name in names:
            with subtests.test(body=name):
                body, headers = _signed(case, name)
                _answers_and_nothing_changes(
                    stack, case, dispatch_uuid, body, headers, 400, PAYLOAD_PROBLEM, caplog
                )
        # And the genuine body is still applied: the stack was able to change all along.
        genuine = post_webhook(stack, case.provider, case.kind, case.body, case.sign(case.body, case.secret))
        assert genuine.status_code == 200, genuine.body
        assert view(stack, dispatch_uuid)["messages"][0]["status"] == "delivered"


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_an_unsigned_body_that_is_not_strict_json_is_a_401(table_name, monkeypatch, subtests, caplog, case):
    with _targeted(case, monkeypatch) as (stack, dispatch_uuid):
        for name in HOSTILE:
            with subtests.test(body=name):
                body, headers = _unsigned(case, name)
                _answers_and_nothing_changes(
                    stack, case, dispatch_uuid, body, headers, 401, SIGNATURE_PROBLEM, caplog
                )


def test_a_signed_duplicate_key_is_named_in_the_answer(table_name, monkeypatch):
    case = next(c for c in CASES if c.provider == "viber")
    with _targeted(case, monkeypatch) as (stack, _):
        body = _duplicated(case.body)
        response = post_webhook(stack, "viber", "status", body, case.sign(body, case.secret))
    assert response.status_code == 400
    assert "the key(s) 'event' appear more than once in the top level" in response.json_body["detail"]
