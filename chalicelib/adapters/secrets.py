"""SecretStore over AWS Secrets Manager, with a short in-process cache.

Every callback is signed with its application's signature secret; without the cache each one
would cost a Secrets Manager call (latency, and $0.05 per 10,000 calls). A cached value can be
up to `ttl_seconds` old in *other* processes after a rotation; `put` refreshes this process's
entry at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code

DEFAULT_TTL_SECONDS = 300.0


class SecretsManagerStore:
    """SecretStore: string secrets by name, cached for `ttl_seconds` per process."""

    def __init__(
        self,
        client: Any,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}

    def get(self, name: str) -> str:
        """The secret's value, at most `ttl_seconds` old; KeyError when it does not exist."""
        cached = self._cache.get(name)
        if cached is not None and self._clock() - cached[1] < self._ttl:
            return cached[0]
        try:
            response = self._client.get_secret_value(SecretId=name)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                self._cache.pop(name, None)
                raise KeyError(name) from None
            raise
        value = response["SecretString"]
        self._remember(name, value)
        return value

    def put(self, name: str, value: str) -> None:
        """Create the secret, or store a new current value if it already exists."""
        try:
            self._client.create_secret(Name=name, SecretString=value)
        except ClientError as error:
            if error_code(error) != "ResourceExistsException":
                raise
            self._client.put_secret_value(SecretId=name, SecretString=value)
        self._remember(name, value)

    def _remember(self, name: str, value: str) -> None:
        self._cache[name] = (value, self._clock())
