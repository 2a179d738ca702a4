"""The strict JSON parser every request's JSON goes through: what it refuses, and in what words.

Each refused case names the words its message must hold; every message is also checked for the
runtime's own wording (a Python exception's text must never reach a client).
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from chalicelib import strict_json
from chalicelib.strict_json import MAX_DEPTH, JsonRefused, loads

#: Text of Python's own errors that must never show.
INTERNALS = (
    "sys.",
    "set_int_max_str_digits",
    "Recursion",
    "Error",
    "Exceeds the limit",
    "utf-8-sig",
    "codec",
    "Expecting",
    "decode",
)

REFUSED: list[tuple[str, bytes | str, str]] = [
    # syntax, each with its position
    ("empty", b"", "a value was expected at line 1 column 1"),
    ("blank", b" \n\t", "a value was expected at line 2 column 2"),
    ("truncated", b'{"a": ', "a value was expected at line 1 column 7"),
    ("trailing comma", b"[1,]", "a value was expected at line 1 column 4"),
    ("single quotes", b"{'a': 1}", "a key in double quotes was expected"),
    ("missing colon", b'{"a" 1}', "':' was expected"),
    ("missing comma", b"[1 2]", "',' was expected"),
    ("unclosed string", b'["abc', "a string is not closed"),
    ("raw control character", b'{"a": "x\x00y"}', "unescaped control character"),
    ("raw newline in a string", b'{"a": "x\ny"}', "unescaped control character"),
    ("bad escape", b'{"a": "\\q"}', "invalid escape"),
    ("bad unicode escape", b'{"a": "\\u12"}', "invalid \\u escape"),
    ("two values", b"{} {}", "more follows the JSON value at line 1 column 4"),
    ("comment", b"{} // x", "more follows the JSON value"),
    ("undefined", b"undefined", "a value was expected"),
    ("hex number", b"0x10", "more follows the JSON value"),
    ("leading zero", b"[01]", "',' was expected"),
    ("plus sign", b"[+1]", "a value was expected"),
    # encodings
    ("invalid UTF-8", b'{"a": "\xff"}', "it is not UTF-8 (byte 7)"),
    ("overlong slash", b'{"a": "\xc0\xaf"}', "it is not UTF-8"),
    ("overlong NUL", b'{"a": "\xc0\x80"}', "it is not UTF-8"),
    ("encoded surrogate (CESU-8)", b'{"a": "\xed\xa0\x80"}', "it is not UTF-8"),
    ("UTF-16 with BOM", "{}".encode("utf-16"), "it is not UTF-8"),
    # nesting, checked before the recursive parser runs
    ("100,000 arrays deep", b"[" * 100_000, f"more than {MAX_DEPTH} deep"),
    ("100,000 objects deep", b'{"a":' * 100_000, f"more than {MAX_DEPTH} deep"),
    ("one level too deep", b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), f"more than {MAX_DEPTH} deep"),
    ("too deep by mixing", b'{"a":[' * 33 + b"1" + b"]}" * 33, "deep"),
    ("too deep after a string", b'["]]]]", ' + b"[" * 70 + b"]" * 71, "deep"),
    # numbers
    ("5,001 digits", b'{"n": ' + b"1" * 5001 + b"}", "a number is longer than 64 characters at n"),
    ("65 digits", b"[" + b"9" * 65 + b"]", "longer than 64 characters at [0]"),
    ("long fraction", b"[0." + b"1" * 70 + b"]", "longer than 64 characters"),
    ("overflow", b'{"n": 1e400}', "too large to represent at n"),
    ("negative overflow", b'{"n": -1.8e308}', "too large to represent at n"),
    ("underflow", b'{"n": 1e-400}', "too small to represent at n"),
    ("huge exponent", b'{"n": 1e99999}', "exponent has more than 3 digits"),
    ("huge exponent of zero", b'{"n": 0e-99999}', "exponent has more than 3 digits"),
    ("NaN", b'{"n": NaN}', "NaN is not a JSON value at n"),
    ("Infinity", b"[Infinity]", "Infinity is not a JSON value at [0]"),
    ("-Infinity", b'{"a": {"b": [-Infinity]}}', "-Infinity is not a JSON value at a.b[0]"),
    # duplicate keys, named with where they are
    ("duplicate key", b'{"a": 1, "a": 2}', "the key(s) 'a' appear more than once in the top level"),
    (
        "duplicate key, nested",
        b'{"workflow": [{"failover": {"expiry_time": 86400, "expiry_time": 15}}]}',
        "the key(s) 'expiry_time' appear more than once in workflow[0].failover",
    ),
    ("duplicate keys, several", b'{"a": 1, "b": 2, "a": 3, "b": 4}', "'a', 'b'"),
    ("duplicate key, same value", b'{"a": 1, "a": 1}', "'a'"),
    # lone surrogates (escaped: encoded ones are not UTF-8)
    ("lone high surrogate", rb'{"t": "\ud800"}', "a string at t holds a lone UTF-16 surrogate"),
    ("lone low surrogate", rb'["\udfff"]', "a string at [0] holds a lone UTF-16 surrogate"),
    ("reversed pair", rb'["\ude00\ud83d"]', "lone UTF-16 surrogate"),
    ("surrogate in a key", rb'{"\ud800": 1}', "a key in the top level holds"),
    ("raw surrogate in a str", '["\ud800"]', "a string at [0] holds a lone UTF-16 surrogate"),
]


@pytest.mark.parametrize("raw, words", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_with_our_own_words(raw: bytes | str, words: str) -> None:
    with pytest.raises(JsonRefused) as caught:
        loads(raw)
    message = str(caught.value)
    assert words in message
    for internal in INTERNALS:
        assert internal not in message


ACCEPTED: list[tuple[str, bytes | str, Any]] = [
    ("object", b'{"a": [1, 2.5, "x", true, false, null]}', {"a": [1, 2.5, "x", True, False, None]}),
    ("any JSON value at the top", b'"text"', "text"),
    ("null", b"null", None),
    ("array", b"[]", []),
    ("whitespace around", b" \r\n\t{} \n", {}),
    ("exactly the maximum depth", b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)),
    ("brackets inside strings do not count", json.dumps(["[" * 1000, "{" * 1000]).encode(), ["[" * 1000, "{" * 1000]),
    ("escaped quotes inside strings", b'["\\"[[[[", "\\\\"]', ['"[[[[', "\\"]),
    ("64 digits", b"[" + b"9" * 64 + b"]", [int("9" * 64)]),
    ("minus zero", b"[-0, -0.0]", [0, -0.0]),
    ("exponents", b"[1E2, 1e+2, 1e-300, 0e-999]", [100.0, 100.0, 1e-300, 0.0]),
    ("largest double", b"[1.7976931348623157e308]", [1.7976931348623157e308]),
    ("surrogate pair", rb'["\ud83d\ude00"]', ["\U0001F600"]),
    ("escaped backslash before u", rb'["\\ud800"]', ["\\ud800"]),
    ("non-ASCII", "{\"t\": \"Grüße, 你好 👋\"}".encode(), {"t": "Grüße, 你好 👋"}),
    ("escaped NUL is a character, left to field rules", rb'["\u0000"]', ["\x00"]),
    ("str input", '{"a": 1}', {"a": 1}),
    # RFC 8259 lets a parser ignore one, and Windows tools send it.
    ("UTF-8 byte order mark", b'\xef\xbb\xbf{"a": 1}', {"a": 1}),
    ("byte order mark in a str", '\ufeff{"a": 1}', {"a": 1}),
]


@pytest.mark.parametrize("raw, value", [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted(raw: bytes | str, value: Any) -> None:
    assert loads(raw) == value


def test_decimal_floats_keep_prices_exact_and_ints_stay_ints() -> None:
    value = loads(b'{"price": 0.00581, "fee": 0, "e": 1e-3}', decimal_floats=True)
    assert value == {"price": Decimal("0.00581"), "fee": 0, "e": Decimal("0.001")}
    assert isinstance(value["fee"], int)


@pytest.mark.parametrize("raw", [b"[1e400]", b"[NaN]", b"[1e-400]", b"[1e9999]"])
def test_decimal_floats_are_held_to_the_same_limits(raw: bytes) -> None:
    with pytest.raises(JsonRefused):
        loads(raw, decimal_floats=True)


def test_a_flood_of_problems_is_counted_not_listed() -> None:
    with pytest.raises(JsonRefused) as caught:
        loads(b"[" + b",".join([b"NaN"] * 1000) + b"]")
    message = str(caught.value)
    assert message.count("NaN is not a JSON value") == strict_json.MAX_LISTED
    assert message.endswith(f"and {1000 - strict_json.MAX_LISTED} more")


def test_keys_in_messages_are_escaped_and_cut_short() -> None:
    key = json.dumps("\x1b[2J" + "k" * 1000)
    with pytest.raises(JsonRefused) as caught:
        loads(f'{{"a": {{{key}: 1, {key}: 2}}}}')
    message = str(caught.value)
    assert "\x1b" not in message and "\\u001b" in message
    assert len(message) < 300


def test_the_depth_check_does_not_recurse() -> None:
    # A million levels would overflow any recursive parser's stack (RecursionError).
    for body in (b"[" * 1_000_000, b'{"a":' * 200_000, b'"' + b'\\"' * 200_000):
        with pytest.raises(JsonRefused):
            loads(body)


def test_every_refusal_is_one_exception_type_and_a_value_error() -> None:
    assert issubclass(JsonRefused, ValueError)
    for raw in (b"[" * 5000, b"1" * 5000, b"\xff", b"[NaN]"):
        with pytest.raises(JsonRefused):
            loads(raw)
