"""The OpenAPI document served at /v0.1/openapi.json: valid, complete, in step with the models."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel, ValidationError

from chalicelib.api import callback_response_models, callback_routes, request_models, response_models
from chalicelib.api.body import MAX_BODY_BYTES
from scripts.gen_openapi import DOCUMENT, generate_schemas, regenerate, render
from tests.unit.test_validation import (
    CONTENT0,
    ELEVEN_ITEMS,
    MESSENGER,
    MMS,
    SMS_READ,
    VIBER,
    WHATSAPP,
    edit,
)

SERVED = Path(__file__).resolve().parents[2] / "chalicelib" / "api" / "openapi.json"
DOC: dict[str, Any] = json.loads(SERVED.read_text(encoding="utf-8"))
NOW = "2026-11-24T06:22:36.123Z"


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolves(ref: str) -> bool:
    node: Any = DOC
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def json_schema_accepts(model: str, instance: Any) -> bool:
    schema = {"$ref": f"#/components/schemas/{model}", "components": DOC["components"]}
    return jsonschema.Draft202012Validator(schema).is_valid(instance)


def pydantic_accepts(model: type[BaseModel], instance: Any) -> bool:
    try:
        model.model_validate(instance)
    except ValidationError:
        return False
    return True


def test_the_script_writes_the_served_document() -> None:
    assert DOCUMENT == SERVED


def test_document_is_valid_openapi_3_1() -> None:
    assert DOC["openapi"].startswith("3.1.")
    validate(DOC)


def test_component_schemas_are_what_the_models_generate() -> None:
    assert DOC["components"]["schemas"] == generate_schemas(), "run scripts/gen_openapi.py"


def test_document_is_formatted_as_the_script_writes_it() -> None:
    expected = render(regenerate(DOC))
    assert SERVED.read_text(encoding="utf-8") == expected, "run scripts/gen_openapi.py"


def test_every_reference_resolves() -> None:
    assert [ref for ref in refs(DOC) if not resolves(ref)] == []
    assert all(ref.startswith("#/components/") for ref in refs(DOC))


def test_document_has_every_route_and_both_callbacks() -> None:
    routes = {(path, method) for path, item in DOC["paths"].items() for method in item}
    assert routes == {
        ("/v0.1/dispatch", "post"),
        ("/beta/workflows", "post"),
        ("/v0.1/dispatch/{dispatch_uuid}", "get"),
        ("/v0.1/dispatch/{dispatch_uuid}/callbacks", "get"),
        ("/v0.1/dispatch/{dispatch_uuid}/callbacks/replay", "post"),
        ("/v0.1/callbacks", "get"),
        ("/v0.1/openapi.json", "get"),
        ("/sandbox/messages/{message_uuid}/status", "post"),
        ("/sandbox/callbacks", "post"),
        ("/sandbox/callbacks", "get"),
        ("/sandbox/callbacks/outage", "post"),
        ("/webhooks/{provider}/{kind}", "post"),
        ("/webhooks/{provider}/{kind}", "get"),
    }
    webhooks = {
        name: hook["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for name, hook in DOC["webhooks"].items()
    }
    assert webhooks == {
        "messageStatus": "#/components/schemas/MessageStatusCallback",
        "finalReport": "#/components/schemas/FinalReportCallback",
    }


def test_only_the_document_the_callback_sink_and_the_provider_webhooks_need_no_credentials() -> None:
    assert {scheme for entry in DOC["security"] for scheme in entry} == {"basicAuth", "bearerAuth"}
    open_routes = {
        (path, method)
        for path, item in DOC["paths"].items()
        for method, operation in item.items()
        if operation.get("security") == []
    }
    # The webhooks take the provider's own signature instead (see the operation's description).
    assert open_routes == {
        ("/v0.1/openapi.json", "get"),
        ("/sandbox/callbacks", "post"),
        ("/webhooks/{provider}/{kind}", "post"),
        ("/webhooks/{provider}/{kind}", "get"),
    }


def test_limits_are_documented_as_enforced() -> None:
    request = DOC["components"]["schemas"]["CreateDispatchRequest"]
    assert request["properties"]["workflow"]["maxItems"] == request_models.MAX_WORKFLOW_ITEMS
    assert MAX_BODY_BYTES == 256 * 1024
    create = DOC["paths"]["/v0.1/dispatch"]["post"]
    assert "256 KiB" in create["description"] and "10 workflow items" in create["description"]
    assert "256 KiB" in DOC["components"]["responses"]["PayloadTooLarge"]["description"]


def test_callback_list_limits_are_documented_as_enforced() -> None:
    parameters = DOC["components"]["parameters"]
    assert parameters["CallbackState"]["schema"]["enum"] == list(callback_routes.LISTED_STATES)
    assert parameters["Limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": callback_routes.MAX_LIMIT,
        "default": callback_routes.DEFAULT_LIMIT,
    }
    assert parameters["Cursor"]["schema"]["maxLength"] == callback_routes.MAX_CURSOR_LENGTH
    listed = DOC["paths"]["/v0.1/callbacks"]["get"]
    assert [p["$ref"].rsplit("/", 1)[1] for p in listed["parameters"]] == ["CallbackState", "Limit", "Cursor"]
    assert {"200", "400", "401", "431", "500"} == set(listed["responses"])
    for path, method in (
        ("/v0.1/dispatch/{dispatch_uuid}/callbacks", "get"),
        ("/v0.1/dispatch/{dispatch_uuid}/callbacks/replay", "post"),
    ):
        assert {"401", "404", "500"} < set(DOC["paths"][path][method]["responses"])


def test_create_responses_are_documented() -> None:
    for path in ("/v0.1/dispatch", "/beta/workflows"):
        assert {"202", "400", "401", "413", "415", "500"} <= set(
            DOC["paths"][path]["post"]["responses"]
        )


def test_every_route_documents_the_header_limit_as_a_problem() -> None:
    # The front (API Gateway, and the local stack's) refuses headers over 10,240 bytes on any
    # route, before the route is chosen; the fuzz run holds every answer to the document.
    missing = [
        (path, method)
        for path, item in DOC["paths"].items()
        for method, operation in item.items()
        if operation["responses"].get("431") != {"$ref": "#/components/responses/HeaderTooLarge"}
    ]
    assert missing == []
    assert "10,240 bytes" in DOC["components"]["responses"]["HeaderTooLarge"]["description"]


def test_every_route_documents_the_internal_error_as_a_problem() -> None:
    # Every route is wrapped by `problem_errors`, which answers anything unexpected with a 500.
    internal = {"$ref": "#/components/responses/InternalError"}
    missing = [
        (path, method)
        for path, item in DOC["paths"].items()
        for method, operation in item.items()
        if operation["responses"].get("500") != internal
    ]
    assert missing == []
    content = DOC["components"]["responses"]["InternalError"]["content"]
    assert content == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }


@pytest.mark.parametrize(
    "body",
    [
        VIBER,
        MESSENGER,
        WHATSAPP,
        MMS,
        SMS_READ,  # a channel rule, not structure: both accept it
        edit(VIBER, ("workflow[0].failover.expiry_time", "600")),
        edit(VIBER, ("workflow[0].failover.expiry_time", True)),
        edit(VIBER, ("workflow[0].failover.expiry_time", 600.0)),
        edit(VIBER, ("workflow[0].failover.expiry_time", 600.5)),
        edit(VIBER, ("workflow[0].failover.expiry_time", 14)),
        edit(VIBER, ("workflow[0].failover", None)),
        edit(VIBER, ("workflow[1].to.number", None)),
        edit(VIBER, ("workflow[1].to.type", "rcs")),
        edit(VIBER, ("workflow[1].to.extra", "x")),
        edit(VIBER, ("template", "broadcast")),
        edit(VIBER, ("workflow", [])),
        ELEVEN_ITEMS,
        edit(MMS, ("workflow[0].message.content.type", "img")),
        edit(MMS, (f"{CONTENT0}.image.url", "ftp://example.com/a.jpg")),
        edit(MMS, (f"{CONTENT0}.image.url", "https://example.com/a b.jpg")),
        edit(WHATSAPP, (f"{CONTENT0}.template.parameters", [{"default": 1}])),
        edit(WHATSAPP, ("workflow[0].message.whatsapp.policy", "fallback")),
        edit(WHATSAPP, ("workflow[0].message.whatsapp.locale", "zh-Hant-TW")),
        edit(WHATSAPP, ("workflow[0].message.whatsapp.locale", "en_GB")),
        edit(WHATSAPP, (f"{CONTENT0}", {"type": "custom", "custom": {"any": [1, None]}})),
        [VIBER],
    ],
)
def test_request_schema_accepts_exactly_what_the_models_accept(body: Any) -> None:
    expected = pydantic_accepts(request_models.CreateDispatchRequest, body)
    assert json_schema_accepts("CreateDispatchRequest", body) is expected


def test_the_document_examples_are_valid_requests() -> None:
    from chalicelib.api.validation import parse_create_request

    content = DOC["components"]["requestBodies"]["CreateDispatch"]["content"]["application/json"]
    for example in content["examples"].values():
        assert json_schema_accepts("CreateDispatchRequest", example["value"])
        assert parse_create_request(example["value"])


BAD_REQUEST = DOC["components"]["responses"]["BadRequest"]
INVALID_LIST_QUERY = DOC["components"]["responses"]["InvalidListQuery"]
USAGE = {"price": "0.0333", "currency": "EUR"}
SMS_ADDRESS = {"type": "sms", "number": "447700900000"}
MESSAGE_VIEW = {
    "index": 0,
    "channel": "sms",
    "message_uuid": "m-1",
    "to": SMS_ADDRESS,
    "from": {"type": "sms", "number": "Vonage"},
    "phase": "succeeded",
    "status": "delivered",
    "condition_status": None,
    "expiry_time": None,
    "attempts": 1,
    "sent_at": NOW,
    "deadline": None,
    "ended_at": NOW,
    "outcome": "condition_met",
    "error": None,
    "usage": USAGE,
    "history": [{"status": "delivered", "timestamp": NOW, "late": False, "error": None}],
}
DISPATCH_VIEW = {
    "dispatch_uuid": "d-1",
    "template": "failover",
    "status": "completed",
    "created_at": NOW,
    "updated_at": NOW,
    "ended_at": NOW,
    "completed_by": "m-1",
    "usage": USAGE,
    "messages": [MESSAGE_VIEW],
    "_links": {"self": {"href": "/v0.1/dispatch/d-1"}},
}
MESSAGE_STATUS = {
    "message_uuid": "m-1",
    "to": SMS_ADDRESS,
    "from": {"type": "sms", "number": "447700900001"},
    "timestamp": NOW,
    "status": "rejected",
    "error": {"code": "1300", "reason": "Not part of the provider network"},
    "usage": USAGE,
    "_links": {"workflow": {"dispatch_uuid": "d-1", "href": "/v0.1/dispatch/d-1"}},
}
FINAL_REPORT = {
    "dispatch_uuid": "d-1",
    "template": "failover",
    "status": "error",
    "timestamp": NOW,
    "completed_by": None,
    "_links": {
        "messages": [
            {"message_uuid": "m-1", "href": "/v0.1/dispatch/d-1", "channel": "sms", "status": None}
        ]
    },
}

ATTEMPT = {"at": NOW, "http_status": 410, "error": None, "duration_ms": 12}
CALLBACK_VIEW = {
    "seq": 1,
    "event_id": "e-1",
    "type": "message_status",
    "state": "dead",
    "decided_at": NOW,
    "next_attempt_at": None,
    "dead_at": NOW,
    "dead_reason": "410",
    "replays": 0,
    "attempts": [ATTEMPT, {**ATTEMPT, "http_status": None, "error": "timeout", "duration_ms": None}],
    "payload": MESSAGE_STATUS,
}
DISPATCH_CALLBACKS = {
    "dispatch_uuid": "d-1",
    "callbacks": [CALLBACK_VIEW, {**CALLBACK_VIEW, "seq": 2, "state": "pending", "attempts": [],
                                  "dead_at": None, "dead_reason": None, "payload": FINAL_REPORT}],
}
CALLBACK_LIST = {
    "callbacks": [{**CALLBACK_VIEW, "dispatch_uuid": "d-1"}],
    "_links": {
        "self": {"href": "/v0.1/callbacks?state=dead&limit=1"},
        "next": {"href": "/v0.1/callbacks?state=dead&limit=1&cursor=eyJ9"},
    },
}
LAST_PAGE = {"callbacks": [], "_links": {"self": {"href": "/v0.1/callbacks?state=dead&limit=50"}}}


@pytest.mark.parametrize(
    "model, instance",
    [
        (callback_response_models.DispatchCallbacks, DISPATCH_CALLBACKS),
        (callback_response_models.CallbackList, CALLBACK_LIST),
        (callback_response_models.CallbackList, LAST_PAGE),
        (callback_response_models.ReplayAccepted, {"dispatch_uuid": "d-1", "replaying": 3}),
        (response_models.DispatchView, DISPATCH_VIEW),
        (response_models.MessageStatusCallback, MESSAGE_STATUS),
        (response_models.FinalReportCallback, FINAL_REPORT),
        (response_models.FinalReportCallback, {**FINAL_REPORT, "usage": USAGE}),
        (response_models.Problem, BAD_REQUEST["content"]["application/problem+json"]["example"]),
        (response_models.Problem, INVALID_LIST_QUERY["content"]["application/problem+json"]["example"]),
        (response_models.ReceivedCallback, {"received_at": NOW, "signature_valid": False, "body": "x"}),
    ],
)
def test_response_shapes_validate_with_both_the_models_and_the_document(
    model: type[BaseModel], instance: dict[str, Any]
) -> None:
    assert pydantic_accepts(model, instance)
    assert json_schema_accepts(model.__name__, instance)


@pytest.mark.parametrize(
    "model, instance",
    [
        (response_models.DispatchView, {**DISPATCH_VIEW, "created_at": "2026-11-24T06:22:36Z"}),
        (response_models.DispatchView, {**DISPATCH_VIEW, "cancelled": False}),
        (response_models.DispatchView, {k: v for k, v in DISPATCH_VIEW.items() if k != "ended_at"}),
        (response_models.DispatchView, {**DISPATCH_VIEW, "messages": [{**MESSAGE_VIEW, "phase": "done"}]}),
        (response_models.MessageStatusCallback, {**MESSAGE_STATUS, "status": "failed"}),
        (response_models.MessageStatusCallback, {**MESSAGE_STATUS, "error": None}),
        (response_models.FinalReportCallback, {**FINAL_REPORT, "status": "in_progress"}),
        (response_models.FinalReportCallback, {**FINAL_REPORT, "usage": None}),
        (callback_response_models.DispatchCallbacks, {**DISPATCH_CALLBACKS, "callbacks": [{**CALLBACK_VIEW, "state": "failed"}]}),
        (callback_response_models.DispatchCallbacks, {**DISPATCH_CALLBACKS, "callbacks": [{**CALLBACK_VIEW, "type": "status"}]}),
        (callback_response_models.DispatchCallbacks, {**DISPATCH_CALLBACKS, "callbacks": [{**CALLBACK_VIEW, "payload": "{}"}]}),
        (callback_response_models.DispatchCallbacks, {**DISPATCH_CALLBACKS, "callbacks": [{**CALLBACK_VIEW, "dispatch_uuid": "d-1"}]}),
        (callback_response_models.CallbackList, {**CALLBACK_LIST, "callbacks": [CALLBACK_VIEW]}),
        (callback_response_models.CallbackList, {**LAST_PAGE, "_links": {"self": {"href": "/v0.1/dispatch/d-1"}}}),
        (callback_response_models.CallbackList, {**LAST_PAGE, "_links": {"self": LAST_PAGE["_links"]["self"], "next": None}}),
        (callback_response_models.ReplayAccepted, {"dispatch_uuid": "d-1", "replaying": -1}),
    ],
)
def test_response_drift_is_refused_by_both(
    model: type[BaseModel], instance: dict[str, Any]
) -> None:
    assert not pydantic_accepts(model, instance)
    assert not json_schema_accepts(model.__name__, instance)


def test_every_status_a_staged_outage_can_answer_is_documented_on_the_sink_as_a_problem() -> None:
    bounds = request_models.SandboxOutageRequest.model_json_schema()["properties"]["status"]
    responses = DOC["paths"]["/sandbox/callbacks"]["post"]["responses"]
    for status in range(bounds["minimum"], bounds["maximum"] + 1):
        documented = responses.get(str(status)) or responses.get(f"{status // 100}XX")
        assert documented is not None, status
        content = DOC["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]["content"]
        assert list(content) == ["application/problem+json"], status
        assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}


@pytest.mark.parametrize(
    "body",
    [
        {"seconds": 60},
        {"seconds": 60, "status": 410},
        {"seconds": 60.0},
        {"seconds": True},  # found by fuzzing: pydantic's lax int took it as 1
        {"seconds": "60"},
        {"seconds": 60, "status": "503"},
        {"seconds": 60, "status": False},
        {"seconds": 0},
        {"seconds": 60, "status": 600},
    ],
)
def test_outage_schema_accepts_exactly_what_the_model_accepts(body: Any) -> None:
    expected = pydantic_accepts(request_models.SandboxOutageRequest, body)
    assert json_schema_accepts("SandboxOutageRequest", body) is expected
