"""SNS signing certificates: fetched from AWS on first use, then kept for the process's life.

A certificate at a given SigningCertURL never changes (AWS publishes a new URL when it rotates),
so one fetch per URL per Lambda container is enough; re-fetching on every notification would
add a round trip to each webhook. The cache is process-wide, like the certificates: services
may be rebuilt, the certificates stay valid. Only URLs `sns.is_certificate_url` accepts are ever
fetched, so a forged message cannot make us call anywhere else.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from chalicelib.adapters.providers.aws_sms import sns

logger = logging.getLogger(__name__)

#: A PEM certificate is ~2 KB; anything much bigger is not one.
MAX_CERTIFICATE_BYTES = 16_384
#: SNS uses a handful of certificates per region; this bounds what a flood of distinct (but
#: AWS-hosted and real) URLs could make us keep.
MAX_CACHED = 32


class CertificateRefused(ValueError):
    """The URL is not an SNS certificate URL, or what it serves is not an RSA certificate."""


class CertificateUnavailable(RuntimeError):
    """AWS could not be reached just now; the webhook answers 5xx so SNS retries."""


class CertificateCache:
    """Public keys by certificate URL, oldest dropped first past `MAX_CACHED`."""

    def __init__(self, limit: int = MAX_CACHED) -> None:
        self._keys: OrderedDict[str, RSAPublicKey] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, url: str) -> RSAPublicKey | None:
        with self._lock:
            return self._keys.get(url)

    def put(self, url: str, pem: bytes) -> RSAPublicKey:
        """Remember the certificate `pem` as the one at `url`; CertificateRefused if it is not
        an RSA certificate."""
        key = public_key(pem)
        with self._lock:
            self._keys[url] = key
            while len(self._keys) > self._limit:
                self._keys.popitem(last=False)
        return key


#: The one cache every aws_sms provider of this process shares.
PROCESS_CACHE = CertificateCache()


class SigningCertificates:
    def __init__(self, session: Any, timeout: Any, cache: CertificateCache = PROCESS_CACHE) -> None:
        self._session = session
        self._timeout = timeout
        self._cache = cache

    def public_key(self, url: str) -> RSAPublicKey:
        """The key of the certificate at `url`: cached, or fetched through the session."""
        if not sns.is_certificate_url(url):
            raise CertificateRefused("SigningCertURL is not an https SNS certificate URL")
        cached = self._cache.get(url)
        if cached is not None:
            return cached
        try:
            response = self._session.get(url, timeout=self._timeout)
        except requests.RequestException as exc:
            raise CertificateUnavailable(f"SNS certificate fetch failed: {type(exc).__name__}") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise CertificateUnavailable(f"SNS certificate fetch answered {status}")
        if status != 200:
            # AWS has no such certificate: the message names one it was not signed with.
            raise CertificateRefused(f"SNS certificate fetch answered {status}")
        key = self._cache.put(url, bytes(response.content))
        logger.info("sns signing certificate fetched", extra={"url": url})
        return key


def public_key(pem: bytes) -> RSAPublicKey:
    if len(pem) > MAX_CERTIFICATE_BYTES:
        raise CertificateRefused("SNS certificate is too large")
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CertificateRefused("SigningCertURL did not serve a PEM certificate") from None
    key = certificate.public_key()
    if not isinstance(key, RSAPublicKey):
        raise CertificateRefused("SNS certificate key is not RSA")
    return key
