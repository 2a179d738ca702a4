"""WhatsApp: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>`. Meta signs no
timestamp, so there is no stale case."""
from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from tests.webhooks.signature_suite import SignatureCase


def _sign(body: bytes, secret: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


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
    sign=_sign,
    secret="whatsapp-app-secret",
    wrong_secret="another-apps-secret",
    signature_headers=("X-Hub-Signature-256",),
    secret_key="app_secret",
)
