"""WhatsApp: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>`. Meta signs no
timestamp, so there is no stale case."""
from __future__ import annotations

from pathlib import Path

from tests.webhooks.meta_signing import meta_signed
from tests.webhooks.signature_suite import SignatureCase

CASE = SignatureCase(
    provider="whatsapp",
    credentials={
        "DISPATCH_WHATSAPP_ACCESS_TOKEN": "EAAG-token",
        "DISPATCH_WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "DISPATCH_WHATSAPP_APP_SECRET": "whatsapp-app-secret",
        "DISPATCH_WHATSAPP_VERIFY_TOKEN": "whatsapp-verify-token",
    },
    routing={"whatsapp": "whatsapp"},
    body=(Path(__file__).parents[2] / "events" / "whatsapp" / "status_delivered.json").read_bytes(),
    sign=meta_signed,
    secret="whatsapp-app-secret",
    wrong_secret="another-apps-secret",
    signature_headers=("X-Hub-Signature-256",),
    secret_key="app_secret",
)
