"""How Vonage names channels and people, and our keys for them.

Vonage v1 flattens the v0.1 `{type, number|id}` addresses to bare strings and calls the Viber
channel `viber_service` where the Dispatch contract says `viber_service_msg`. The user's address
comes back in a status's `to` and an inbound message's `from`, in the form we sent it (E.164
digits without `+` for numbers, the page-scoped id for Messenger).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.model import Channel

#: Our channel → Vonage Messages v1 `channel`.
VONAGE_CHANNELS: Mapping[Channel, str] = {
    Channel.SMS: "sms",
    Channel.MMS: "mms",
    Channel.WHATSAPP: "whatsapp",
    Channel.MESSENGER: "messenger",
    Channel.VIBER: "viber_service",
}

#: Per channel, the v0.1 address field of (our end, the user's end): Viber sends from a service
#: id to a phone number, Messenger between ids, the rest between numbers. (The API's
#: validation holds the same table; adapters do not import the API layer.)
ADDRESS_FIELDS: Mapping[Channel, tuple[str, str]] = {
    Channel.SMS: ("number", "number"),
    Channel.MMS: ("number", "number"),
    Channel.WHATSAPP: ("number", "number"),
    Channel.MESSENGER: ("id", "id"),
    Channel.VIBER: ("id", "number"),
}

#: Vonage `channel` in a webhook → ours. The contract's name is accepted too, for a webhook
#: configured as v0.1.
CHANNELS_FROM_VONAGE: Mapping[str, Channel] = {
    **{name: channel for channel, name in VONAGE_CHANNELS.items()},
    "viber_service_msg": Channel.VIBER,
}


def address_value(address: Any) -> str | None:
    """A v1 address (a string) or a v0.1 one (`{type, number|id}`) as a bare string."""
    if isinstance(address, str):
        return address or None
    if isinstance(address, Mapping):
        value = address.get("number") or address.get("id")
        return value if isinstance(value, str) and value else None
    return None


def recipient_key(channel: Channel, address: str) -> str:
    """`whatsapp:447700900000`: the prefix makes one number on two channels two recipients.

    A leading `+` is dropped for number channels, should Vonage ever report one, so the key a
    webhook computes still equals the one the send stored.
    """
    field = ADDRESS_FIELDS[channel][1]
    value = address.lstrip("+") if field == "number" else address
    return f"{channel.value}:{value}"


def v01_address(channel: Channel, value: str, *, side: int) -> dict[str, str]:
    """`{type, number|id}` as the contract writes it; `side` 0 is our end, 1 the user's."""
    return {"type": channel.value, ADDRESS_FIELDS[channel][side]: value}
