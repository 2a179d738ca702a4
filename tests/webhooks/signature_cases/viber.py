"""Viber: X-Viber-Content-Signature = hex HMAC-SHA256(auth_token, raw body).

The time Viber's freshness check reads is inside the signed body (`timestamp`, ms), so the stale
attack is a correctly signed body stamped two hours ago (`stale_body`).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from tests.webhooks.signature_suite import SignatureCase

TOKEN = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"


def sign(body: bytes, secret: str) -> Mapping[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Viber-Content-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


# Stamped at import: the suite's stack runs on the wall clock, and Viber's window is an hour.
def _delivered(at_ms: int) -> bytes:
    return json.dumps(
        {
            "event": "delivered",
            "timestamp": at_ms,
            "message_token": 4912661846655238145,
            "user_id": "01234567890A=",
        }
    ).encode()


BODY = _delivered(int(time.time() * 1000))
TWO_HOURS_AGO = _delivered(int((time.time() - 7200) * 1000))

CASE = SignatureCase(
    provider="viber",
    credentials={"DISPATCH_VIBER_AUTH_TOKEN": TOKEN, "DISPATCH_VIBER_SENDER_NAME": "Acme"},
    routing={"viber_service_msg": "viber"},
    body=BODY,
    sign=sign,
    secret=TOKEN,
    wrong_secret="4453b6ac1s345678-e02c5f12174805f9-not-this-bot",
    signature_headers=("X-Viber-Content-Signature",),
    stale_body=TWO_HOURS_AGO,
    secret_key="auth_token",
)
