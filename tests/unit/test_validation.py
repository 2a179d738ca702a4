"""Request validation (`parse_create_request`) and body decoding (`decode_json_body`).

Each invalid case edits one valid request and asserts the exact set of `invalid_parameters`
names, so a rule that stops firing, or fires on the wrong field, fails here.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

import pytest

from chalicelib.api.body import MAX_BODY_BYTES, decode_json_body
from chalicelib.api.errors import (
    MalformedJson,
    PayloadTooLarge,
    RequestInvalid,
    UnsupportedMediaType,
)
from chalicelib.api.validation import MAX_WORKFLOW_ITEMS, parse_create_request
from chalicelib.domain.model import Channel, Condition, StepSpec


class _Delete:
    """Marks a field `edit` removes; a stable repr keeps test ids equal across xdist workers."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()

SMS_ITEM: dict[str, Any] = {
    "from": {"type": "sms", "number": "447700900001"},
    "to": {"type": "sms", "number": "447700900000"},
    "message": {"content": {"type": "text", "text": "This is an SMS sent from the Dispatch API"}},
}
# Contract §1.5, the canonical example.
VIBER_THEN_SMS: dict[str, Any] = {
    "template": "failover",
    "workflow": [
        {
            "from": {"type": "viber_service_msg", "id": "VIBER_SERVICE_MESSAGE_ID"},
            "to": {"type": "viber_service_msg", "number": "447700900000"},
            "message": {"content": {"type": "text", "text": "This is a Viber Service Message"}},
            "failover": {"expiry_time": 600, "condition_status": "delivered"},
        },
        SMS_ITEM,
    ],
}
# Contract §1.5, the Basic auth variant.
MESSENGER_THEN_SMS: dict[str, Any] = {
    "template": "failover",
    "workflow": [
        {
            "from": {"type": "messenger", "id": "FB_SENDER_ID"},
            "to": {"type": "messenger", "id": "FB_RECIPIENT_ID"},
            "message": {"content": {"type": "text", "text": "This is a Messenger message"}},
            "failover": {"expiry_time": 600, "condition_status": "read"},
        },
        SMS_ITEM,
    ],
}
WHATSAPP_TEMPLATE = {
    "name": "whatsapp:hsm:technology:nexmo:verify",
    "parameters": [{"default": "Nexmo Verification"}, {"default": "64873"}, {"default": "10"}],
}
WHATSAPP_THEN_SMS: dict[str, Any] = {
    "template": "failover",
    "workflow": [
        {
            "from": {"type": "whatsapp", "number": "447700900001"},
            "to": {"type": "whatsapp", "number": "447700900000"},
            "message": {
                "content": {"type": "template", "template": WHATSAPP_TEMPLATE},
                "whatsapp": {"policy": "deterministic", "locale": "en-GB"},
            },
            "failover": {"expiry_time": 600, "condition_status": "read"},
        },
        SMS_ITEM,
    ],
}
IMAGE = {"url": "https://example.com/image.jpg"}


def edit(body: Any, *changes: tuple[str, Any]) -> Any:
    """A deep copy of `body` with each `(path, value)` set; paths as in `invalid_parameters`."""
    body = copy.deepcopy(body)
    for path, value in changes:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
        parent = body
        for key in keys[:-1]:  # missing objects on the way are created
            parent = parent[key] if isinstance(parent, list) else parent.setdefault(key, {})
        if value is DELETE:
            del parent[keys[-1]]
        else:
            parent[keys[-1]] = value
    return body


def on_channel(channel: str, sender: dict[str, str], to: dict[str, str], content: dict[str, Any]):
    """VIBER_THEN_SMS with its first item moved to another channel."""
    return edit(
        VIBER_THEN_SMS,
        ("workflow[0].from", {"type": channel, **sender}),
        ("workflow[0].to", {"type": channel, **to}),
        ("workflow[0].message.content", content),
    )


def problems(body: Any) -> dict[str, str]:
    with pytest.raises(RequestInvalid) as caught:
        parse_create_request(body)
    return {p["name"]: p["reason"] for p in caught.value.invalid_parameters}


VIBER, MESSENGER, WHATSAPP = VIBER_THEN_SMS, MESSENGER_THEN_SMS, WHATSAPP_THEN_SMS
MMS = on_channel(
    "mms", {"number": "14155550100"}, {"number": "14155550101"}, {"type": "image", "image": IMAGE}
)
SMS_READ = edit(
    VIBER,
    ("workflow[0].from", SMS_ITEM["from"]),
    ("workflow[0].to", SMS_ITEM["to"]),
    ("workflow[0].failover.condition_status", "read"),
)
TEN_ITEMS = {"template": "failover", "workflow": [*VIBER["workflow"][:1] * 9, SMS_ITEM]}
ELEVEN_ITEMS = {"template": "failover", "workflow": [VIBER["workflow"][0], *TEN_ITEMS["workflow"]]}
#: Paths used over and over below.
FAILOVER0, MESSAGE0, MESSAGE1 = "workflow[0].failover", "workflow[0].message", "workflow[1].message"
CONTENT0, CONTENT1 = f"{MESSAGE0}.content", f"{MESSAGE1}.content"
PARAMETERS0 = f"{CONTENT0}.template.parameters"
AUDIO_CAPTION0, TAG0 = f"{CONTENT0}.audio.caption", f"{MESSAGE0}.messenger.tag"
EXPIRY0, FROM1, TO1 = f"{FAILOVER0}.expiry_time", "workflow[1].from.number", "workflow[1].to.number"
TEMPLATE = WHATSAPP_TEMPLATE
CAPTIONED = {**IMAGE, "caption": "A caption"}


def ok(base: dict[str, Any], path: str, value: Any) -> Any:
    return pytest.param(edit(base, (path, value)), id=f"{path}={value!r:.30}")


def swap(base: dict[str, Any], path: str, field: str, other: str) -> Any:
    """A case where the address at `path` has `other` instead of the `field` its channel takes."""
    body = edit(base, (f"{path}.{other}", "447700900002"), (f"{path}.{field}", DELETE))
    names = {f"{path}.{field}", f"{path}.{other}"}
    return pytest.param(body, names, id=f"{path}.{other}-for-{field}")


def bad(base: Any, path: str, value: Any, names: Sequence[str] = ()) -> Any:
    """A case that sets `path` to `value`; only `path` is expected unless `names` says more."""
    return pytest.param(edit(base, (path, value)), set(names or [path]), id=f"{path}={value!r:.30}")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(VIBER, id="viber-then-sms"),
        pytest.param(MESSENGER, id="messenger-then-sms"),
        pytest.param(WHATSAPP, id="whatsapp-template-then-sms"),
        pytest.param(MMS, id="mms-then-sms"),
        ok(MMS, "workflow[0].from.number", "55555"),  # a US short code
        ok(MMS, "workflow[0].from.number", "123456"),
        pytest.param(TEN_ITEMS, id="ten-items"),
        pytest.param({"template": "failover", "workflow": [SMS_ITEM]}, id="one-item"),
        ok(VIBER, f"{FAILOVER0}.expiry_time", 15),
        ok(VIBER, f"{FAILOVER0}.expiry_time", 86_400),
        ok(VIBER, f"{FAILOVER0}.expiry_time", 600.0),
        ok(VIBER, "workflow[1].from.number", "Vonage"),
        ok(VIBER, "workflow[1].from.number", "MyCompany1"),
        ok(VIBER, "workflow[1].from.number", "My Company"),
        ok(VIBER, f"{MESSAGE0}.viber_service_msg", {"category": "promotion", "ttl": 30}),
        ok(MESSENGER, f"{MESSAGE0}.messenger", {"category": "message_tag", "tag": "ticket_update"}),
        ok(MESSENGER, CONTENT0, {"type": "file", "file": IMAGE}),
        ok(MESSENGER, f"{CONTENT0}.text", "x" * 640),
        ok(VIBER, f"{CONTENT1}.text", "x" * 1000),
        ok(WHATSAPP, CONTENT0, {"type": "text", "text": "x" * 4096}),
        ok(WHATSAPP, CONTENT0, {"type": "video", "video": IMAGE}),
        ok(MMS, f"{CONTENT0}.image.caption", "A caption"),
    ],
)
def test_valid_requests_are_accepted(body: dict[str, Any]) -> None:
    specs = parse_create_request(body)
    assert [s.channel.value for s in specs] == [item["to"]["type"] for item in body["workflow"]]


def test_viber_then_sms_becomes_two_step_specs() -> None:
    assert parse_create_request(VIBER) == [
        StepSpec(
            channel=Channel.VIBER,
            to={"type": "viber_service_msg", "number": "447700900000"},
            sender={"type": "viber_service_msg", "id": "VIBER_SERVICE_MESSAGE_ID"},
            message={"content": {"type": "text", "text": "This is a Viber Service Message"}},
            condition=Condition.DELIVERED,
            expiry_time=600,
        ),
        StepSpec(
            channel=Channel.SMS,
            to={"type": "sms", "number": "447700900000"},
            sender={"type": "sms", "number": "447700900001"},
            message=SMS_ITEM["message"],
        ),
    ]


def test_an_integral_float_expiry_time_becomes_an_int() -> None:
    expiry_time = parse_create_request(edit(VIBER, (EXPIRY0, 600.0)))[0].expiry_time
    assert (type(expiry_time), expiry_time) == (int, 600)


def test_messenger_then_sms_keeps_the_read_condition() -> None:
    first, last = parse_create_request(MESSENGER)
    assert (first.channel, first.condition, first.expiry_time) == (
        Channel.MESSENGER,
        Condition.READ,
        600,
    )
    assert first.sender == {"type": "messenger", "id": "FB_SENDER_ID"}
    assert first.to == {"type": "messenger", "id": "FB_RECIPIENT_ID"}
    assert (last.condition, last.expiry_time) == (None, None)


def test_whatsapp_template_message_is_passed_on_whole() -> None:
    first = parse_create_request(WHATSAPP)[0]
    assert first.message == WHATSAPP["workflow"][0]["message"]


@pytest.mark.parametrize(
    "body, names",
    [
        # the body and the top level
        pytest.param([VIBER], {"body"}, id="body-is-a-list"),
        pytest.param("failover", {"body"}, id="body-is-a-string"),
        pytest.param(None, {"body"}, id="body-is-null"),
        bad(VIBER, "template", "broadcast"),
        bad(VIBER, "template", DELETE),
        bad(VIBER, "workflow", DELETE),
        bad(VIBER, "workflow", []),
        bad(VIBER, "workflow", VIBER["workflow"][0]),
        pytest.param(ELEVEN_ITEMS, {"workflow"}, id="eleven-items"),
        bad(VIBER, "callback", "https://example.com/status"),
        bad(VIBER, "workflow[1]", "sms"),
        # failover: placement, expiry_time, condition_status
        bad(VIBER, FAILOVER0, DELETE),
        bad(VIBER, "workflow[1].failover", {"expiry_time": 60, "condition_status": "delivered"}),
        bad(VIBER, f"{FAILOVER0}.expiry_time", 14),
        bad(VIBER, f"{FAILOVER0}.expiry_time", 86_401),
        bad(VIBER, f"{FAILOVER0}.expiry_time", "600"),
        bad(VIBER, f"{FAILOVER0}.expiry_time", 600.5),
        bad(VIBER, f"{FAILOVER0}.expiry_time", True),
        bad(VIBER, f"{FAILOVER0}.expiry_time", DELETE),
        bad(VIBER, f"{FAILOVER0}.condition_status", "seen"),
        bad(VIBER, f"{FAILOVER0}.condition_status", DELETE),
        pytest.param(SMS_READ, {f"{FAILOVER0}.condition_status"}, id="sms-read"),
        bad(MMS, f"{FAILOVER0}.condition_status", "read"),
        bad(MMS, "workflow[0].from.number", "5555"),  # too short for a short code
        bad(MMS, "workflow[0].to.number", "55555"),  # short codes send; they don't receive
        # addresses: one channel per item, the field each channel takes, formats
        bad(VIBER, "workflow[1].to.type", "mms"),
        bad(
            edit(VIBER, ("workflow[1].from.type", "rcs")),
            "workflow[1].to.type",
            "rcs",
            ["workflow[1].from.type", "workflow[1].to.type"],
        ),
        bad(VIBER, "workflow[1].to.number", DELETE),
        bad(VIBER, "workflow[1].to.id", "abc"),
        swap(VIBER, "workflow[1].from", "number", "id"),
        swap(VIBER, "workflow[0].from", "id", "number"),
        swap(VIBER, "workflow[0].to", "number", "id"),
        swap(MESSENGER, "workflow[0].to", "id", "number"),
        swap(MESSENGER, "workflow[0].from", "id", "number"),
        swap(WHATSAPP, "workflow[0].to", "number", "id"),
        bad(MESSENGER, "workflow[0].from.id", "x" * 51),
        bad(MESSENGER, "workflow[0].from.id", ""),
        bad(WHATSAPP, "workflow[0].from.number", DELETE),
        bad(WHATSAPP, "workflow[0].from.number", "Vonage"),
        swap(MMS, "workflow[0].from", "number", "id"),
        bad(VIBER, "workflow[1].to.number", "+447700900000"),
        bad(VIBER, "workflow[1].to.number", "00447700900000"),
        bad(VIBER, "workflow[1].to.number", "447700"),
        bad(VIBER, "workflow[1].to.number", "4477009000001234"),
        bad(VIBER, "workflow[1].to.number", "123456789012345"),
        bad(VIBER, "workflow[1].to.number", "12345678"),  # possible only as a local number
        bad(VIBER, "workflow[1].to.number", "4477009"),
        bad(WHATSAPP, "workflow[0].from.number", "12345678"),
        bad(VIBER, "workflow[1].to.number", "Vonage"),
        bad(VIBER, "workflow[1].to.number", 447700900000),
        bad(VIBER, "workflow[1].to.number", None),
        bad(VIBER, "workflow[1].from.number", "MyCompany012"),
        bad(VIBER, "workflow[1].from.number", "Vonage!"),
        bad(VIBER, "workflow[1].from.number", "   "),
        bad(VIBER, "workflow[1].to.name", "Ann"),
        # content: types per channel, the object content.type names, text limits, media
        bad(VIBER, f"{CONTENT1}", {"type": "image", "image": IMAGE}, [f"{CONTENT1}.type"]),
        bad(VIBER, f"{CONTENT1}", {"type": "custom", "custom": {}}, [f"{CONTENT1}.type"]),
        bad(VIBER, f"{CONTENT1}.custom", {"a": 1}),
        bad(MMS, CONTENT0, {"type": "text", "text": "hi"}, [f"{CONTENT0}.type"]),
        bad(MMS, CONTENT0, {"type": "custom", "custom": {}}, [f"{CONTENT0}.type"]),
        bad(WHATSAPP, CONTENT0, {"type": "custom"}, [f"{CONTENT0}.type"]),  # not "custom is required"
        bad(VIBER, CONTENT0, {"type": "audio", "audio": IMAGE}, [f"{CONTENT0}.type"]),
        bad(MESSENGER, CONTENT0, {"type": "template", "template": TEMPLATE}, [f"{CONTENT0}.type"]),
        bad(MMS, f"{CONTENT0}.type", "img"),
        bad(VIBER, f"{CONTENT0}.type", DELETE),
        bad(VIBER, CONTENT0, DELETE),
        bad(VIBER, f"{CONTENT0}.text", DELETE),
        bad(VIBER, f"{CONTENT0}.text", ""),
        bad(VIBER, f"{CONTENT0}.image", IMAGE),
        bad(MMS, f"{CONTENT0}.image", DELETE),
        bad(MESSENGER, f"{CONTENT0}.text", "x" * 641),
        bad(VIBER, f"{CONTENT0}.text", "x" * 1001),
        bad(VIBER, f"{CONTENT1}.text", "x" * 1001),
        bad(WHATSAPP, CONTENT0, {"type": "text", "text": "x" * 4097}, [f"{CONTENT0}.text"]),
        bad(MMS, f"{CONTENT0}.image.url", "ftp://example.com/a.jpg"),
        bad(MMS, f"{CONTENT0}.image.url", "/images/a.jpg"),
        bad(MMS, f"{CONTENT0}.image.url", "https://example.com/" + "a" * 1981),
        bad(MMS, f"{CONTENT0}.image.caption", ""),
        bad(MMS, f"{CONTENT0}.image.caption", "x" * 3001),
        bad(WHATSAPP, CONTENT0, {"type": "audio", "audio": CAPTIONED}, [AUDIO_CAPTION0]),
        bad(WHATSAPP, f"{CONTENT0}.template.parameters", DELETE),
        bad(
            WHATSAPP,
            f"{CONTENT0}.template.parameters",
            [{"value": "x"}],
            [f"{PARAMETERS0}[0].default", f"{PARAMETERS0}[0].value"],
        ),
        bad(
            WHATSAPP,
            CONTENT0,
            {"type": "custom", "custom": []},
            [f"{CONTENT0}.type", f"{CONTENT0}.custom"],
        ),
        # channel blocks
        bad(VIBER, f"{MESSAGE1}.messenger", {"category": "response"}),
        bad(WHATSAPP, f"{MESSAGE0}.viber_service_msg", {"ttl": 60}),
        bad(VIBER, f"{MESSAGE0}.viber_service_msg.category", "bulk"),
        bad(VIBER, f"{MESSAGE0}.viber_service_msg.ttl", 29),
        bad(VIBER, f"{MESSAGE0}.viber_service_msg.ttl", 86_401),
        bad(VIBER, f"{MESSAGE0}.viber_service_msg.ttl", "60"),
        bad(MESSENGER, f"{MESSAGE0}.messenger.category", "message_tag", [TAG0]),
        bad(MESSENGER, f"{MESSAGE0}.messenger.category", "spam"),
        bad(WHATSAPP, f"{MESSAGE0}.whatsapp.policy", "fallback"),
        bad(WHATSAPP, f"{MESSAGE0}.whatsapp.locale", "english"),
        bad(WHATSAPP, f"{MESSAGE0}.whatsapp.locale", "en_GB"),
        # unknown fields, anywhere
        bad(VIBER, "workflow[0].priority", 1),
        bad(VIBER, f"{MESSAGE0}.client_ref", "x"),
        bad(VIBER, f"{CONTENT0}.caption", "x"),
        bad(VIBER, f"{FAILOVER0}.retries", 2),
        bad(WHATSAPP, f"{MESSAGE0}.whatsapp.ttl", 60),
    ],
)
def test_invalid_requests_name_exactly_the_bad_fields(body: Any, names: set[str]) -> None:
    assert set(problems(body)) == names


@pytest.mark.parametrize(
    "body, name, words",
    [
        (SMS_READ, f"{FAILOVER0}.condition_status", "sms cannot report read; use delivered"),
        (
            edit(VIBER, ("workflow[1].failover", {"expiry_time": 60, "condition_status": "read"})),
            "workflow[1].failover",
            "the last message must not have a failover",
        ),
        (edit(VIBER, (EXPIRY0, "600")), EXPIRY0, "not a string"),
        (edit(VIBER, (EXPIRY0, 14)), EXPIRY0, "at least 15"),
        (ELEVEN_ITEMS, "workflow", f"at most {MAX_WORKFLOW_ITEMS} messages"),
        (edit(VIBER, (TO1, "+447700900000")), TO1, "leading +"),
        (edit(VIBER, (FROM1, "Vonage!")), FROM1, "sender id"),
        (
            edit(VIBER, (CONTENT1, {"type": "image", "image": IMAGE})),
            f"{CONTENT1}.type",
            "sms does not support image",
        ),
        (
            edit(VIBER, (f"{CONTENT0}.image", IMAGE)),
            f"{CONTENT0}.image",
            "must not be present when content.type is text",
        ),
        (edit(MESSENGER, (f"{CONTENT0}.text", "x" * 641)), f"{CONTENT0}.text", "640 characters"),
        (
            edit(WHATSAPP, (f"{MESSAGE0}.whatsapp.policy", "fallback")),
            f"{MESSAGE0}.whatsapp.policy",
            "fallback policy is not supported",
        ),
        (edit(VIBER, (f"{MESSAGE1}.messenger", {})), f"{MESSAGE1}.messenger", "only for messenger"),
        (edit(VIBER, ("callback", "x")), "callback", "not a recognised field"),
    ],
)
def test_reasons_say_what_is_wrong(body: Any, name: str, words: str) -> None:
    assert words in problems(body)[name]


CUSTOM = {"type": "custom", "custom": {"kind": "list", "rows": [{"id": "1"}]}}


@pytest.mark.parametrize(
    "body, name, reason",
    [
        (edit(VIBER, (CONTENT1, CUSTOM)), f"{CONTENT1}.type", "sms does not support custom; use text"),
        (edit(MMS, (CONTENT0, CUSTOM)), f"{CONTENT0}.type", "mms does not support custom; use image"),
        (
            edit(VIBER, (CONTENT0, CUSTOM)),
            f"{CONTENT0}.type",
            "viber_service_msg does not support custom; use text, image",
        ),
        (
            edit(MESSENGER, (CONTENT0, CUSTOM)),
            f"{CONTENT0}.type",
            "messenger does not support custom; use text, image, audio, video, file",
        ),
        (
            edit(WHATSAPP, (MESSAGE0, {"content": CUSTOM})),
            f"{CONTENT0}.type",
            "whatsapp does not support custom; use text, image, audio, video, file, template",
        ),
    ],
    ids=["sms", "mms", "viber_service_msg", "messenger", "whatsapp"],
)
def test_custom_content_is_refused_on_every_channel(body: Any, name: str, reason: str) -> None:
    assert problems(body) == {name: reason}


def test_custom_content_is_refused_even_when_the_channel_is_unclear() -> None:
    body = edit(VIBER, ("workflow[1].to.type", "mms"), (CONTENT1, CUSTOM))
    assert problems(body) == {
        "workflow[1].to.type": "must be the same channel as from.type, sms",
        f"{CONTENT1}.type": "no channel supports custom",
    }


def test_every_problem_in_a_request_is_reported() -> None:
    body = edit(
        VIBER_THEN_SMS,
        ("template", "broadcast"),
        ("workflow[0].failover.expiry_time", "600"),  # structural, first item
        ("workflow[0].message.content", {"type": "audio", "audio": IMAGE}),  # rule, same item
        ("workflow[1].from", {"type": "sms", "id": "abc"}),  # rules, second item
        ("workflow[1].message.content.text", "x" * 1001),
    )
    assert list(problems(body)) == [
        "template",
        "workflow[0].failover.expiry_time",
        "workflow[0].message.content.type",
        "workflow[1].from.id",
        "workflow[1].from.number",
        "workflow[1].message.content.text",
    ]


def test_items_of_an_overlong_workflow_are_still_checked() -> None:
    items = [*TEN_ITEMS["workflow"][:-1], edit(SMS_ITEM, ("to.number", "+447700900000")), SMS_ITEM]
    assert set(problems({"template": "failover", "workflow": items})) == {
        "workflow",
        "workflow[9].failover",
        "workflow[9].to.number",
    }


def test_a_flood_of_problems_is_counted_but_only_the_first_hundred_listed() -> None:
    body = {"template": "failover", "workflow": [{"to": {}}] * 500}
    with pytest.raises(RequestInvalid) as caught:
        parse_create_request(body)
    assert len(caught.value.invalid_parameters) == 100
    # the length, then from, to.type, message and failover of each item (the last needs none)
    assert "2000 problem(s), the first 100 listed" in caught.value.detail


def test_problem_detail_counts_the_problems() -> None:
    body = edit(VIBER_THEN_SMS, ("template", "x"), ("workflow[0].failover", DELETE))
    with pytest.raises(RequestInvalid) as caught:
        parse_create_request(body)
    assert "2 problem(s)" in caught.value.detail


# --- body decoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON; charset=UTF-8",
        "application/json;charset=utf8",
        "application/vnd.api+json",
    ],
)
def test_json_content_types_are_accepted(content_type: str) -> None:
    assert decode_json_body(b'{"template": "failover"}', content_type) == {"template": "failover"}


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/jsonp",
    ],
)
def test_other_content_types_are_refused(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        decode_json_body(b"{}", content_type)


def test_body_at_the_limit_is_accepted_and_one_byte_more_refused() -> None:
    at_limit = b"{}".ljust(MAX_BODY_BYTES, b" ")
    assert decode_json_body(at_limit, "application/json") == {}
    with pytest.raises(PayloadTooLarge) as caught:
        decode_json_body(at_limit + b" ", "application/json")
    assert str(MAX_BODY_BYTES) in caught.value.detail


@pytest.mark.parametrize(
    "raw, words",
    [
        (None, "empty"),
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"\xff{}", "UTF-8"),
        (b'{"to": {"number": "447700912345"},', "line 1 column 35"),
        (b'{"expiry_time": NaN}', "NaN"),
        (b"[" * 100_000, "more than 64 deep"),
        (b'{"n": ' + b"1" * 5001 + b"}", "longer than 64 characters at n"),
        (b'{"n": 1e400}', "too large to represent at n"),
        (b'{"text": "\\ud800"}', "surrogate"),
    ],
)
def test_malformed_bodies_are_refused_without_echoing_them(raw: bytes | None, words: str) -> None:
    with pytest.raises(MalformedJson) as caught:
        decode_json_body(raw, "application/json")
    assert words in caught.value.detail
    assert "447700912345" not in caught.value.detail


def test_duplicate_keys_are_refused_naming_the_key_and_where() -> None:
    raw = b'{"workflow": [{"failover": {"expiry_time": 86400, "expiry_time": 15}}]}'
    with pytest.raises(MalformedJson) as caught:
        decode_json_body(raw, "application/json")
    assert caught.value.detail == (
        "The request body is not acceptable JSON: the key(s) 'expiry_time' appear more than once "
        "in workflow[0].failover."
    )


@pytest.mark.parametrize(
    "raw",
    [b'{"n": ' + b"1" * 5001 + b"}", b'{"n": NaN}', b"[" * 2000, b'{"a": 1, "a": 1}', rb'"\udfff"'],
)
def test_no_detail_shows_the_runtimes_internals(raw: bytes) -> None:
    with pytest.raises(MalformedJson) as caught:
        decode_json_body(raw, "application/json")
    for internal in ("sys.", "set_int_max_str_digits", "Recursion", "Error", "utf-8-sig", "Python"):
        assert internal not in caught.value.detail


@pytest.mark.parametrize("raw", [b"[]", b'"failover"', b"null", b"42"])
def test_json_that_is_not_an_object_is_an_invalid_request(raw: bytes) -> None:
    assert problems(decode_json_body(raw, "application/json")) == {"body": "must be a JSON object"}


def test_content_the_channels_provider_cannot_carry_is_refused_at_the_request():
    from chalicelib.api.validation import Carried

    carried = {Channel.VIBER: Carried("viber", frozenset({"text"}))}
    image = edit(
        VIBER, ("workflow[0].message.content", {"type": "image", "image": {"url": "https://example.com/a.png"}})
    )

    with pytest.raises(RequestInvalid) as raised:
        parse_create_request(image, carried)

    assert raised.value.invalid_parameters == [
        {
            "name": "workflow[0].message.content.type",
            "reason": "viber_service_msg is sent through viber, which cannot carry image; use text",
        }
    ]
    assert parse_create_request(VIBER, carried)  # text still goes
    assert parse_create_request(image)  # the contract itself allows it


@pytest.mark.parametrize("kind", ["image", "file"])
def test_a_caption_on_messenger_is_refused_rather_than_silently_dropped(kind):
    media = {"type": kind, kind: {"url": "https://example.com/a.pdf", "caption": "Your invoice"}}
    with pytest.raises(RequestInvalid) as raised:
        parse_create_request(edit(MESSENGER, ("workflow[0].message.content", media)))
    assert raised.value.invalid_parameters == [
        {"name": f"workflow[0].message.content.{kind}.caption", "reason": "is not supported on messenger"}
    ]
    without = {"type": kind, kind: {"url": "https://example.com/a.pdf"}}
    assert parse_create_request(edit(MESSENGER, ("workflow[0].message.content", without)))


# --- text and ids (docs/input-rules.md) -------------------------------------------------------

TEXT_REASON = (
    "must not contain control characters other than tab, line feed and carriage return, "
    "nor the bidi embeddings and overrides U+202A to U+202E"
)
LINE_REASON = (
    "must be one line without control characters or the bidi embeddings and overrides "
    "U+202A to U+202E"
)
ID_REASON = "must be printable ASCII without spaces or control characters"
MESSENGER_ID = "must be a Messenger page or user id: letters, digits, _ and - only"
VIBER_ID = "must be a Viber id: letters, digits, +, /, =, _ and - only"
CAPTIONED_IMAGE = {"type": "image", "image": {"url": "https://example.com/a.png", "caption": "ok"}}


@pytest.mark.parametrize(
    "body, name, reason",
    [
        # message text and every other free text field: C0 (but tab, LF, CR), DEL, C1, bidi overrides
        *[
            (edit(VIBER, (f"{CONTENT0}.text", f"Hello{bad}")), f"{CONTENT0}.text", TEXT_REASON)
            for bad in ["\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\u202e", "\u202d", "\u202a", "\u202b", "\u202c"]
        ],
        (
            edit(MMS, (f"{CONTENT0}.image.caption", "a\x00b")),
            f"{CONTENT0}.image.caption",
            TEXT_REASON,
        ),
        (
            edit(WHATSAPP, (f"{CONTENT0}.template.parameters[0].default", "\u202e1234")),
            f"{CONTENT0}.template.parameters[0].default",
            TEXT_REASON,
        ),
        (edit(WHATSAPP, (f"{CONTENT0}.template.name", "a\nb")), f"{CONTENT0}.template.name", LINE_REASON),
        (
            edit(MESSENGER, (f"{MESSAGE0}.messenger", {"category": "message_tag", "tag": "A\tB"})),
            f"{MESSAGE0}.messenger.tag",
            LINE_REASON,
        ),
        (
            edit(MMS, (f"{CONTENT0}.image.url", "https://example.com/a\x00.png")),
            f"{CONTENT0}.image.url",
            "must be an absolute http or https URL",
        ),
        (
            edit(MMS, (f"{CONTENT0}.image.url", "https://exa\u200bmple.com/a.png")),
            f"{CONTENT0}.image.url",
            "must be an absolute http or https URL",
        ),
        # ids: blank, whitespace, control and format characters, anything not printable ASCII
        *[
            (edit(MESSENGER, ("workflow[0].to.id", bad)), "workflow[0].to.id", ID_REASON)
            for bad in [" ", "\u0000", "12 34", "1234\n", "\u202e1234", "12\u200b34", "１２３"]
        ],
        # ids where they reach a URL (Messenger's page id) or cannot hold it: no traversal
        (edit(MESSENGER, ("workflow[0].from.id", "../../x")), "workflow[0].from.id", MESSENGER_ID),
        (edit(MESSENGER, ("workflow[0].from.id", "me/feed")), "workflow[0].from.id", MESSENGER_ID),
        (edit(MESSENGER, ("workflow[0].to.id", "1%2F2")), "workflow[0].to.id", MESSENGER_ID),
        (edit(VIBER, ("workflow[0].from.id", "../../x")), "workflow[0].from.id", VIBER_ID),
        # numbers and sender ids
        (edit(VIBER, (FROM1, " Vonage")), FROM1, "sender id"),
        (edit(VIBER, (FROM1, "Vonage ")), FROM1, "sender id"),
        (edit(VIBER, (FROM1, "My  Shop\t")), FROM1, "sender id"),
        (edit(VIBER, (TO1, "4477009000\x00")), TO1, "E.164"),
        (edit(VIBER, (TO1, "٤٤٧٧٠٠٩٠٠٠٠٠")), TO1, "E.164"),  # other scripts' digits
    ],
)
def test_control_characters_and_malformed_ids_are_refused(body: Any, name: str, reason: str) -> None:
    found = problems(body)
    assert name in found and reason in found[name], found


@pytest.mark.parametrize(
    "body",
    [
        edit(VIBER, (f"{CONTENT0}.text", "Line one\nline two\r\n\ttabbed")),
        edit(VIBER, (f"{CONTENT0}.text", "👩🏽‍💻 emoji with a zero-width joiner, and עברית with \u200f marks")),
        edit(VIBER, (f"{CONTENT0}.text", "\u2067isolated\u2069 text")),
        edit(VIBER, ("workflow[0].from.id", "VDwa1Y2nuBPCGHagt5SLvg==")),
        edit(VIBER, ("workflow[0].from.id", "a+b/c=")),
        edit(MESSENGER, ("workflow[0].from.id", "1254459154682919")),
        edit(VIBER, (FROM1, "MyShop24")),
        edit(MMS, (CONTENT0, CAPTIONED_IMAGE)),
        edit(MMS, (f"{CONTENT0}.image.url", "https://例え.jp/画像.png")),
    ],
)
def test_ordinary_text_and_ids_are_accepted(body: Any) -> None:
    assert parse_create_request(body)


def test_an_unknown_fields_name_is_echoed_cut_short() -> None:
    found = problems(edit(VIBER, ("x" * 10_000, 1)))
    assert list(found) == ["x" * 64 + "…"]


@pytest.mark.parametrize("value", [1e20, 10**30, -0.0, 600.5, True, [600], {"s": 600}, None])
def test_numbers_and_odd_values_where_an_integer_goes_get_our_reasons(value: Any) -> None:
    reason = problems(edit(VIBER, (EXPIRY0, value)))[EXPIRY0]
    assert "Input should" not in reason and "type=" not in reason
    assert reason.startswith("must ") or reason.startswith("is ")


def test_an_error_type_no_table_names_gets_our_wording_not_pydantics() -> None:
    from chalicelib.api.validation import UNKNOWN_REASON, _translate

    error = {"type": "some_future_type", "loc": ("template",), "msg": "Input should be [type=x, input_value='secret']"}
    assert _translate(error) == ("template", UNKNOWN_REASON)


def test_a_byte_order_mark_is_ignored() -> None:
    # RFC 8259 lets a parser ignore one; Windows tools (PowerShell 5's UTF8 encoding) send it.
    assert decode_json_body(b"\xef\xbb\xbf[]", "application/json") == []
