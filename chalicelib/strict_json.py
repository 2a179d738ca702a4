"""The one JSON parser for everything a request brings: client bodies, webhook bodies, cursors.

Python's `json` reads more than JSON and fails in ways a caller does not expect: it takes NaN
and Infinity, keeps the last of two equal keys (a proxy that keeps the first then disagrees
with us about what was sent), lets an escaped lone surrogate through to fail later when the
string is stored or sent, reads `1e400` as infinity, raises RecursionError (not ValueError) on
deep nesting and a ValueError that names `sys.set_int_max_str_digits()` on long integers.
`loads` refuses all of these, and anything else that is not a JSON text, with one exception
type, `JsonRefused`, whose message is our own wording and never repeats more than a short
key of the input. docs/input-rules.md states the limits.

Pure: standard library only, so `api` and `adapters` can both import it.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from itertools import accumulate
from typing import Any

#: Deepest nesting of arrays and objects: the deepest payload of any provider is about 10.
MAX_DEPTH = 64
#: Longest number, sign, point and exponent included: a 64-bit id is 20 characters.
MAX_NUMBER_CHARS = 64
#: Most digits in an exponent: `1e999` is as far as a number may be scaled.
MAX_EXPONENT_DIGITS = 3
#: Problems named in one message; the rest are counted.
MAX_LISTED = 5
#: Longest key, and longest path, shown in a message: keys are the sender's text.
MAX_KEY_SHOWN = 40
MAX_PATH_SHOWN = 200

_BOM = "\ufeff"
# A string token, closed or running to the end of the text: it never fails once started, so
# stripping strings stays linear however many escaped quotes a body holds.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
#: Deletes every ASCII character but the four brackets (a regex does it ten times slower).
_ONLY_BRACKETS = str.maketrans("", "", "".join(chr(c) for c in range(128) if chr(c) not in "[]{}"))
_DEEP_RUN = "[" * (MAX_DEPTH + 1)
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# An escape that may decode to a surrogate; when there is none, no string needs checking.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_EXPONENT = re.compile(r"[eE][+-]?([0-9]+)$")

# json's messages, in our words (some name Python codecs).
_SYNTAX: dict[str, str] = {
    "Expecting value": "a value was expected",
    "Expecting property name enclosed in double quotes": "a key in double quotes was expected",
    "Expecting ':' delimiter": "':' was expected",
    "Expecting ',' delimiter": "',' was expected",
    "Unterminated string starting at": "a string is not closed",
    "Invalid control character at": "a string holds an unescaped control character",
    "Invalid \\escape": "a string holds an invalid escape",
    "Invalid \\uXXXX escape": "a string holds an invalid \\u escape",
    "Extra data": "more follows the JSON value",
    "Illegal trailing comma before end of object": "a comma ends an object",
    "Illegal trailing comma before end of array": "a comma ends an array",
}


class JsonRefused(ValueError):
    """The text is not JSON this service accepts; the message says why, in our words."""


class _Refusal:
    """Stands in for a value the parser refused, so the walk can say where it was."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Duplicated(dict[str, Any]):
    """An object that named some keys more than once (the last value is kept, then refused)."""

    repeated: list[str]


def loads(data: bytes | str, *, decimal_floats: bool = False) -> Any:
    """The JSON value of `data` (bytes are UTF-8), or JsonRefused. `decimal_floats` reads
    numbers with a point or an exponent as Decimal, to keep prices exact."""
    text = _text(data)
    if text.startswith(_BOM):  # RFC 8259 lets a parser ignore it, and some Windows tools send one
        text = text[1:]
    _check_depth(text)
    refused: list[object] = []
    try:
        value = json.loads(
            text,
            object_pairs_hook=_objects(refused),
            parse_int=_ints(refused),
            parse_float=_floats(refused, decimal_floats),
            parse_constant=_constants(refused),
        )
    except json.JSONDecodeError as exc:
        reason = _SYNTAX.get(exc.msg, "it is not JSON")
        raise JsonRefused(f"{reason} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError):  # only what the checks above should have caught
        raise JsonRefused("it is not JSON") from None
    # A str may hold a raw surrogate too (decoded bytes cannot: UTF-8 has none).
    if refused or _SURROGATE_ESCAPE.search(text) or (text is data and _SURROGATE.search(text)):
        _check_values(value)
    return value


def _text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        # Strict: overlong forms, encoded surrogates and stray bytes are all errors.
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonRefused(f"it is not UTF-8 (byte {exc.start})") from None


def _check_depth(text: str) -> None:
    """Without recursion: json's own parser recurses once per level."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    brackets = _outside_strings(text).translate(_ONLY_BRACKETS)
    if not brackets.isascii():  # text outside strings that is not JSON's, left to json to refuse
        brackets = _NOT_BRACKET.sub("", brackets)
    # The run of openers finds the usual attack at C speed; the running sum finds the rest.
    if _DEEP_RUN in brackets.replace("{", "[") or _deepest(brackets) > MAX_DEPTH:
        raise JsonRefused(f"it nests arrays and objects more than {MAX_DEPTH} deep")


def _outside_strings(text: str) -> str:
    """`text` without its strings. Without an escaped quote, every quote opens or closes a
    string, and splitting on them is far quicker than the regex that must follow escapes."""
    if '\\"' in text:
        return _STRING.sub("", text)
    return "".join(text.split('"')[::2])


def _deepest(brackets: str) -> int:
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _objects(refused: list[object]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(pairs)
        if len(value) == len(pairs):
            return value
        marked = _Duplicated(value)
        seen: set[str] = set()
        repeated: dict[str, None] = {}
        for key, _ in pairs:
            if key in seen:
                repeated[key] = None
            seen.add(key)
        marked.repeated = list(repeated)
        refused.append(marked)
        return marked

    return hook


def _ints(refused: list[object]) -> Callable[[str], Any]:
    def hook(token: str) -> Any:
        if len(token) > MAX_NUMBER_CHARS:
            return _refuse(refused, f"a number is longer than {MAX_NUMBER_CHARS} characters")
        return int(token)

    return hook


def _floats(refused: list[object], decimal: bool) -> Callable[[str], Any]:
    def hook(token: str) -> Any:
        if len(token) > MAX_NUMBER_CHARS:
            return _refuse(refused, f"a number is longer than {MAX_NUMBER_CHARS} characters")
        exponent = _EXPONENT.search(token)
        if exponent and len(exponent.group(1).lstrip("0")) > MAX_EXPONENT_DIGITS:
            return _refuse(refused, f"a number's exponent has more than {MAX_EXPONENT_DIGITS} digits")
        value = float(token)
        if not math.isfinite(value):
            return _refuse(refused, "a number is too large to represent")
        mantissa = token[: exponent.start()] if exponent else token
        if value == 0 and mantissa.strip("-+0.") != "":
            return _refuse(refused, "a number is too small to represent")
        return Decimal(token) if decimal else value

    return hook


def _constants(refused: list[object]) -> Callable[[str], Any]:
    def hook(name: str) -> Any:
        return _refuse(refused, f"{name} is not a JSON value")

    return hook


def _refuse(refused: list[object], reason: str) -> _Refusal:
    marker = _Refusal(reason)
    refused.append(marker)
    return marker


def _check_values(root: Any) -> None:
    """Every refused value, duplicated key and lone surrogate, each with its path; iterative,
    though the depth is bounded, so the order is the document's."""
    problems: list[str] = []
    found = 0
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        value, path = stack.pop()
        problem = None
        if isinstance(value, _Refusal):
            problem = f"{value.reason} at {_where(path)}"
        elif isinstance(value, str):
            if _SURROGATE.search(value):
                problem = f"a string at {_where(path)} holds a lone UTF-16 surrogate"
        elif isinstance(value, dict):
            if isinstance(value, _Duplicated):
                keys = ", ".join(f"'{_show(k)}'" for k in value.repeated[:MAX_LISTED])
                problem = f"the key(s) {keys} appear more than once in {_where(path)}"
            elif any(_SURROGATE.search(key) for key in value):
                problem = f"a key in {_where(path)} holds a lone UTF-16 surrogate"
            stack += [(value[key], _join(path, key)) for key in reversed(list(value))]
        elif isinstance(value, list):
            stack += [(item, f"{path}[{index}]") for index, item in reversed(list(enumerate(value)))]
        if problem is not None:
            found += 1
            if len(problems) < MAX_LISTED:
                problems.append(problem)
    if problems:
        more = found - len(problems)
        raise JsonRefused("; ".join(problems) + (f"; and {more} more" if more else ""))


def _join(path: str, key: str) -> str:
    shown = _show(key)
    return f"{path}.{shown}" if path else shown


def _where(path: str) -> str:
    if len(path) > MAX_PATH_SHOWN:
        return "…" + path[-MAX_PATH_SHOWN:]
    return path or "the top level"


def _show(key: str) -> str:
    """A key as it may appear in a message: escaped (no raw control characters) and short."""
    shown = json.dumps(key)[1:-1]
    return shown if len(shown) <= MAX_KEY_SHOWN else shown[:MAX_KEY_SHOWN] + "…"
