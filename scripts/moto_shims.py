"""Make moto's slowest paths cost what they would on AWS, for the local stack.

Each keeps moto's answers exactly and changes only how much work it does to give them, since the
local stack serves every emulated call under one lock and a failover check waits behind them all:

- TransactWriteItems: moto deep-copies every table a transaction names, to restore on a
  cancellation; as the table fills, one transaction costs more than all other calls together.
  Here only the items it writes are backed up (`install_item_backups`).
- Query: moto sorts every item of the table for each Query, of the table or of an index, then
  filters them. Here a table Query reads its one partition and an index Query the items unsorted
  (both are sorted afterwards, as before) (`install_partition_queries`).
- DynamoDB answers: moto's generic serialiser walks the AttributeValue shape, all ten of its
  members, for every attribute of every item it returns: 5 of a GetItem's 8 ms for a 2.7 KB
  item. Here an attribute value already in its wire form is written as it is
  (`install_plain_attribute_values`).
- SQS: moto reads all of a queue's attributes, message counts included, to check each message's
  retention, so a send or receive costs the square of the queue's length. Here the retention is
  read directly (`install_direct_retention`); and a queue's message counts, which every send
  reads, take the time once per count instead of twice per message (`install_queue_counts`).

Used by `scripts/local_stack.py` only; tests run moto as it comes.
"""
from __future__ import annotations

import base64
import copy
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Swapping moto's `copy` module reference is process-wide: one transaction at a time does it.
_swap = threading.Lock()


def install_item_backups() -> None:
    """Patch moto's DynamoDB backend in this process (idempotent)."""
    from moto.dynamodb import models

    backend = models.DynamoDBBackend
    if getattr(backend.transact_write_items, "_item_backups", False):
        return
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups = [_backup(self, request) for request in transact_items]
        try:
            with _tables_not_copied(models):
                original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed([b for b in backups if b]):
                _restore(table, hash_key, range_key, item)
            raise

    transact_write_items._item_backups = True  # type: ignore[attr-defined]
    transact_write_items.__wrapped__ = original  # type: ignore[attr-defined]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def install_partition_queries() -> None:
    """Patch moto's Table.query in this process (idempotent)."""
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "_partition_reads", False):
        return
    original = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs["index_name"] if "index_name" in kwargs else (args[6] if len(args) > 6 else None)
        if index_name:
            candidates = [item for part in self.items.values() for item in _items_of(self, part)]
        else:
            candidates = list(_items_of(self, self.items.get(hash_key, {})))
        self.all_items = lambda: candidates  # what this one query reads instead of the table
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    query._partition_reads = True  # type: ignore[attr-defined]
    query.__wrapped__ = original  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]


def _items_of(table: Any, part: Any) -> list[Any]:
    if not part:
        return []
    return list(part.values()) if table.range_key_attr else [part]


def install_direct_retention() -> None:
    """Patch moto's SQS retention check in this process (idempotent)."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend.is_message_valid_based_on_retention_period, "_direct", False):
        return
    original = SQSBackend.is_message_valid_based_on_retention_period

    def valid(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    valid._direct = True  # type: ignore[attr-defined]
    valid.__wrapped__ = original  # type: ignore[attr-defined]
    SQSBackend.is_message_valid_based_on_retention_period = valid  # type: ignore[method-assign]


def install_queue_counts() -> None:
    """Patch moto's SQS Queue in this process (idempotent)."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Queue

    if getattr(getattr(Queue.messages, "fget", None), "_one_clock_read", False):
        return

    # As moto's Message.visible and Message.delayed, with `now` read once.
    def receivable(messages: list[Any], now: float) -> list[Any]:
        return [m for m in messages if now > m.visible_at and not now < m.delayed_until]

    def delayed(messages: list[Any], now: float) -> int:
        return sum(now < m.delayed_until for m in messages)

    def in_flight(messages: list[Any], now: float) -> int:
        return sum(not now > m.visible_at for m in messages)

    def counted(select: Any) -> property:
        def count(self: Any) -> Any:
            return select(self._messages, unix_time_millis())

        count._one_clock_read = True  # type: ignore[attr-defined]
        return property(count)

    replaced = {
        "messages": receivable,
        "approximate_number_of_messages_delayed": delayed,
        "approximate_number_of_messages_not_visible": in_flight,
    }
    Queue._counts_before_shim = {name: getattr(Queue, name) for name in replaced}  # type: ignore[attr-defined]
    for name, select in replaced.items():
        setattr(Queue, name, counted(select))


def install_plain_attribute_values() -> None:
    """Patch moto's JSON serialiser in this process (idempotent)."""
    from moto.core.serialize import BaseJSONSerializer

    if getattr(BaseJSONSerializer._serialize_type_structure, "_plain_values", False):
        return
    original = BaseJSONSerializer._serialize_type_structure

    def serialize(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if shape.name == "AttributeValue" and key:
            wire = _wire_value(value)
            if wire is not None:
                self._default_serialize(serialized, wire, shape, key)
                return
        original(self, serialized, value, shape, key)

    serialize._plain_values = True  # type: ignore[attr-defined]
    serialize.__wrapped__ = original  # type: ignore[attr-defined]
    BaseJSONSerializer._serialize_type_structure = serialize  # type: ignore[method-assign]


def _wire_value(value: Any) -> Any:
    """`value`, an attribute as moto's items give it ({"S": "x"}, {"M": {...}}...), in the JSON
    DynamoDB sends; None for anything else, which moto's serialiser then handles as before."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    (kind, inner), = value.items()
    if kind in ("S", "N") and isinstance(inner, str):
        return value
    if kind in ("BOOL", "NULL") and isinstance(inner, bool):
        return value
    if kind in ("SS", "NS") and isinstance(inner, list) and all(isinstance(v, str) for v in inner):
        return value
    if kind == "B" and isinstance(inner, (bytes, str)):
        return {"B": _base64(inner)}
    if kind == "BS" and isinstance(inner, list) and all(isinstance(v, (bytes, str)) for v in inner):
        return {"BS": [_base64(v) for v in inner]}
    if kind == "L" and isinstance(inner, list):
        members = [_wire_value(v) for v in inner]
        return None if any(m is None for m in members) else {"L": members}
    if kind == "M" and isinstance(inner, dict):
        fields = {k: _wire_value(v) for k, v in inner.items()}
        return None if any(f is None for f in fields.values()) else {"M": fields}
    return None


def _base64(value: bytes | str) -> str:
    """As moto's serialiser encodes a blob: the bytes, or a str's UTF-8 bytes, in base64."""
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


def _backup(backend: Any, request: dict[str, Any]) -> tuple[Any, Any, Any, Any] | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    kind, operation = next(iter(request.items()))
    table = backend.tables.get(operation.get("TableName"))
    if table is None:
        return None  # moto refuses it itself
    key = operation["Item"] if kind == "Put" else operation.get("Key", {})
    if table.hash_key_attr not in key:
        return None
    hash_key = DynamoType(key[table.hash_key_attr])
    range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
    if table.has_range_key and range_key is None:
        return None
    return table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    if item is None:
        table.delete_item(hash_key, range_key)
    elif range_key is not None:
        table.items[hash_key][range_key] = item
    else:
        table.items[hash_key] = item


@contextmanager
def _tables_not_copied(models: Any) -> Iterator[None]:
    """moto's own backup becomes the table itself: restoring it is then a no-op, and the item
    backups above do the restoring."""
    from moto.dynamodb.models.table import Table

    def deepcopy(value: Any, *args: Any) -> Any:
        return value if isinstance(value, Table) else real.deepcopy(value, *args)

    with _swap:
        real = models.copy
        models.copy = types.SimpleNamespace(deepcopy=deepcopy, copy=real.copy)
        try:
            yield
        finally:
            models.copy = real
