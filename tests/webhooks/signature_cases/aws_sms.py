"""aws_sms: SNS HTTPS notifications, signed by SNS itself rather than with a shared secret.

SNS puts its signature inside the body and names the certificate to check it with
(`SigningCertURL`, an https URL on an SNS host). So here "the secret" is whose key signed: the
body is signed with SNS_KEY, and `sign(body, secret)` decides which certificate AWS "serves" at
that URL: SNS_KEY's ("sns") or a stranger's ("forged"). Which certificate depends on
the secret `sign` is given, so it is put in the process-wide certificate cache the provider reads
before it would fetch (the fetch itself is tested in test_aws_sms_e2e.py).
The "missing signature" attack drops SNS's `x-amz-sns-message-type` header; `topic_arn`, the
list of topics allowed to post, plays the configured secret (without it all is refused).
SNS's Timestamp is inside the signed body, so the stale attack is a body SNS_KEY signed two hours
ago (`stale_body`).

`SnsSigner` is also what the aws_sms unit and end-to-end tests sign with: it builds the string
to sign on its own, from AWS's documentation, so it checks the provider rather than echoing it.
"""
from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from chalicelib.adapters.providers.aws_sms.certificates import PROCESS_CACHE
from tests.webhooks.signature_suite import SignatureCase

REGION = "eu-west-1"
ACCOUNT = "123456789012"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:dispatch-sms-events"
INBOUND_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:dispatch-sms-inbound"


def cert_url(name: str) -> str:
    """An SNS-shaped certificate URL; `name` (letters and digits) keeps tests' URLs apart."""
    return f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-{name}.pem"


class SnsSigner:
    """Stands in for SNS's signing key: an RSA key and a self-signed certificate for it."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .sign(self.key, hashes.SHA256())
        )
        self.pem = certificate.public_bytes(serialization.Encoding.PEM)

    def sign(self, envelope: Mapping[str, Any], version: str = "2") -> dict[str, Any]:
        """`envelope` with SignatureVersion and Signature set as SNS sets them."""
        signed = {**envelope, "SignatureVersion": version}
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(canonical(signed), padding.PKCS1v15(), digest)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def notification(
        self,
        message: Mapping[str, Any] | str,
        *,
        timestamp: datetime,
        url: str,
        topic_arn: str = TOPIC_ARN,
        message_id: str | None = None,
        subject: str | None = None,
        version: str = "2",
    ) -> dict[str, Any]:
        """A signed Notification carrying `message` (an object is sent as its JSON text)."""
        envelope: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": iso(timestamp),
            "SigningCertURL": url,
            "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic_arn}:0f4b1c1e",
        }
        if subject is not None:
            envelope["Subject"] = subject
        return self.sign(envelope, version)


def canonical(envelope: Mapping[str, Any]) -> bytes:
    """AWS's string to sign: "Key\\nValue\\n" for each signed key, in byte order."""
    if envelope["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{envelope[k]}\n" for k in keys if k in envelope).encode()


def iso(moment: datetime) -> str:
    """SNS's Timestamp format, e.g. 2026-11-24T12:00:00.000Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def body_of(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, indent=2).encode()


def headers_for(envelope: Mapping[str, Any]) -> dict[str, str]:
    """The headers SNS sends with a message (SNS-HTTP), as our route receives them."""
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": envelope["Type"],
        "x-amz-sns-message-id": envelope["MessageId"],
        "x-amz-sns-topic-arn": envelope["TopicArn"],
        "User-Agent": "Amazon Simple Notification Service Agent",
    }
    if envelope["Type"] == "Notification":
        headers["x-amz-sns-subscription-arn"] = f"{envelope['TopicArn']}:0f4b1c1e"
    return headers


SNS_KEY = SnsSigner()
FORGED_KEY = SnsSigner()
SIGNERS = {"sns": SNS_KEY, "forged": FORGED_KEY}
CASE_CERT_URL = cert_url("signaturecase")

DELIVERED_EVENT = {
    "eventType": "TEXT_DELIVERED",
    "eventVersion": "1.0",
    "eventTimestamp": 1795521600000,
    "isFinal": True,
    "originationPhoneNumber": "+447700900001",
    "destinationPhoneNumber": "+447911123456",
    "isoCountryCode": "GB",
    "messageId": "5b3c0d1e-7a61-4f4c-9d0e-signaturecase",
    "messageRequestTimestamp": 1795521599000,
    "messageEncoding": "GSM",
    "messageType": "TRANSACTIONAL",
    "messageStatus": "DELIVERED",
    "messageStatusDescription": "Message has been delivered",
    "totalMessageParts": 1,
    "totalMessagePrice": 0.0404,
    "totalCarrierFee": 0.0,
}

BODY = body_of(
    SNS_KEY.notification(DELIVERED_EVENT, timestamp=datetime.now(timezone.utc), url=CASE_CERT_URL)
)


#: Signed by SNS's key, but sent two hours ago: a replay.
TWO_HOURS_AGO = body_of(
    SNS_KEY.notification(
        DELIVERED_EVENT, timestamp=datetime.now(timezone.utc) - timedelta(hours=2), url=CASE_CERT_URL
    )
)


def _sign(body: bytes, secret: str) -> Mapping[str, str]:
    PROCESS_CACHE.put(CASE_CERT_URL, SIGNERS[secret].pem)
    return headers_for(json.loads(body))


CASE = SignatureCase(
    provider="aws_sms",
    credentials={
        "DISPATCH_AWS_SMS_TOPIC_ARN": f"{TOPIC_ARN},{INBOUND_TOPIC_ARN}",
        "DISPATCH_AWS_SMS_CONFIGURATION_SET": "dispatch",
    },
    routing={"sms": "aws_sms"},
    body=BODY,
    sign=_sign,
    secret="sns",
    wrong_secret="forged",
    signature_headers=("x-amz-sns-message-type",),
    stale_body=TWO_HOURS_AGO,
    secret_key="topic_arn",
)
