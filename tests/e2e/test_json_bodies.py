"""Client bodies, cursors and path ids end to end (issue 14, findings 6, 7 and 8).

Each refused request is a 400 or 404 problem+json in our own words, creates nothing (the table
is read before and after) and logs nothing at ERROR.
"""
from __future__ import annotations

import base64
import json
import logging
from typing import Any

import boto3
import pytest

from tests.conftest import TABLE_NAME
from tests.e2e.test_api import MESSENGER_TO_SMS, create, view

INVALID_JSON = "urn:dispatch:problem:invalid-json"
INVALID_PARAMS = "urn:dispatch:problem:invalid-params"
NOT_FOUND = "urn:dispatch:problem:not-found"
INVALID_CURSOR = "urn:dispatch:problem:invalid-cursor"
INTERNALS = ("sys.", "set_int_max_str_digits", "Error", "Traceback", "Input should", "input_value")


def _items() -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name="eu-west-1")
    pages = client.get_paginator("scan").paginate(TableName=TABLE_NAME, ConsistentRead=True)
    return sorted((i for page in pages for i in page["Items"]), key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def _post_raw(stack, path: str, raw: bytes):
    return stack.client.http.post(path, headers=stack.basic(), body=raw)


def _refused(response, status: int, problem: str) -> dict[str, Any]:
    assert response.status_code == status, response.body[:500]
    assert response.headers["Content-Type"] == "application/problem+json"
    document = response.json_body
    assert document["type"] == problem
    text = json.dumps(document)
    for internal in INTERNALS:
        assert internal not in text
    return document


def _with_raw(value: str) -> bytes:
    """MESSENGER_TO_SMS with the first failover's expiry_time written as the raw JSON `value`."""
    text = json.dumps(MESSENGER_TO_SMS).replace('"expiry_time": 600', f'"expiry_time": {value}', 1)
    assert text != json.dumps(MESSENGER_TO_SMS)
    return text.encode()


BODIES: list[tuple[str, bytes, str, str]] = [
    (
        "duplicate expiry_time (a proxy reading the first would disagree)",
        _with_raw("86400, \"expiry_time\": 15"),
        INVALID_JSON,
        "the key(s) 'expiry_time' appear more than once in workflow[0].failover",
    ),
    ("5,001-digit integer", _with_raw("1" * 5001), INVALID_JSON, "longer than 64 characters at workflow[0].failover.expiry_time"),
    ("1e400", _with_raw("1e400"), INVALID_JSON, "too large to represent at workflow[0].failover.expiry_time"),
    ("huge exponent", _with_raw("6e99999"), INVALID_JSON, "exponent"),
    ("NaN", _with_raw("NaN"), INVALID_JSON, "NaN is not a JSON value"),
    ("overlong UTF-8", json.dumps(MESSENGER_TO_SMS).encode().replace(b"Dispatch API", b"Dispatch\xc0\xafAPI", 1), INVALID_JSON, "not UTF-8"),
    ("lone surrogate", json.dumps(MESSENGER_TO_SMS).replace("Dispatch API", "\\ud800", 1).encode(), INVALID_JSON, "surrogate"),
    ("100,000 deep", b"[" * 100_000, INVALID_JSON, "more than 64 deep"),
    ("a JSON string", b'"failover"', INVALID_PARAMS, "The request parameters did not validate"),
    ("a JSON array", b"[]", INVALID_PARAMS, "The request parameters did not validate"),
    ("null", b"null", INVALID_PARAMS, "The request parameters did not validate"),
    ("-0 seconds", _with_raw("-0"), INVALID_PARAMS, "The request parameters did not validate"),
    ("a number where text goes", json.dumps(MESSENGER_TO_SMS).replace('"This is a Facebook', '12, "x": "', 1).encode(), INVALID_PARAMS, "did not validate"),
]


@pytest.mark.parametrize("raw, problem, words", [b[1:] for b in BODIES], ids=[b[0] for b in BODIES])
def test_a_body_that_is_not_strict_json_creates_nothing(stack, caplog, raw: bytes, problem: str, words: str):
    before = _items()
    for path in ("/v0.1/dispatch", "/beta/workflows"):
        document = _refused(_post_raw(stack, path, raw), 400, problem)
        assert words in document["detail"]
    assert _items() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("text", "Hello\x00world", "control characters"),
        ("text", "Pay \u202egnp.exe", "U+202A to U+202E"),
        ("to", {"type": "messenger", "id": "../../x"}, "letters, digits, _ and - only"),
        ("from", {"type": "messenger", "id": "1111/../2222"}, "letters, digits, _ and - only"),
        ("to", {"type": "messenger", "id": " "}, "printable ASCII"),
        ("to", {"type": "messenger", "id": "\u0000"}, "printable ASCII"),
    ],
)
def test_control_characters_and_traversal_in_a_body_are_named(stack, caplog, field: str, value: Any, reason: str):
    body = json.loads(json.dumps(MESSENGER_TO_SMS))
    item = body["workflow"][0]
    if field == "text":
        item["message"]["content"]["text"] = value
        name = "workflow[0].message.content.text"
    else:
        item[field] = value
        name = f"workflow[0].{field}.id"
    before = _items()
    document = _refused(stack.post("/v0.1/dispatch", body), 400, INVALID_PARAMS)
    [problem] = document["invalid_parameters"]
    assert problem["name"] == name and reason in problem["reason"]
    assert _items() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_duplicate_key_in_a_sandbox_body_is_refused_too(stack):
    response = stack.client.http.post(
        "/sandbox/callbacks/outage", headers=stack.basic(), body=b'{"seconds": 60, "seconds": 1}'
    )
    assert "'seconds'" in _refused(response, 400, INVALID_JSON)["detail"]
    assert stack.services.sink.outage_status(stack.demo.application_id, stack.clock.now()) is None


def test_sandbox_validation_speaks_our_words(stack):
    response = stack.post("/sandbox/callbacks/outage", {"seconds": 60, "status": 700, "x" * 5000: 1})
    document = _refused(response, 400, INVALID_PARAMS)
    assert {p["name"] for p in document["invalid_parameters"]} == {"status", "x" * 64 + "…"}
    assert {"name": "status", "reason": "must be at most 599"} in document["invalid_parameters"]


PATH_IDS = ["%00", "a%20b", "..%2F..%2Fx", "x" * 300, "%E2%80%AE" + "0" * 36, "%FF", "not-a-uuid",
            "6F9619FF-8B86-D011-B42D-00CF4FC964FF"]


@pytest.mark.parametrize("path_id", PATH_IDS)
def test_a_malformed_path_id_is_the_404_of_an_unknown_dispatch(stack, caplog, path_id: str):
    known = create(stack)
    before = _items()
    for method, path in [
        ("GET", f"/v0.1/dispatch/{path_id}"),
        ("GET", f"/v0.1/dispatch/{path_id}/callbacks"),
        ("POST", f"/v0.1/dispatch/{path_id}/callbacks/replay"),
        ("POST", f"/sandbox/messages/{path_id}/status"),
    ]:
        body = json.dumps({"status": "delivered"}) if "sandbox" in path else ""
        response = stack.client.http.request(method, path, headers=stack.basic(), body=body)
        document = _refused(response, 404, NOT_FOUND)
        assert path_id not in document["detail"]
    assert _items() == before
    assert view(stack, known)["status"]  # the real one is still there
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_path_id_is_checked_after_the_credentials(stack):
    response = stack.client.http.get("/v0.1/dispatch/..%2F..%2Fx", headers={})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "cursor",
    [
        base64.urlsafe_b64encode(b"[" * 1536).decode(),  # RecursionError in json.loads: was a 500
        base64.urlsafe_b64encode(b'{"a": 1, "a": 2}').decode(),
        base64.urlsafe_b64encode(b"1" * 1500).decode(),
    ],
    ids=["nested", "duplicate keys", "long number"],
)
def test_a_cursor_that_is_not_strict_json_is_not_a_cursor(stack, caplog, cursor: str):
    response = stack.get(f"/v0.1/callbacks?state=dead&cursor={cursor}")
    _refused(response, 400, INVALID_CURSOR)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
