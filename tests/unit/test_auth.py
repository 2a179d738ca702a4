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
from tests.fake_applications import InMemoryApplicationRepository, InMemorySecretStore, InMemoryTokenUses

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
        assert assert_rejected(header, apps, caplog) == auth.BAD_LIFETIME

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
        header = rs256(claims_for(alpha, application_id="a" * 1000), alpha.private_key_pem)
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


# --- hostile headers (issue 14, finding 1) -------------------------------------------------------


def assert_refused_without_work(
    header: str, apps: InMemoryApplicationRepository, monkeypatch: pytest.MonkeyPatch, caplog
) -> str:
    """401, and neither a lookup nor any base64 or JWT work was spent on the header."""
    for name in ("get", "get_by_api_key"):
        monkeypatch.setattr(apps, name, lambda *a: pytest.fail("looked up"))
    monkeypatch.setattr(auth, "b64decode", lambda *a, **k: pytest.fail("base64 decoded"))
    monkeypatch.setattr(auth.jwt, "get_unverified_header", lambda *a, **k: pytest.fail("jwt parsed"))
    monkeypatch.setattr(auth.jwt, "decode", lambda *a, **k: pytest.fail("jwt decoded"))
    return assert_rejected(header, apps, caplog)


class TestHostileHeaders:
    @pytest.mark.parametrize(
        "header",
        [
            "Basic é",
            "Basic \u00e9\u00e9\u00e9\u00e9",
            "Basic " + "é" * 4,
            "Bäsic YTpi",
            "Bearer é",
            "Bearer eyJhbGciOiJSUzI1NiJ9.é.c2ln",
            "Bearer \ud800",
            "Basic \ud800\udc00",
            "Basic YTpi\u200b",
            "Basic \u202eYTpi",
            "Basic YTpi\x00",
            "Basic \x00",
            "\x00",
            "Bearer a\x00.b.c",
            "Basic YT\x7fpi",
            "Basic\x0bYTpi",
            "Basic YTpi\r\nX-Injected: 1",
            "Basic\u3000YTpi",
            "\u00a0Basic YTpi",
        ],
        ids=lambda h: h.encode("unicode_escape", "backslashreplace").decode()[:40],
    )
    def test_non_ascii_and_control_characters_are_refused_untouched(
        self, apps, header, monkeypatch, caplog
    ):
        assert assert_refused_without_work(header, apps, monkeypatch, caplog) == auth.MALFORMED_HEADER

    @pytest.mark.parametrize("scheme", ["Basic", "Bearer", "Digest"])
    def test_an_enormous_header_is_refused_before_any_work(self, apps, scheme, monkeypatch, caplog):
        header = f"{scheme} " + "A" * 1_000_000
        assert assert_refused_without_work(header, apps, monkeypatch, caplog) == auth.MALFORMED_HEADER

    def test_the_length_limit_is_just_above_any_real_credential(self, apps, alpha):
        # A Vonage-style token with a long `acl` still fits; one character over the limit does not.
        acl = {"paths": {f"/*/path-{i}/**": {} for i in range(40)}}
        header = rs256(claims_for(alpha, acl=acl), alpha.private_key_pem)
        assert len(header) < auth.MAX_AUTHORIZATION_LENGTH
        assert authenticate(header, apps, NOW).application_id == alpha.application_id
        with pytest.raises(Unauthorized) as raised:
            authenticate("Basic " + "A" * (auth.MAX_AUTHORIZATION_LENGTH - 5), apps, NOW)
        assert raised.value.detail == auth.MALFORMED_HEADER

    @pytest.mark.parametrize(
        "decoded",
        [
            "k\u00e9y:s\u00e9cret".encode("latin-1"),  # latin-1, not UTF-8
            b"\xc3\x28:secret",  # invalid UTF-8
            b"key\x00:secret",
            b"key:sec\x00ret",
            b"key:secret\n",
            b"key\x1b[31m:secret",
            "key:\u202esecret".encode(),
            b"\xed\xa0\x80:secret",  # a UTF-8-encoded surrogate
        ],
    )
    def test_decoded_basic_credentials_must_be_printable_utf8(self, apps, decoded, caplog):
        header = "Basic " + base64.b64encode(decoded).decode()
        assert assert_rejected(header, apps, caplog) == auth.MALFORMED_BASIC

    @pytest.mark.parametrize(
        "credentials",
        ["YTpi YTpi", "YTpi=YTpi", "Y", "YT:pi", "YT\tpi", "=", "YTpi%3D"],
    )
    def test_basic_credentials_must_be_one_base64_token(self, apps, credentials, caplog):
        detail = assert_rejected(f"Basic {credentials}", apps, caplog)
        assert detail in (auth.MALFORMED_BASIC, auth.MALFORMED_HEADER)

    @pytest.mark.parametrize("header", ["Basic", "Basic ", "Bearer", "Bearer   ", "Basic:", "Bearer:x"])
    def test_a_scheme_without_credentials_is_refused(self, apps, header, caplog):
        assert assert_rejected(header, apps, caplog)

    @pytest.mark.parametrize("spacing", ["Basic  {}", "  Basic {}  ", "Basic    {}", "BASIC {}"])
    def test_extra_spaces_around_good_credentials_are_accepted(self, apps, alpha, spacing):
        token = basic(alpha.api_key, alpha.api_secret).split()[1]
        assert authenticate(spacing.format(token), apps, NOW).application_id == alpha.application_id

    def test_a_second_token_after_good_credentials_is_refused(self, apps, alpha, caplog):
        header = basic(alpha.api_key, alpha.api_secret) + " YTpi"
        assert assert_rejected(header, apps, caplog) == auth.MALFORMED_BASIC

    @pytest.mark.parametrize(
        "token",
        ["a.b.c.d", "a..", "..", "a.b", "a b.c", "a.b.c d", "a.b.c=x", "a+b.c.d", "a/b.c.d", "$.$.$"],
    )
    def test_bearer_token_must_be_three_base64url_segments(self, apps, token, caplog):
        assert assert_rejected(f"Bearer {token}", apps, caplog) == auth.MALFORMED_TOKEN

    def test_no_hostile_basic_header_reaches_a_lookup(self, apps, monkeypatch):
        """The work a hostile header can cause is bounded by what happens before the lookup (a
        length check, at most 4 KB of base64): none of these gets as far as the repository."""
        monkeypatch.setattr(apps, "get_by_api_key", lambda key: pytest.fail("looked up"))
        hostile = [
            "Basic é" * 500,
            "Basic " + "A" * (auth.MAX_AUTHORIZATION_LENGTH - 6),
            "Basic " + "A" * 1_000_000,
            "Basic " + base64.b64encode(b"k" * 3000 + b":" + b"s" * 10).decode()[: auth.MAX_AUTHORIZATION_LENGTH - 6],
            "Basic " + "=" * 4000,
            "Basic " + "\x00" * 100_000,
        ]
        for header in hostile:
            with pytest.raises(Unauthorized):
                authenticate(header, apps, NOW)


# --- hostile tokens, validly signed (finding 3) --------------------------------------------------

HOSTILE_TIMES = [
    10**400,
    -(10**400),
    2**63,
    2**1024,
    1e308,
    -1e308,
    -1,
    253402300800,  # 10000-01-01: after any date a datetime can hold
    True,
    False,
    "1700000000",
    "",
    [],
    {},
    [1700000000],
]


class TestHostileClaims:
    @pytest.mark.parametrize("claim", ["iat", "exp", "nbf"])
    @pytest.mark.parametrize("value", HOSTILE_TIMES, ids=repr)
    def test_a_timestamp_that_is_not_a_sane_unix_time_is_refused(self, apps, alpha, claim, value, caplog):
        header = rs256(claims_for(alpha, **{claim: value}), alpha.private_key_pem)
        assert_rejected(header, apps, caplog)

    @pytest.mark.parametrize("claim", ["iat", "exp", "nbf"])
    @pytest.mark.parametrize("literal", ["1" * 400, "1e400", "-1e400", "1" * 5000, "1.5e308", "NaN", "-Infinity"])
    def test_a_number_beyond_floats_in_the_token_json_is_refused(self, apps, alpha, claim, literal, caplog):
        """Numbers pyjwt's JSON parser turns into huge ints, inf, or refuses: signed, all 401."""
        claims = claims_for(alpha)
        claims[claim] = "@@"
        payload = json.dumps(claims).replace('"@@"', literal)
        header = hand_signed({"alg": "RS256", "typ": "JWT"}, payload.encode(), alpha.private_key_pem)
        assert_rejected(header, apps, caplog)

    @pytest.mark.parametrize(
        "changes",
        [
            {"sub": 10**400},
            {"sub": ["x"]},
            {"aud": {"a": 1}},
            {"aud": 10**400},
            {"application_id": 10**400},
            {"application_id": ["x"]},
            {"application_id": ""},
            {"application_id": "\x00"},
        ],
        ids=repr,
    )
    def test_claims_pyjwt_checks_itself_are_refused(self, apps, alpha, changes, caplog):
        payload = json.dumps(claims_for(alpha, **changes)).encode()
        header = hand_signed({"alg": "RS256", "typ": "JWT"}, payload, alpha.private_key_pem)
        assert_rejected(header, apps, caplog)

    @pytest.mark.parametrize(
        "claims, jose",
        [({"iss": 10**400}, {}), ({"iss": {"a": [1]}}, {}), ({}, {"jku": 10**400}), ({}, {"x5c": [None]})],
        ids=repr,
    )
    def test_what_pyjwt_ignores_is_ignored_whatever_it_holds(self, apps, alpha, claims, jose):
        """No issuer or key source is configured, so pyjwt does not look at these: hostile
        values there change nothing (and raise nothing)."""
        payload = json.dumps(claims_for(alpha, **claims)).encode()
        header = hand_signed({"alg": "RS256", "typ": "JWT", **jose}, payload, alpha.private_key_pem)
        assert authenticate(header, apps, NOW).application_id == alpha.application_id

    @pytest.mark.parametrize(
        "extra_header",
        [{"kid": 5}, {"crit": ["b64"], "b64": False}, {"crit": []}, {"crit": ["x"]}, {"b64": False}, {"crit": 10**400}],
        ids=repr,
    )
    def test_hostile_jose_headers_are_refused(self, apps, alpha, extra_header, caplog):
        header = hand_signed(
            {"alg": "RS256", "typ": "JWT", **extra_header},
            json.dumps(claims_for(alpha)).encode(),
            alpha.private_key_pem,
        )
        assert_rejected(header, apps, caplog)

    @pytest.mark.parametrize("raised", [ValueError, TypeError, OverflowError, RecursionError, KeyError])
    @pytest.mark.parametrize("function", ["get_unverified_header", "decode"])
    def test_an_unexpected_error_inside_pyjwt_is_a_401(self, apps, alpha, function, raised, monkeypatch, caplog):
        def failing(*args: Any, **kwargs: Any) -> Any:
            raise raised("pyjwt went wrong")

        header = rs256(claims_for(alpha), alpha.private_key_pem)
        monkeypatch.setattr(auth.jwt, function, failing)
        assert_rejected(header, apps, caplog)

    def test_an_unexpected_error_inside_pyjwts_verified_decode_is_a_401(self, apps, alpha, monkeypatch, caplog):
        real = jwt.decode

        def failing_when_verifying(token: str, *args: Any, **kwargs: Any) -> Any:
            if args:  # the key: the verifying call
                raise OverflowError("pyjwt went wrong")
            return real(token, *args, **kwargs)

        monkeypatch.setattr(auth.jwt, "decode", failing_when_verifying)
        assert_rejected(rs256(claims_for(alpha), alpha.private_key_pem), apps, caplog)


def hand_signed(header: dict[str, Any], payload: bytes, private_pem: str) -> str:
    """An RS256 token over exactly these payload bytes (pyjwt would re-serialise claims)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(payload)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"Bearer {signing_input}.{b64url(signature)}"


# --- lifetime and jti (finding 9) ----------------------------------------------------------------

T = int(NOW.timestamp())


class TestLifetime:
    @pytest.mark.parametrize("age", [0, 600, 899, 900 + 29])
    def test_a_token_without_exp_is_good_for_15_minutes_after_iat(self, apps, alpha, age):
        header = rs256(claims_for(alpha, iat=T - age, exp=None), alpha.private_key_pem)
        assert authenticate(header, apps, NOW).application_id == alpha.application_id

    @pytest.mark.parametrize("age", [900 + 30, 3600, 86399])
    def test_a_token_without_exp_is_refused_after_15_minutes(self, apps, alpha, age, caplog):
        header = rs256(claims_for(alpha, iat=T - age, exp=None), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.EXPIRED

    @pytest.mark.parametrize("lifetime", [1, 900, 3600, 86400])
    def test_a_token_may_say_it_lives_up_to_24_hours(self, apps, alpha, lifetime):
        header = rs256(claims_for(alpha, iat=T - 1, exp=T - 1 + lifetime), alpha.private_key_pem)
        assert authenticate(header, apps, NOW).application_id == alpha.application_id

    @pytest.mark.parametrize("lifetime", [86401, 172800, 10**9, 0, -1, -900])
    def test_a_lifetime_over_24_hours_or_not_positive_is_refused(self, apps, alpha, lifetime, caplog):
        header = rs256(claims_for(alpha, iat=T, exp=T + lifetime), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.BAD_LIFETIME

    def test_a_24_hour_token_expires_after_24_hours(self, apps, alpha, caplog):
        iat = T - 86400 - 30
        header = rs256(claims_for(alpha, iat=iat, exp=iat + 86400), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) == auth.EXPIRED

    def test_float_timestamps_are_numeric_dates_too(self, apps, alpha):
        header = rs256(claims_for(alpha, iat=T - 0.5, exp=T + 899.5, nbf=T - 0.25), alpha.private_key_pem)
        assert authenticate(header, apps, NOW).application_id == alpha.application_id


class TestJti:
    @pytest.mark.parametrize(
        "jti",
        ["", " ", "   ", "a" * 256, "a\x00b", "\x7f", "tab\there", "new\nline", "\u202e", "\ud800", 5, 1.5, True, ["x"], {}],
        ids=repr,
    )
    def test_a_jti_that_is_not_a_short_printable_string_is_refused(self, apps, alpha, jti, caplog):
        header = rs256(claims_for(alpha, jti=jti), alpha.private_key_pem)
        assert assert_rejected(header, apps, caplog) in (auth.BAD_JTI, auth.BAD_CLAIM)

    @pytest.mark.parametrize("jti", ["a", "a" * 255, "63ab15ef-4430-4ba5-8849-9e5ada9922a3", "é-ü", "with space", "#~!"])
    def test_a_short_printable_jti_is_accepted(self, apps, alpha, jti):
        header = rs256(claims_for(alpha, jti=jti), alpha.private_key_pem)
        assert authenticate(header, apps, NOW).application_id == alpha.application_id


class TestSingleUse:
    def test_a_token_is_accepted_once(self, apps, alpha, caplog):
        uses = InMemoryTokenUses()
        header = rs256(claims_for(alpha), alpha.private_key_pem)
        assert authenticate(header, apps, NOW, uses).application_id == alpha.application_id
        assert assert_rejected_with(header, apps, caplog, uses) == auth.TOKEN_USED

    def test_each_token_is_its_own(self, apps, alpha, beta):
        uses = InMemoryTokenUses()
        for creds in (alpha, beta, alpha):
            authenticate(rs256(claims_for(creds), creds.private_key_pem), apps, NOW, uses)
        assert len(uses.recorded) == 3

    def test_the_same_jti_of_two_applications_are_two_tokens(self, apps, alpha, beta):
        uses = InMemoryTokenUses()
        for creds in (alpha, beta):
            authenticate(rs256(claims_for(creds, jti="same"), creds.private_key_pem), apps, NOW, uses)
        assert set(uses.recorded) == {(alpha.application_id, "same"), (beta.application_id, "same")}

    @pytest.mark.parametrize(
        "changes, end",
        [({"exp": T + 300}, T + 300), ({"exp": None}, T + 900), ({"exp": T + 86400}, T + 86400)],
    )
    def test_a_use_is_kept_until_the_token_could_no_longer_be_used(self, apps, alpha, changes, end):
        uses = InMemoryTokenUses()
        authenticate(rs256(claims_for(alpha, iat=T, **changes), alpha.private_key_pem), apps, NOW, uses)
        [until] = uses.recorded.values()
        assert until == datetime.fromtimestamp(end, timezone.utc) + auth.CLOCK_LEEWAY

    @pytest.mark.parametrize(
        "changes",
        [{"exp": T - 31, "iat": T - 600}, {"nbf": T + 31}, {"jti": ""}, {"aud": "x"}, {"iat": T + 31}],
        ids=repr,
    )
    def test_a_refused_token_is_not_recorded(self, apps, alpha, changes, caplog):
        uses = InMemoryTokenUses()
        assert_rejected_with(rs256(claims_for(alpha, **changes), alpha.private_key_pem), apps, caplog, uses)
        assert uses.recorded == {}

    def test_a_token_of_another_key_is_not_recorded(self, apps, alpha, caplog):
        uses = InMemoryTokenUses()
        stranger_pem, _ = generate_key_pair()
        assert_rejected_with(rs256(claims_for(alpha), stranger_pem), apps, caplog, uses)
        assert uses.recorded == {}

    def test_basic_credentials_are_not_single_use(self, apps, alpha):
        uses = InMemoryTokenUses()
        for _ in range(3):
            authenticate(basic(alpha.api_key, alpha.api_secret), apps, NOW, uses)
        assert uses.recorded == {}


def assert_rejected_with(header: str, apps, caplog, uses: InMemoryTokenUses) -> str:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Unauthorized) as raised:
        authenticate(header, apps, NOW, uses)
    assert problem_response(raised.value).status_code == 401
    assert "ERROR" not in caplog.text
    return raised.value.detail


@pytest.mark.parametrize("stored", ["not a key", "private"])
def test_a_stored_key_that_does_not_load_is_a_server_fault_not_a_401(apps, alpha, stored):
    """The catch-all that turns pyjwt's surprises into 401s must not hide our own bad data."""
    import dataclasses

    application = apps.get(alpha.application_id)
    assert application is not None
    pem = alpha.private_key_pem if stored == "private" else stored
    broken = InMemoryApplicationRepository([dataclasses.replace(application, public_key_pem=pem)])
    with pytest.raises(Exception) as raised:
        authenticate(rs256(claims_for(alpha), alpha.private_key_pem), broken, NOW)
    assert not isinstance(raised.value, Unauthorized)
