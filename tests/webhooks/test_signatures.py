"""Every webhook route against the same attacks: it accepts only what its provider signed.

Each provider module in `signature_cases/` declares a `SignatureCase`. For each: a correctly
signed body is accepted (200); a tampered body, a wrong secret, a missing signature, a stale
one (where the scheme carries a time) and a deployment with no secret configured are all 401.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest

from tests.webhooks import signature_cases
from tests.webhooks.signature_suite import SignatureCase
from tests.webhooks.stack import ScriptedSession, post_webhook, provider_stack

CASES: list[SignatureCase] = [
    importlib.import_module(f"{signature_cases.__name__}.{info.name}").CASE
    for info in pkgutil.iter_modules(signature_cases.__path__)
]


def _run(table_name: str, case: SignatureCase, body: bytes, headers: Any, credentials=None):
    session = case.session() if case.session else ScriptedSession()
    with provider_stack(table_name, case.routing, credentials or case.credentials, session) as stack:
        return post_webhook(stack, case.provider, case.kind, body, headers)


def _tampered(body: bytes) -> bytes:
    # One byte changed inside the JSON, so the body still parses.
    index = body.index(b'"') + 1
    return body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]


ids = [case.provider for case in CASES]


def test_every_provider_has_a_case():
    from chalicelib.bootstrap import PROVIDER_MODULES

    assert sorted(ids) == sorted(name for name in PROVIDER_MODULES if _implemented(name))


def _implemented(name: str) -> bool:
    from chalicelib.bootstrap import PROVIDER_MODULES

    return importlib.util.find_spec(PROVIDER_MODULES[name]) is not None


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_correctly_signed_webhook_is_accepted(table_name, case):
    response = _run(table_name, case, case.body, case.sign(case.body, case.secret))
    assert response.status_code == 200, response.body


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_tampered_body_is_refused(table_name, case):
    headers = case.sign(case.body, case.secret)
    response = _run(table_name, case, _tampered(case.body), headers)
    assert response.status_code == 401


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_wrong_secret_is_refused(table_name, case):
    response = _run(table_name, case, case.body, case.sign(case.body, case.wrong_secret))
    assert response.status_code == 401


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_missing_signature_is_refused(table_name, case):
    headers = {
        k: v
        for k, v in case.sign(case.body, case.secret).items()
        if k.lower() not in {h.lower() for h in case.signature_headers}
    }
    response = _run(table_name, case, case.body, headers)
    assert response.status_code == 401


STALE = [c for c in CASES if c.sign_stale or c.stale_body]


@pytest.mark.parametrize("case", STALE, ids=[c.provider for c in STALE])
def test_a_replayed_old_signature_is_refused(table_name, case):
    if case.stale_body is not None:
        body, headers = case.stale_body, case.sign(case.stale_body, case.secret)
    else:
        assert case.sign_stale is not None
        body, headers = case.body, case.sign_stale(case.body, case.secret)
    response = _run(table_name, case, body, headers)
    assert response.status_code == 401


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_provider_with_no_secret_configured_refuses_everything(table_name, case):
    credentials = {
        k: v for k, v in case.credentials.items() if k != f"DISPATCH_{case.provider.upper()}_{case.secret_key.upper()}"
    }
    response = _run(table_name, case, case.body, case.sign(case.body, case.secret), credentials)
    assert response.status_code == 401
