"""Amazon SNS HTTPS messages: the envelope, the string SNS signs, and which URLs are AWS's.

SNS signs each message itself (there is no shared secret): `Signature` is base64 RSA over a
canonical string of the envelope's fields, SHA1 for SignatureVersion 1 and SHA256 for 2, with
the key in the X.509 certificate at `SigningCertURL`. That URL is part of the message, so it is
trusted only when it is an https URL on an SNS host; anything else could serve the forger's
own certificate. (AWS: "Verifying the signatures of Amazon SNS messages".)
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from chalicelib import strict_json

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

#: The fields each message type signs, in the (byte) order SNS puts them in the string.
SIGNED_FIELDS: Mapping[str, tuple[str, ...]] = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    UNSUBSCRIBE_CONFIRMATION: (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}
#: Signed when present, absent from the string otherwise.
OPTIONAL_FIELDS = frozenset({"Subject"})

#: SignatureVersion -> the digest SNS signs with.
SIGNATURE_HASHES: Mapping[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

#: sns.<region>.amazonaws.com, or .amazonaws.com.cn in the China regions.
SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
#: e.g. /SimpleNotificationService-a86cb10b4e1f29c941702d737128f7b6.pem
CERT_PATH = re.compile(r"/SimpleNotificationService-[A-Za-z0-9]+\.pem")


class NotSnsMessage(ValueError):
    """The body is not an SNS message we can check: not JSON, an unknown type, a field missing."""


@dataclass(frozen=True)
class SnsMessage:
    """One SNS HTTPS message, its fields exactly as sent (signatures cover them verbatim)."""

    fields: Mapping[str, str]

    @property
    def type(self) -> str:
        return self.fields["Type"]

    @property
    def message(self) -> str:
        return self.fields["Message"]

    @property
    def message_id(self) -> str:
        return self.fields["MessageId"]

    @property
    def topic_arn(self) -> str:
        return self.fields["TopicArn"]

    @property
    def signing_cert_url(self) -> str:
        return self.fields["SigningCertURL"]

    @property
    def subscribe_url(self) -> str | None:
        return self.fields.get("SubscribeURL")

    @property
    def timestamp(self) -> datetime:
        return _timestamp(self.fields["Timestamp"])


def parse_message(body: bytes) -> SnsMessage:
    """The envelope, with every field its type signs; NotSnsMessage otherwise."""
    try:
        data = strict_json.loads(body)
    except strict_json.JsonRefused:
        # Unsigned as far as anyone can tell: the signature is inside what failed to parse.
        raise NotSnsMessage("body is not acceptable JSON") from None
    if not isinstance(data, dict):
        raise NotSnsMessage("body is not a JSON object")
    kind = data.get("Type")
    if not isinstance(kind, str) or kind not in SIGNED_FIELDS:
        raise NotSnsMessage("not an SNS message type")
    needed = [f for f in SIGNED_FIELDS[kind] if f not in OPTIONAL_FIELDS]
    needed += ["Signature", "SignatureVersion", "SigningCertURL"]
    if any(not isinstance(data.get(name), str) for name in needed):
        raise NotSnsMessage(f"{kind} lacks a signed field")
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    try:
        _timestamp(fields["Timestamp"])
    except ValueError:
        raise NotSnsMessage("Timestamp is not an ISO 8601 time") from None
    return SnsMessage(fields)


def string_to_sign(message: SnsMessage) -> bytes:
    """"Name\\nvalue\\n" for each signed field present, in SIGNED_FIELDS order."""
    parts = []
    for name in SIGNED_FIELDS[message.type]:
        value = message.fields.get(name)
        if value is None and name in OPTIONAL_FIELDS:
            continue
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


def signature_is_valid(message: SnsMessage, public_key: RSAPublicKey) -> bool:
    """Whether `Signature` is the certificate key's PKCS#1 v1.5 signature of the string."""
    algorithm = SIGNATURE_HASHES.get(message.fields["SignatureVersion"])
    if algorithm is None:
        return False
    try:
        signature = base64.b64decode(message.fields["Signature"], validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        # cryptography compares in constant time inside OpenSSL.
        public_key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        return False
    return True


def is_sns_url(url: str) -> bool:
    """https on an SNS host, default port, no user info: somewhere only AWS can answer."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and parts.hostname is not None
        and SNS_HOST.fullmatch(parts.hostname) is not None
        and port in (None, 443)
        and parts.username is None
        and parts.password is None
    )


def is_certificate_url(url: str) -> bool:
    return is_sns_url(url) and CERT_PATH.fullmatch(urlsplit(url).path) is not None


def is_subscribe_url(url: str) -> bool:
    """The ConfirmSubscription call SNS asks us to make, and nothing else on its host."""
    if not is_sns_url(url):
        return False
    query = parse_qs(urlsplit(url).query)
    return query.get("Action") == ["ConfirmSubscription"]


def _timestamp(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment
