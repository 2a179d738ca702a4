"""Turning a raw request body into a JSON value, with a problem for each way that can fail.

Checks run cheapest first: media type (415), size (413), then the strict parser every request's
JSON goes through (`chalicelib.strict_json`: UTF-8, syntax, depth, numbers, duplicate keys; 400).
Error details give a position or a path, never the body's values: bodies hold phone numbers and
message text.
"""
from __future__ import annotations

import re
from typing import Any

from chalicelib import strict_json
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
    return _parse(data)


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


def _parse(data: bytes) -> Any:
    try:
        return strict_json.loads(data)
    except strict_json.JsonRefused as exc:
        raise MalformedJson(f"The request body is not acceptable JSON: {exc}.") from None
