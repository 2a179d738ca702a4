"""The aws_sms provider's settings, read once from its secret (or the local environment).

Keys (lower case):
- `configuration_set`: the EUM configuration set every message names; its event destination is
  what sends delivery events to our SNS topic, so without it we would never hear back.
- `topic_arn`: the SNS topic(s) allowed to post to our webhooks, comma-separated (the event
  topic and, if two-way SMS is on, the inbound topic). SNS signs for every topic of every
  account alike, so this list, not the signature, is what keeps a stranger's topic out.
- `origination_identity` (optional): phone number, sender id, pool id or ARN to send from,
  instead of each message's `from`.
- `region` (optional): the EUM region, when it is not the Lambda's own.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class AwsSmsSettings:
    configuration_set: str = ""
    topic_arns: frozenset[str] = frozenset()
    origination_identity: str = ""
    region: str = ""

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, str]) -> AwsSmsSettings:
        def value(key: str) -> str:
            return str(credentials.get(key) or "").strip()

        return cls(
            configuration_set=value("configuration_set"),
            topic_arns=frozenset(arn for arn in _SEPARATORS.split(value("topic_arn")) if arn),
            origination_identity=value("origination_identity"),
            region=value("region"),
        )

    def missing(self) -> list[str]:
        """The required credential keys that are not set, for the start-up warning."""
        missing = [] if self.configuration_set else ["configuration_set"]
        return missing + ([] if self.topic_arns else ["topic_arn"])
