"""Where each provider's credentials live: Secrets Manager on AWS, the environment locally.

On AWS (`DISPATCH_PROVIDER_CREDENTIALS=secretsmanager`, the default) a provider's credentials are
one JSON object in the secret `<DISPATCH_SECRET_PREFIX>/providers/<provider>`, e.g.
`{"access_token": "...", "app_secret": "...", "phone_number_id": "..."}`. Locally
(`DISPATCH_PROVIDER_CREDENTIALS=env`) they are the variables `DISPATCH_<PROVIDER>_<KEY>`, e.g.
`DISPATCH_WHATSAPP_ACCESS_TOKEN`. Keys come back lower-case either way. A provider with no
credentials gets an empty mapping: it refuses every webhook and every send says why.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from chalicelib.service.ports import SecretStore

logger = logging.getLogger(__name__)

SOURCES = ("secretsmanager", "env")


def secret_name(prefix: str, provider: str) -> str:
    return f"{prefix}/providers/{provider}"


class ProviderCredentials:
    def __init__(
        self, source: str, secrets: SecretStore, secret_prefix: str, environ: Mapping[str, str]
    ) -> None:
        if source not in SOURCES:
            raise ValueError(f"credentials source must be one of {SOURCES}, not {source!r}")
        self._source = source
        self._secrets = secrets
        self._prefix = secret_prefix
        self._environ = environ

    def get(self, provider: str) -> dict[str, str]:
        if self._source == "env":
            head = f"DISPATCH_{provider.upper()}_"
            return {
                name[len(head):].lower(): value
                for name, value in self._environ.items()
                if name.startswith(head) and value
            }
        name = secret_name(self._prefix, provider)
        try:
            raw = self._secrets.get(name)
        except KeyError:
            return {}
        try:
            values = json.loads(raw)
        except ValueError:
            values = None
        if not isinstance(values, dict):
            # The name only: the value is a secret.
            logger.error("provider secret is not a JSON object", extra={"secret": name})
            return {}
        return {str(k).lower(): str(v) for k, v in values.items() if v is not None}
