"""What every provider module's `build(context)` gets: its credentials and the means to call out.

A provider module (one per provider, `chalicelib/adapters/providers/<name>/`) exposes
`build(context: ProviderContext)` returning one object that is both the `ChannelProvider`
(send) and the `ChannelWebhook` (verify, parse, challenge) for that provider. Credentials come
from `provider_credentials`, never from code or config.json.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: (connect, read) seconds for every provider HTTP call: a send must never hang a Lambda.
DEFAULT_TIMEOUT = (3.05, 10.0)


@dataclass(frozen=True)
class ProviderContext:
    #: The provider's settings and secrets, lower-case keys (e.g. "access_token").
    credentials: Mapping[str, str]
    #: A requests.Session (tests hand in a fake one).
    session: Any
    #: Aware UTC now.
    clock: Callable[[], datetime]
    #: boto3.client for AWS-hosted providers, built on first use.
    aws_client: Callable[..., Any]
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
