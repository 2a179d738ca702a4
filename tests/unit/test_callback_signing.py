"""Signed callbacks: what `sign` produces and everything `verify` must refuse."""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from chalicelib.adapters.callback_signing import sign, verify

SECRET = "s" * 64  # long enough for HS512 too, so forging raises no key warning
NOW = datetime(2026, 11, 24, 6, 22, 36, tzinfo=timezone.utc)
BODY = b'{"message_uuid":"m0","status":"delivered","text":"caf\xc3\xa9"}'


def _token(body: bytes = BODY, secret: str = SECRET, now: datetime = NOW) -> str:
    return sign(body, secret, "app-1", "key-1", now)


def _forge(claims: dict, algorithm: str = "HS256", secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _claims(**changes) -> dict:
    claims = {
        "iat": int(NOW.timestamp()),
        "jti": "j",
        "iss": "dispatch",
        "payload_hash": hashlib.sha256(BODY).hexdigest(),
        "application_id": "app-1",
        "api_key": "key-1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_signed_token_carries_the_contract_claims():
    token = _token()
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_iat": False})

    assert header["alg"] == "HS256" and header["typ"] == "JWT"
    assert set(claims) == {"iat", "jti", "iss", "payload_hash", "application_id", "api_key"}
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["iss"] == "dispatch"
    assert claims["payload_hash"] == hashlib.sha256(BODY).hexdigest()
    assert claims["application_id"] == "app-1" and claims["api_key"] == "key-1"


def test_every_token_has_a_fresh_jti():
    def jti(token: str) -> str:
        return jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_iat": False})["jti"]

    assert jti(_token()) != jti(_token())


def test_valid_token_verifies():
    assert verify(f"Bearer {_token()}", BODY, SECRET, NOW) is True


def test_verifies_up_to_max_age_and_within_future_skew():
    token = _token()
    assert verify(f"Bearer {token}", BODY, SECRET, NOW + timedelta(seconds=300))
    assert verify(f"Bearer {token}", BODY, SECRET, NOW - timedelta(seconds=30))


def test_tampered_body_fails():
    tampered = BODY.replace(b"delivered", b"rejected")
    assert verify(f"Bearer {_token()}", tampered, SECRET, NOW) is False


def test_reserialised_body_fails_because_the_hash_is_over_raw_bytes():
    reserialised = json.dumps(json.loads(BODY)).encode()
    assert reserialised != BODY
    assert verify(f"Bearer {_token()}", reserialised, SECRET, NOW) is False


def test_wrong_secret_fails():
    assert verify(f"Bearer {_token()}", BODY, "t" * 64, NOW) is False


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic abc", "bearer-x", "Bearer not.a.jwt", "Bearer ü.ü.ü",
     "Bearer a.b", "Bearer ....", 42],
)
def test_missing_or_garbage_header_fails(header):
    assert verify(header, BODY, SECRET, NOW) is False


def test_token_without_bearer_prefix_fails():
    assert verify(_token(), BODY, SECRET, NOW) is False


def test_bearer_scheme_is_case_insensitive():
    assert verify(f"bearer {_token()}", BODY, SECRET, NOW) is True


def test_alg_none_fails():
    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(_claims())}."
    assert verify(f"Bearer {unsigned}", BODY, SECRET, NOW) is False


def test_hs512_fails_even_with_the_right_secret():
    token = _forge(_claims(), algorithm="HS512")
    assert verify(f"Bearer {token}", BODY, SECRET, NOW) is False


def test_old_iat_fails():
    token = _token(now=NOW - timedelta(seconds=301))
    assert verify(f"Bearer {token}", BODY, SECRET, NOW) is False


def test_custom_max_age_is_honoured():
    token = _token(now=NOW - timedelta(seconds=61))
    assert verify(f"Bearer {token}", BODY, SECRET, NOW, max_age_seconds=60) is False
    assert verify(f"Bearer {token}", BODY, SECRET, NOW, max_age_seconds=120) is True


def test_iat_too_far_in_the_future_fails():
    token = _token(now=NOW + timedelta(seconds=31))
    assert verify(f"Bearer {token}", BODY, SECRET, NOW) is False


@pytest.mark.parametrize("iat", ["1700000000", True, 1.5e9, None])
def test_non_integer_or_missing_iat_fails(iat):
    token = _forge(_claims(iat=iat))
    assert verify(f"Bearer {token}", BODY, SECRET, NOW) is False


def test_payload_hash_mismatch_fails_even_when_correctly_signed():
    token = _forge(_claims(payload_hash=hashlib.sha256(b"other").hexdigest()))
    assert verify(f"Bearer {token}", BODY, SECRET, NOW) is False


@pytest.mark.parametrize("value", [None, 123, ["x"], "é" * 64])
def test_missing_or_malformed_payload_hash_fails(value):
    token = _forge(_claims(payload_hash=value))
    assert verify(f"Bearer {token}", BODY, SECRET, NOW) is False


@pytest.mark.parametrize("iss", ["Vonage", None])
def test_wrong_or_missing_issuer_fails(iss):
    token = _forge(_claims(iss=iss))
    assert verify(f"Bearer {token}", BODY, SECRET, NOW) is False


def test_forged_claims_with_the_right_secret_verify():
    # The negative tests above build tokens the same way; this one proves the helper is sound.
    assert verify(f"Bearer {_forge(_claims())}", BODY, SECRET, NOW) is True


def test_non_bytes_body_fails():
    assert verify(f"Bearer {_token()}", BODY.decode(), SECRET, NOW) is False


def _receiver_snippet():
    """The verification example from the module docstring, which users will copy."""
    import textwrap

    import chalicelib.adapters.callback_signing as module

    doc = module.__doc__
    code = textwrap.dedent(doc[doc.index("::") + 2 : doc.index("Answer 2xx")])
    namespace: dict = {}
    exec(compile(code, "callback_signing-docstring", "exec"), namespace)
    return namespace["is_genuine"]


def test_docstring_receiver_example_accepts_genuine_and_rejects_tampered():
    is_genuine = _receiver_snippet()
    token = sign(BODY, SECRET, "app-1", "key-1", datetime.now(timezone.utc))

    assert is_genuine(f"Bearer {token}", BODY, SECRET) is True
    assert is_genuine(f"Bearer {token}", BODY + b" ", SECRET) is False
    assert is_genuine(f"Bearer {token}", BODY, "t" * 64) is False
    assert is_genuine(token, BODY, SECRET) is False


def test_the_token_names_the_secret_that_signed_it_so_a_receiver_can_roll_over():
    from chalicelib.adapters.callback_signing import key_id, verify_any

    old, new = "old-secret-" + "o" * 32, "new-secret-" + "n" * 32
    body = b'{"status":"delivered"}'
    now = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    token = "Bearer " + sign(body, new, "app-1", "key-1", now)

    assert jwt.get_unverified_header(token[7:])["kid"] == key_id(new) != key_id(old)
    assert verify_any(token, body, [old, new], now)  # both held while rolling over
    assert verify_any(token, body, [new], now)
    assert not verify_any(token, body, [old], now)  # the old one alone cannot check it
    assert not verify_any(token, body + b" ", [old, new], now)
    assert len(key_id(new)) == 16 and new not in key_id(new)


@pytest.mark.parametrize("iat", [10**400, -(10**400)])
def test_an_iat_beyond_any_float_is_refused_not_raised(iat):
    token = _forge(_claims(iat=iat))
    assert verify(f"Bearer {token}", BODY, SECRET, NOW) is False


@pytest.mark.parametrize("header", ["Bearer \ud800.a.b", "Bearer é.é.é", "Bearer " + "a" * 10_000])
def test_verify_any_refuses_unreadable_tokens_without_raising(header):
    from chalicelib.adapters.callback_signing import verify_any

    assert verify_any(header, BODY, [SECRET], NOW) is False
