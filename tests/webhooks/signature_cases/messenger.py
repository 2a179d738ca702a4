"""Messenger: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>`, as for every
Meta webhook. Meta signs no timestamp, so there is no stale case."""
from __future__ import annotations

from pathlib import Path

from tests.webhooks.meta_signing import meta_signed
from tests.webhooks.signature_suite import SignatureCase

CASE = SignatureCase(
    provider="messenger",
    credentials={
        "DISPATCH_MESSENGER_PAGE_ACCESS_TOKEN": "EAAB-page-token",
        "DISPATCH_MESSENGER_APP_SECRET": "messenger-app-secret",
        "DISPATCH_MESSENGER_VERIFY_TOKEN": "messenger-verify-token",
    },
    routing={"messenger": "messenger"},
    body=(Path(__file__).parents[2] / "events" / "messenger" / "delivery_mids.json").read_bytes(),
    sign=meta_signed,
    secret="messenger-app-secret",
    wrong_secret="another-apps-secret",
    signature_headers=("X-Hub-Signature-256",),
    secret_key="app_secret",
)
