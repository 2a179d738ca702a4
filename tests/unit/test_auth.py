"""authenticate(): Basic and JWT RS256 client authentication, and every way it must say no."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import pytest

from chalicelib.api import auth
from chalicelib.api.auth import authenticate
from chalicelib.api.errors import Unauthorized, problem_response
from chalicelib.service.applications import Credentials, create_application, generate_key_pair
from tests.fake_applications import InMemoryApplicationRepository, InMemorySecretStore

# Far from the wall clock on purpose: a check that used the real clock instead of `now` fails.
NOW = datetime(2031, 3, 14, 15, 9, 26, tzinfo=timezone.utc)
PAST_NOW = datetime(2019, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def world() -> tuple[InMemoryApplicationRepository, Credentials, Credentials]:
    apps = InMemoryApplicationRepository()
    secrets = InMemorySecretStore()
    created = [
        create_application(apps, secrets, name, "https://example.com/status", None, NOW, "test")
        for name in ("alpha", "beta")
    ]
    return apps, created[0], created[1]


@pytest.fixture
def apps(world) -> InMemoryApplicationRepository:
    return world[0]


@pytest.fixture
def alpha(world) -> Credentials:
    return world[1]


@pytest.fixture
def beta(world) -> Credentials:
    return world[2]


def basic(api_key: str, api_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()


def claims_for(creds: Credentials, now: datetime = NOW, **changes: Any) -> dict[str, Any]:
    claims = {
        "application_id": creds.application_id,
        "iat": int(now.timestamp()),
        "jti": str(uuid.uuid4()),
        "exp": int(now.timestamp()) + 900,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def rs256(claims: dict[str, Any], private_pem: str, algorithm: str = "RS256") -> str:
    return "Bearer " + jwt.encode(claims, private_pem, algorithm=algorithm)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_built(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None) -> str:
    """A token pyjwt refuses to build: `none`, or HS256 keyed with a public key."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = b""
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"Bearer {signing_input}.{b64url(signature)}"


def assert_rejected(
    header: str | None,
    apps: InMemoryApplicationRepository,
    caplog: pytest.LogCaptureFixture,
    now: datetime = NOW,
    secrets: tuple[str, ...] = (),
) -> str:
    """authenticate() says 401, and neither the answer nor the logs repeat any credential."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Unauthorized) as raised:
        authenticate(header, apps, now)
    error = raised.value
    response = problem_response(error)
    body = json.loads(response.body)
    assert response.status_code == 401
    assert set(body) == {"type", "title", "detail", "instance"}
    assert "WWW-Authenticate" in response.headers
    everything = response.body + caplog.text
    for secret in (*secrets, *(header or "").split()):
        if len(secret) > 8:
            assert secret not in everything
    return error.detail


class TestBasic:
    def test_accepts_the_api_key_and_secret(self, apps, alpha):
        application = authenticate(basic(alpha.api_key, alpha.api_secret), apps, NOW)
        assert application.application_id == alpha.application_id

    def test_scheme_is_case_insensitive(self, apps, alpha):
        header = basic(alpha.api_key, alpha.api_secret).replace("Basic", "bASIC")
        assert authenticate(header, apps, NOW).application_id == alpha.application_id

    def test_wrong_secret_is_refused(self, apps, alpha, beta, caplog):
        detail = assert_rejected(
            basic(alpha.api_key, beta.api_secret), apps, caplog, secrets=(alpha.api_secret,)
        )
        assert detail == auth.BAD_BASIC

    def test_unknown_key_gets_the_same_answer_as_a_wrong_secret(self, apps, alpha, caplog):
        detail = assert_rejected(basic("0123456789abcdef", alpha.api_secret), apps, caplog)
        assert detail == auth.BAD_BASIC

    def test_unknown_key_still_spends_a_constant_time_compare(self, apps, alpha, monkeypatch):
        compared: list[str] = []

        def recording(secret: str, stored_hash: str) -> bool:
            compared.append(stored_hash)
            return True  # even a "match" against the dummy hash must not let anyone in

        monkeypatch.setattr(auth, "secret_matches", recording)
        with pytest.raises(Unauthorized):
            authenticate(basic("0123456789abcdef", alpha.api_secret), apps, NOW)
        assert compared == [auth._DUMMY_SECRET_HASH]

    def test_another_applications_secret_is_refused(self, apps, alpha, beta, caplog):
        assert assert_rejected(basic(beta.api_key, alpha.api_secret), apps, caplog)

    @pytest.mark.parametrize(
        "header",
        [
            "Basic !!!not-base64!!!",
            "Basic " + base64.b64encode(b"no-colon-here").decode(),
            "Basic " + base64.b64encode(b"key-only:").decode(),
            "Basic " + base64.b64encode(b":secret-only").decode(),
            "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
            "Basic",
        ],
    )
    def test_malformed_credentials_are_refused(self, apps, header, caplog):
        assert assert_rejected(header, apps, caplog) == auth.MALFORMED_BASIC

    @pytest.mark.parametrize("header", [None, "", "   "])
    def test_missing_header_is_refused(self, apps, header, caplog):
        assert assert_rejected(header, apps, caplog) == auth.MISSING

    def test_other_schemes_are_refused(self, apps, caplog):
        assert assert_rejected("Digest username=x", apps, caplog) == auth.UNSUPPORTED_SCHEME

    def test_an_overlong_api_key_is_refused_without_a_lookup(self, apps, alpha, monkeypatch, caplog):
        monkeypatch.setattr(apps, "get_by_api_key", lambda key: pytest.fail("looked up"))
        assert assert_rejected(basic("k" * 3000, alpha.api_secret), apps, caplog) == auth.BAD_BASIC


class TestJwt:
    @pytest.mark.parametrize("now", [NOW, PAST_NOW], ids=["future-clock", "past-clock"])
    def test_accepts_a_token_signed_with_the_applications_key(self, apps, alpha, now):
        header = rs256(claims_for(alpha, now), alpha.private_key_pem)
        assert authenticate(header, apps, now).application_id == alpha.application_id

    def test_exp_and_nbf_are_optional(self, apps, alpha):
        header = rs256(claims_for(alpha, exp=None), alpha.private_key_pem)
        assert authenticate(header, apps, NOW).application_id == alpha.application_id

    def test_alg_none_is_refused(self, apps, alpha, caplog):
        header = hand_built({"alg": "none", "typ": "JWT"}, claims_for(alpha), None)
        assert assert_rejected(header, apps, caplog) == auth.BAD_ALGORITHM

    def test_hs256_keyed_with_the_public_key_is_refused(self, apps, alpha, caplog):
        public_pem = apps.get(alpha.application_id).public_key_pem.encode()
        header = hand_built({"alg": "HS256", "typ": "JWT"}, claims_for(alpha), public_pem)
        assert assert_rejected(header, apps, caplog) == auth.BAD_ALGORITHM

    def test_other_asymmetric_algorithms_are_refused(self, apps, alpha, caplog):
        header = rs256(claims_for(alpha), alpha.private_key_pem, algorithm="RS512")
        assert assert_rejected(header, apps, caplog) == auth.BAD_ALGORITHM

    def test_expired_token_is_refused(self, apps, alpha, caplog):
        iat = int(NOW.timestamp()) - 600
        header = rs256(claims_for(alpha, iat=iat, exp=iat + 569), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.EXPIRED

    def test_expiry_allows_30_seconds_of_clock_skew(self, apps, alpha):
        iat = int(NOW.timestamp()) - 600
        header = rs256(claims_for(alpha, iat=iat, exp=iat + 571), alpha.private_key_pem)
        assert authenticate(header, apps, NOW).application_id == alpha.application_id

    def test_token_not_valid_yet_is_refused(self, apps, alpha, caplog):
        header = rs256(claims_for(alpha, nbf=int(NOW.timestamp()) + 31), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.NOT_YET_VALID

    def test_nbf_allows_30_seconds_of_clock_skew(self, apps, alpha):
        header = rs256(claims_for(alpha, nbf=int(NOW.timestamp()) + 29), alpha.private_key_pem)
        assert authenticate(header, apps, NOW).application_id == alpha.application_id

    def test_token_issued_more_than_24_hours_ago_is_refused(self, apps, alpha, caplog):
        iat = int((NOW - timedelta(hours=24, seconds=1)).timestamp())
        header = rs256(claims_for(alpha, iat=iat, exp=iat + 172800), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.TOO_OLD

    def test_token_issued_in_the_future_is_refused(self, apps, alpha, caplog):
        header = rs256(claims_for(alpha, iat=int(NOW.timestamp()) + 31), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.ISSUED_IN_FUTURE

    def test_iat_allows_30_seconds_of_clock_skew(self, apps, alpha):
        header = rs256(claims_for(alpha, iat=int(NOW.timestamp()) + 29), alpha.private_key_pem)
        assert authenticate(header, apps, NOW).application_id == alpha.application_id

    @pytest.mark.parametrize("claim", ["iat", "jti", "application_id"])
    def test_missing_required_claim_is_refused(self, apps, alpha, claim, caplog):
        header = rs256(claims_for(alpha, **{claim: None}), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.MISSING_CLAIMS

    @pytest.mark.parametrize("iat", ["yesterday", True, float("nan"), float("inf")])
    def test_iat_that_is_not_a_timestamp_is_refused(self, apps, alpha, iat, caplog):
        header = rs256(claims_for(alpha, iat=iat), alpha.private_key_pem)
        assert_rejected(header, apps, caplog)

    def test_token_with_an_audience_is_refused(self, apps, alpha, caplog):
        header = rs256(claims_for(alpha, aud="another-service"), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.BAD_CLAIM

    def test_token_signed_with_a_key_of_no_application_is_refused(self, apps, alpha, caplog):
        stranger_pem, _ = generate_key_pair()
        header = rs256(claims_for(alpha), stranger_pem)
        assert assert_rejected(header, apps, caplog) == auth.BAD_TOKEN

    def test_unknown_application_gets_the_same_answer_as_a_bad_signature(
        self, apps, alpha, caplog
    ):
        claims = claims_for(alpha, application_id=str(uuid.uuid4()))
        header = rs256(claims, alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.BAD_TOKEN

    def test_an_overlong_application_id_is_refused_without_a_lookup(
        self, apps, alpha, monkeypatch, caplog
    ):
        monkeypatch.setattr(apps, "get", lambda application_id: pytest.fail("looked up"))
        header = rs256(claims_for(alpha, application_id="a" * 3000), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.BAD_TOKEN

    def test_another_applications_id_signed_with_this_key_is_refused(
        self, apps, alpha, beta, caplog
    ):
        header = rs256(claims_for(alpha, application_id=beta.application_id), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.BAD_TOKEN

    def test_tampered_claims_are_refused(self, apps, alpha, beta, caplog):
        token = rs256(claims_for(alpha), alpha.private_key_pem).split()[1]
        head, _, signature = token.split(".")
        forged = b64url(json.dumps(claims_for(beta)).encode())
        header = f"Bearer {head}.{forged}.{signature}"
        assert assert_rejected(header, apps, caplog) == auth.BAD_TOKEN

    @pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "e30.e30"])
    def test_malformed_token_is_refused(self, apps, token, caplog):
        assert assert_rejected(f"Bearer {token}", apps, caplog) == auth.MALFORMED_TOKEN

    def test_payload_that_is_not_an_object_is_refused(self, apps, alpha, caplog):
        header = b64url(json.dumps({"alg": "RS256"}).encode())
        body = b64url(b"[1, 2]")
        assert assert_rejected(f"Bearer {header}.{body}.c2ln", apps, caplog)
