"""The dispatch bodies the benchmarks send, shared so every section measures the same request."""
from __future__ import annotations

from typing import Any

#: WhatsApp first (delivered within 600 s, or fail over), then SMS: two numbers per message,
#: so validation checks four phone numbers, as a typical dispatch makes it.
TWO_STEPS: dict[str, Any] = {
    "template": "failover",
    "workflow": [
        {
            "from": {"type": "whatsapp", "number": "447700900001"},
            "to": {"type": "whatsapp", "number": "447911123456"},
            "message": {"content": {"type": "text", "text": "Your parcel arrives today"}},
            "failover": {"expiry_time": 600, "condition_status": "delivered"},
        },
        {
            "from": {"type": "sms", "number": "447700900001"},
            "to": {"type": "sms", "number": "447911123456"},
            "message": {"content": {"type": "text", "text": "Your parcel arrives today"}},
        },
    ],
}
