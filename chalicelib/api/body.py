"""Turning a raw request body into a JSON value, with a problem for each way that can fail.

Checks run cheapest first: media type (415), size (413), then UTF-8 and JSON syntax (400).
Error details give a position, never the body itself: bodies hold phone numbers and message text.
"""
from __future__ import annotations

import json
import re
from typing import Any

from chalicelib.api.errors import MalformedJson, PayloadTooLarge, UnsupportedMediaType

#: Largest body accepted: a full 10-message workflow fits many times over.
MAX_BODY_BYTES = 256 * 1024

# application/json, or a structured-syntax suffix such as application/merge-patch+json.
_JSON_MEDIA_TYPE = re.compile(r"application/([a-z0-9!#$&^_.-]+\+)?json")
_UTF8_NAMES = frozenset({"utf-8", "utf8"})


def decode_json_body(raw: bytes | None, content_type: str | None) -> Any:
    """The decoded JSON value of `raw`; any JSON value, so callers still check its shape."""
    _check_content_type(content_type)
    data = raw or b""
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"The request body is {len(data)} bytes; the limit is {MAX_BODY_BYTES} bytes "
            f"({MAX_BODY_BYTES // 1024} KiB)."
        )
    if not data.strip():
        raise MalformedJson("The request body is empty; send a JSON object.")
    return _parse(_decode_utf8(data))


def _check_content_type(content_type: str | None) -> None:
    media_type, *params = (content_type or "").split(";")
    if not _JSON_MEDIA_TYPE.fullmatch(media_type.strip().lower()):
        raise UnsupportedMediaType(
            "Send the request body as JSON with the header Content-Type: application/json."
        )
    for param in params:
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in _UTF8_NAMES:
            raise UnsupportedMediaType("JSON request bodies must be encoded as UTF-8.")


def _decode_utf8(data: bytes) -> str:
    try:
        # utf-8-sig: RFC 8259 lets a parser ignore a byte order mark, and some clients send one.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"The request body is not valid UTF-8 (byte {exc.start}).") from None


def _parse(text: str) -> Any:
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise MalformedJson(f"The request body is not valid JSON: {exc.msg} at {where}.") from None
    except (ValueError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise MalformedJson(f"The request body is not valid JSON: {reason}.") from None
    _check_encodable(value)
    return value


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON and which no channel could carry.
    raise ValueError(f"{name} is not a JSON value")


def _check_encodable(value: Any) -> None:
    # An escaped lone surrogate ("\ud800") parses, then fails when anything stores or sends it.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedJson(
            "The request body is not valid JSON: it escapes an unpaired UTF-16 surrogate."
        ) from None
