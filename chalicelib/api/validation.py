"""Validation of the dispatch create request, turning a decoded JSON body into step specs.

Two passes, and every problem of both is reported together:
1. structure: the pydantic models in `request_models.py` (types, enums, lengths, unknown fields);
2. channel rules: what depends on the channel or on an item's place in the chain. They read the
   raw body defensively, so they still run on items that failed the structural pass.
A rule problem at or below a field that already failed structurally is dropped: one field, one
reason.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import phonenumbers
from pydantic import ValidationError

from chalicelib.api.errors import RequestInvalid
from chalicelib.api.request_models import (
    ADDRESS_FIELDS,
    CHANNEL_BLOCKS,
    CONTENT_KEYS,
    CONTENT_TYPES,
    MAX_WORKFLOW_ITEMS,
    TEXT_LIMITS,
    Address,
    CreateDispatchRequest,
    WorkflowItem,
)
from chalicelib.domain.model import READ_CAPABLE, Channel, StepSpec

__all__ = ["MAX_WORKFLOW_ITEMS", "parse_create_request"]

#: (name, reason): one entry of a problem's `invalid_parameters`.
Problem = tuple[str, str]

#: Most problems listed in one response: an over-long workflow of junk could otherwise make a
#: response bigger than Lambda may return.
MAX_LISTED_PROBLEMS = 100

# No leading 0: that also refuses the international "00" prefix.
E164_DIGITS = re.compile(r"[1-9][0-9]{6,14}")
#: Letters, digits and inner spaces ("My Company"), as carriers show a sender's name; never
#: a leading or trailing space, so a blank or padded value is refused (docs/input-rules.md).
SMS_SENDER_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ]{0,9}[A-Za-z0-9])?")
NUMBER_REASON = "must be an E.164 phone number without + or 00: 7 to 15 digits, e.g. 447700900000"

#: Sentences for pydantic error types; `{...}` are filled from the error's context.
REASONS: Mapping[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a recognised field",
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be an array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be a whole number",
    "literal_error": "must be {expected}",
    "enum": "must be {expected}",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must be at least {min_length} character(s) long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
    "string_pattern_mismatch": "is not in the form this field takes",
}
#: The reason for an error type no table names: pydantic's own message may quote its internals.
UNKNOWN_REASON = "is not valid here"

TEXT_REASON = (
    "must not contain control characters other than tab, line feed and carriage return, "
    "nor the bidi embeddings and overrides U+202A to U+202E"
)
LINE_REASON = (
    "must be one line without control characters or the bidi embeddings and overrides "
    "U+202A to U+202E"
)
ID_REASON = "must be printable ASCII without spaces or control characters"

#: Sentences for one field's error, where the generic one would not help the client.
FIELD_REASONS: Mapping[tuple[str, str], str] = {
    ("template", "literal_error"): "must be 'failover', the only template",
    ("workflow", "too_short"): "must contain at least one message",
    ("workflow", "too_long"): f"must contain at most {MAX_WORKFLOW_ITEMS} messages",
    ("expiry_time", "int_type"): "must be a whole number of seconds (a JSON integer, not a string)",
    ("url", "string_pattern_mismatch"): "must be an absolute http or https URL",
    ("locale", "string_pattern_mismatch"): "must be a BCP 47 language tag such as en-GB",
    ("policy", "literal_error"): "must be 'deterministic'; the fallback policy is not supported",
    ("text", "string_pattern_mismatch"): TEXT_REASON,
    ("caption", "string_pattern_mismatch"): TEXT_REASON,
    ("default", "string_pattern_mismatch"): TEXT_REASON,
    ("reason", "string_pattern_mismatch"): TEXT_REASON,
    ("name", "string_pattern_mismatch"): LINE_REASON,
    ("tag", "string_pattern_mismatch"): LINE_REASON,
    ("code", "string_pattern_mismatch"): LINE_REASON,
    ("id", "string_pattern_mismatch"): ID_REASON,
}


#: A dispatch_uuid or message_uuid as this service issues them (`str(uuid.uuid4())`, uuid5 for
#: messages): lowercase, canonical. Any other path id names nothing, whatever it holds.
ISSUED_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_issued_uuid(value: str) -> bool:
    """Whether a path's id could be one this service issued. One that cannot is answered 404, as
    an unknown one is: it names no resource, and a 400 would only tell a prober which ids are
    well formed. Checked before any store is read, so no key of any form reaches it."""
    return ISSUED_UUID.fullmatch(value) is not None


def parse_create_request(
    body: Any, carried: Mapping[Channel, Carried] | None = None
) -> list[StepSpec]:
    """The step specs of a create request, or `RequestInvalid` listing every problem found.

    `carried` narrows the contract's content types to what the provider configured for each
    channel can carry, so a message it could never send is refused now, not at send time.
    """
    if not isinstance(body, dict):
        _raise([("body", "must be a JSON object")])
    request, problems = _check_structure(body)
    problems += _uncovered(_check_rules(body, carried or {}), problems)
    if problems or request is None:
        _raise(sorted(problems, key=_item_order))
    specs = [_to_step(item) for item in request.workflow]
    problems = _check_carried(specs, carried or {})
    if problems:
        _raise(problems)
    return specs


@dataclass(frozen=True)
class Carried:
    """What the provider serving a channel can carry (its name, for the error message)."""

    provider: str
    content_types: frozenset[str]
    #: (from, to) address fields when the provider's differ from the contract's: the Viber
    #: bot API, for one, can only write to a Viber user `id`, never to a phone number.
    address: tuple[str, str] | None = None


def _check_carried(specs: Sequence[StepSpec], carried: Mapping[Channel, Carried]) -> list[Problem]:
    problems: list[Problem] = []
    for index, spec in enumerate(specs):
        limit = carried.get(spec.channel)
        kind = spec.message.get("content", {}).get("type")
        if limit is not None and kind not in limit.content_types:
            allowed = ", ".join(sorted(limit.content_types)) or "nothing"
            reason = (
                f"{spec.channel.value} is sent through {limit.provider}, which cannot carry "
                f"{kind}; use {allowed}"
            )
            problems.append((f"workflow[{index}].message.content.type", reason))
    return problems


def _raise(problems: Sequence[Problem]) -> NoReturn:
    unique = list(dict.fromkeys(problems))
    listed = unique[:MAX_LISTED_PROBLEMS]
    which = "listed" if len(listed) == len(unique) else f"the first {len(listed)} listed"
    raise RequestInvalid(
        f"The request parameters did not validate: {len(unique)} problem(s), "
        f"{which} in invalid_parameters.",
        invalid_parameters=[{"name": name, "reason": reason} for name, reason in listed],
    )


def _item_order(problem: Problem) -> int:
    """Groups problems by workflow item (top-level ones first); a stable sort keeps the rest."""
    match = re.match(r"workflow\[(\d+)\]", problem[0])
    return int(match.group(1)) if match else -1


def _to_step(item: WorkflowItem) -> StepSpec:
    failover = item.failover
    return StepSpec(
        channel=Channel(item.to.type),
        to=_dump_address(item.to),
        sender=_dump_address(item.sender),
        message=item.message.model_dump(by_alias=True, exclude_none=True, mode="json"),
        condition=failover.condition_status if failover else None,
        expiry_time=failover.expiry_time if failover else None,
    )


def _dump_address(address: Address) -> dict[str, Any]:
    return address.model_dump(exclude_none=True, mode="json")


# --- structure -------------------------------------------------------------------------------


def _check_structure(body: dict[str, Any]) -> tuple[CreateDispatchRequest | None, list[Problem]]:
    try:
        return CreateDispatchRequest.model_validate(body), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
    problems = [_translate(error) for error in errors]
    # pydantic stops at an over-long list without looking at its items; look at them anyway.
    if any(e["type"] == "too_long" and e["loc"] == ("workflow",) for e in errors):
        for index, item in enumerate(body["workflow"]):
            problems += _check_item_structure(item, index)
    return None, problems


def invalid_parameters(exc: ValidationError) -> list[dict[str, str]]:
    """`invalid_parameters` for a model's errors, in the words every route uses."""
    errors = exc.errors(include_url=False, include_input=False)
    return [{"name": name, "reason": reason} for name, reason in map(_translate, errors)]


def _check_item_structure(item: Any, index: int) -> list[Problem]:
    try:
        WorkflowItem.model_validate(item)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        return [_translate(e, ("workflow", index)) for e in errors]
    return []


def _translate(error: Mapping[str, Any], prefix: tuple[str | int, ...] = ()) -> Problem:
    loc = prefix + tuple(error["loc"])
    field = next((part for part in reversed(loc) if isinstance(part, str)), "")
    template = FIELD_REASONS.get((field, error["type"])) or REASONS.get(error["type"])
    try:
        reason = template.format(**error.get("ctx", {})) if template else UNKNOWN_REASON
    except KeyError:  # a pydantic release that renamed a context key
        reason = UNKNOWN_REASON
    return _path(loc), reason


#: Longest name of an unknown field echoed back: the name is the client's text.
MAX_NAME_SHOWN = 64


def _path(loc: Sequence[str | int]) -> str:
    """`("workflow", 0, "from")` → `workflow[0].from`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{_name(part)}" if path else _name(part))
    return path or "body"


def _name(part: str) -> str:
    return part if len(part) <= MAX_NAME_SHOWN else part[:MAX_NAME_SHOWN] + "…"


def _uncovered(rules: list[Problem], structural: list[Problem]) -> list[Problem]:
    """The rule problems about fields that have no structural problem of their own or above.

    Only `.` descends: a problem with a whole list (too long) says nothing about its items.
    """
    failed = {name for name, _ in structural}

    def covered(name: str) -> bool:
        parts = name.split(".")
        return any(".".join(parts[:end]) in failed for end in range(1, len(parts) + 1))

    return [problem for problem in rules if not covered(problem[0])]


# --- channel rules ---------------------------------------------------------------------------


def _check_rules(body: dict[str, Any], carried: Mapping[Channel, Carried]) -> list[Problem]:
    items = body.get("workflow")
    if not isinstance(items, list):
        return []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            last = index == len(items) - 1
            problems += _check_item(item, f"workflow[{index}]", last, carried)
    return problems


def _check_item(
    item: dict[str, Any], path: str, last: bool, carried: Mapping[Channel, Carried]
) -> list[Problem]:
    problems = _check_failover_place(item, path, last)
    sender, to = _obj(item, "from"), _obj(item, "to")
    problems += _check_address(sender, f"{path}.from", 0, carried)
    problems += _check_address(to, f"{path}.to", 1, carried)
    from_channel, to_channel = _channel(sender.get("type")), _channel(to.get("type"))
    if from_channel and to_channel and from_channel is not to_channel:
        reason = f"must be the same channel as from.type, {from_channel.value}"
        problems.append((f"{path}.to.type", reason))
    # The channel rules below are meaningless until both ends agree on one channel.
    channel = from_channel if from_channel is to_channel else None
    message = _obj(item, "message")
    problems += _check_content(_obj(message, "content"), f"{path}.message.content", channel)
    if channel is not None:
        problems += _check_blocks(message, f"{path}.message", channel)
        problems += _check_condition(_obj(item, "failover"), f"{path}.failover", channel)
    return problems


def _check_failover_place(item: dict[str, Any], path: str, last: bool) -> list[Problem]:
    has_failover = item.get("failover") is not None
    if last and has_failover:
        return [(f"{path}.failover", "the last message must not have a failover")]
    if not last and not has_failover:
        return [(f"{path}.failover", "is required on every message but the last")]
    return []


def _check_condition(failover: dict[str, Any], path: str, channel: Channel) -> list[Problem]:
    if failover.get("condition_status") == "read" and channel not in READ_CAPABLE:
        return [(f"{path}.condition_status", f"{channel.value} cannot report read; use delivered")]
    return []


def _check_address(
    address: dict[str, Any], path: str, side: int, carried: Mapping[Channel, Carried]
) -> list[Problem]:
    """`side` is 0 for `from`, 1 for `to`, indexing `ADDRESS_FIELDS` (or the provider's own)."""
    channel = _channel(address.get("type"))
    if channel is None:
        return []
    limit = carried.get(channel)
    wanted = (limit.address if limit and limit.address else ADDRESS_FIELDS[channel])[side]
    unwanted = "id" if wanted == "number" else "number"
    role = ("sender", "recipient")[side]
    problems: list[Problem] = []
    if unwanted in address:
        reason = f"is not used for the {role} on {channel.value}; use {wanted}"
        problems.append((f"{path}.{unwanted}", reason))
    value = address.get(wanted)
    if value is None:
        problems.append((f"{path}.{wanted}", f"is required for the {role} on {channel.value}"))
    elif wanted == "id" and isinstance(value, str) and not _is_channel_id(channel, value):
        problems.append((f"{path}.id", ID_REASONS[channel]))
    elif wanted == "number" and isinstance(value, str) and not _is_mms_short_code(channel, side, value):
        number_reason = _number_reason(value, sender_id_allowed=channel is Channel.SMS and side == 0)
        problems += [(f"{path}.number", number_reason)] if number_reason else []
    return problems


#: What each channel's ids may hold (docs/input-rules.md). Messenger's page id is a segment of
#: the Graph API URL a message is posted to, so it must never hold `/`, `.` or `%`; Meta's ids
#: are digits, and the letters, `_` and `-` are for placeholders such as FB_SENDER_ID. Viber's
#: user ids are base64 (`+`, `/`, `=`), and only ever travel inside a JSON body.
CHANNEL_IDS: Mapping[Channel, re.Pattern[str]] = {
    Channel.MESSENGER: re.compile(r"[A-Za-z0-9_-]+"),
    Channel.VIBER: re.compile(r"[A-Za-z0-9+/=_-]+"),
}
ID_REASONS: Mapping[Channel, str] = {
    Channel.MESSENGER: "must be a Messenger page or user id: letters, digits, _ and - only",
    Channel.VIBER: "must be a Viber id: letters, digits, +, /, =, _ and - only",
}


def _is_channel_id(channel: Channel, value: str) -> bool:
    pattern = CHANNEL_IDS.get(channel)
    # Any other channel that takes an id: the structural pattern (printable ASCII) suffices.
    return pattern is None or pattern.fullmatch(value) is not None


#: MMS is sent from US short codes (5 or 6 digits), which are not E.164 numbers.
US_SHORT_CODE = re.compile(r"[1-9][0-9]{4,5}")


def _is_mms_short_code(channel: Channel, side: int, value: str) -> bool:
    return channel is Channel.MMS and side == 0 and US_SHORT_CODE.fullmatch(value) is not None


def _number_reason(value: str, sender_id_allowed: bool) -> str | None:
    if sender_id_allowed and SMS_SENDER_ID.fullmatch(value):
        return None
    if _is_possible_number(value):
        return None
    if value.startswith("+"):
        reason = "must be in E.164 format without the leading +, e.g. 447700900000"
    elif value.startswith("00"):
        reason = "must be in E.164 format without the leading 00, e.g. 447700900000"
    else:
        reason = NUMBER_REASON
    if sender_id_allowed:
        reason += ", or an alphanumeric sender id of 1 to 11 letters, digits and inner spaces"
    return reason


def _is_possible_number(value: str) -> bool:
    if not E164_DIGITS.fullmatch(value):
        return False
    try:
        parsed = phonenumbers.parse("+" + value)
    except phonenumbers.NumberParseException:
        return False
    # Not `is_possible_number`, which also passes IS_POSSIBLE_LOCAL_ONLY: numbers too short to
    # dial from abroad, such as 12345678.
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    return bool(reason == phonenumbers.ValidationResult.IS_POSSIBLE)


#: The content types some channel accepts; `custom` is not one.
SUPPORTED_CONTENT = frozenset(kind for kinds in CONTENT_TYPES.values() for kind in kinds)


def _check_content(content: dict[str, Any], path: str, channel: Channel | None) -> list[Problem]:
    kind = content.get("type")
    if not isinstance(kind, str) or kind not in CONTENT_KEYS:
        return []  # the structural pass reports a missing or unknown type
    problems: list[Problem] = []
    if channel is not None and kind not in CONTENT_TYPES[channel]:
        allowed = ", ".join(CONTENT_TYPES[channel])
        problems.append((f"{path}.type", f"{channel.value} does not support {kind}; use {allowed}"))
    elif kind not in SUPPORTED_CONTENT:  # refused whatever the channel turns out to be
        problems.append((f"{path}.type", f"no channel supports {kind}"))
    if content.get(kind) is None and kind in SUPPORTED_CONTENT:
        problems.append((f"{path}.{kind}", f"is required when content.type is {kind}"))
    problems += [
        (f"{path}.{key}", f"must not be present when content.type is {kind}")
        for key in CONTENT_KEYS
        if key != kind and key in content
    ]
    text, limit = content.get("text"), TEXT_LIMITS.get(channel) if channel else None
    if isinstance(text, str) and channel is not None and limit is not None and len(text) > limit:
        problems.append((f"{path}.text", f"must be at most {limit} characters on {channel.value}"))
    media = content.get(kind)
    if channel is Channel.MESSENGER and isinstance(media, dict) and "caption" in media:
        # Messenger attachments have no caption: it would be dropped without a word.
        problems.append((f"{path}.{kind}.caption", "is not supported on messenger"))
    return problems


def _check_blocks(message: dict[str, Any], path: str, channel: Channel) -> list[Problem]:
    problems = [
        (f"{path}.{key}", f"is only for {owner.value} messages, and this one is {channel.value}")
        for key, owner in CHANNEL_BLOCKS.items()
        if key in message and owner is not channel
    ]
    messenger = _obj(message, "messenger") if channel is Channel.MESSENGER else {}
    if messenger.get("category") == "message_tag" and messenger.get("tag") is None:
        problems.append((f"{path}.messenger.tag", "is required when category is message_tag"))
    return problems


def _obj(parent: Mapping[str, Any], key: str) -> dict[str, Any]:
    """`parent[key]` when it is an object, else an empty one: rules must survive any input."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _channel(value: Any) -> Channel | None:
    try:
        return Channel(value)
    except (ValueError, TypeError):
        return None
