"""Make moto's TransactWriteItems cost what the items it touches cost, for the local stack.

moto backs up every table a transaction names with a deep copy before it starts, to restore on a
cancellation. As the local stack's table fills, each transaction then costs more than all other
calls together (a copy of thousands of items, under the emulator's one lock), and a failover that
records a send in a transaction waits behind it. This keeps moto's behaviour (every condition is
checked, a cancelled transaction leaves every item as it was) but backs up only the items the
transaction writes.

Used by `scripts/local_stack.py` only; tests run moto as it comes.
"""
from __future__ import annotations

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
