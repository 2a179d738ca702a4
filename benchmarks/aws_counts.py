"""Every AWS call the service makes, counted through botocore's own event hooks, and for DynamoDB
the request units each call consumes.

moto reports no consumed capacity, and asking DynamoDB for it (`ReturnConsumedCapacity`) would
change the very calls being measured. So the units are computed the way DynamoDB's documentation
defines them, from the sizes of the items each call touched, read back from moto with a client of
our own that nobody counts:

- item size: attribute names plus values (strings and binaries by bytes, numbers 1 byte per two
  significant digits plus 1, maps and lists 3 bytes plus 1 per element);
- a write costs 1 unit per KB of the larger of the item before and after (a failed condition
  charges the item as it stood, or the new item when there was none); a transactional write
  twice that;
- a write also costs its global secondary indexes: 1 unit per KB of the projected entry for each
  index whose entry appears, disappears or changes, 2 when the index key moves (a delete and a
  put); never doubled by a transaction;
- a read costs 1 unit per 4 KB read (a Query sums every item it read, before any filter or
  projection), half when eventually consistent (always, on an index); a GetItem that finds
  nothing still costs the minimum.
"""
from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
#: The table's own key attributes (`chalicelib.adapters.dynamodb_table`).
TABLE_KEYS = ("pk", "sk")


@dataclass(frozen=True)
class Call:
    service: str  #: botocore's service name: dynamodb, sqs, stepfunctions, scheduler...
    operation: str  #: GetItem, SendMessage, StartExecution...
    read_units: float = 0.0
    write_units: float = 0.0


@dataclass
class OperationCalls:
    """What one operation (a request, a check, a drain...) cost in AWS calls, units and logs."""

    name: str
    calls: list[Call] = field(default_factory=list)
    #: DynamoDB request units, the sum over `calls` once measured.
    read_units: float = 0.0
    write_units: float = 0.0
    #: Bytes the service logged meanwhile (JSON lines through `chalicelib.logs`).
    log_bytes: int = 0
    #: Wall time in this process, minus the time spent measuring it.
    seconds: float = 0.0

    def count(self, service: str) -> int:
        return sum(1 for c in self.calls if c.service == service)

    def services(self) -> list[str]:
        return sorted({c.service for c in self.calls})

    def operations(self, service: str) -> Counter[str]:
        return Counter(c.operation for c in self.calls if c.service == service)

    def breakdown(self, service: str) -> str:
        """"GetItem 1, TransactWriteItems 1": the operations on one service, most frequent first."""
        return ", ".join(f"{op} {n}" for op, n in self.operations(service).most_common()) or "none"

    def close(self) -> None:
        self.read_units = sum(c.read_units for c in self.calls)
        self.write_units = sum(c.write_units for c in self.calls)

    def minus(self, other: OperationCalls, name: str) -> OperationCalls:
        """What this operation made beyond `other`: its calls less one match of each of
        `other`'s, and the difference of their units (e.g. a drain of two callbacks less a drain
        of one: what one more callback costs)."""
        left = list(other.calls)
        kept = []
        for call in self.calls:
            same = (c for c in left if (c.service, c.operation) == (call.service, call.operation))
            match = next(same, None)
            if match is None:
                kept.append(call)
            else:
                left.remove(match)
        return OperationCalls(
            name,
            kept,
            read_units=self.read_units - other.read_units,
            write_units=self.write_units - other.write_units,
            log_bytes=self.log_bytes - other.log_bytes,
            seconds=self.seconds - other.seconds,
        )


# --- item sizes and request units ---------------------------------------------------------------


def item_size(item: Mapping[str, Any] | None) -> int:
    """The size DynamoDB bills an item (low-level attribute values) at; 0 for no item."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def value_size(value: Mapping[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    raise ValueError(f"unknown attribute type {kind!r}")


def number_size(text: str) -> int:
    """1 byte per two significant digits, plus 1 (leading and trailing zeros do not count)."""
    mantissa = re.split("[eE]", text.strip().lstrip("+-"))[0].replace(".", "")
    digits = mantissa.strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  #: ALL, KEYS_ONLY or INCLUDE
    included: frozenset[str] = frozenset()

    def entry(self, item: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The item's entry in this index: None when it lacks a key (a sparse index skips it)."""
        if not item or any(key not in item for key in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        names = set(self.keys) | set(TABLE_KEYS) | set(self.included)
        return {name: value for name, value in item.items() if name in names}

    def write_units(self, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> int:
        old, new = self.entry(before), self.entry(after)
        if old is None and new is None:
            return 0
        if old is None or new is None:
            return write_units(item_size(old or new))
        if all(old[key] == new[key] for key in self.keys):
            return 0 if old == new else write_units(item_size(new))
        return write_units(item_size(old)) + write_units(item_size(new))


def write_cost(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    new_item: Mapping[str, Any] | None,
    indexes: tuple[Index, ...],
    *,
    succeeded: bool,
    transactional: bool = False,
) -> float:
    """The write units of one item write: the table's, plus every index it changed."""
    if succeeded:
        size = max(item_size(before), item_size(after))
        index_units = sum(index.write_units(before, after) for index in indexes)
    else:
        size = item_size(before) if before else item_size(new_item)
        index_units = 0
    return write_units(size) * (2 if transactional else 1) + index_units


# --- the recorder ---------------------------------------------------------------------------------


_WRITES = ("PutItem", "UpdateItem", "DeleteItem")
_PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")


class CallRecorder:
    """Records the calls made by every client of a boto3 session created after it, but only
    inside `measure(...)` blocks. `reader` is a DynamoDB client of another session, which it
    reads item sizes with (so those reads are never counted)."""

    def __init__(self, session: Any, reader: Any, table_name: str) -> None:
        self._reader = reader
        self._table = table_name
        described = reader.describe_table(TableName=table_name)["Table"]
        self.indexes = tuple(_index(gsi) for gsi in described.get("GlobalSecondaryIndexes", []))
        self._open: list[OperationCalls] = []
        #: Time spent in these hooks, subtracted from the operations' wall time.
        self.overhead = 0.0
        session.events.register("before-parameter-build", self._before)
        session.events.register("after-call", self._after)

    @contextmanager
    def measure(self, name: str, log_meter: Any = None) -> Iterator[OperationCalls]:
        """Collect the calls made inside the block (nested blocks each see them too)."""
        operation = OperationCalls(name)
        self._open.append(operation)
        logged = log_meter.bytes if log_meter is not None else 0
        overhead, started = self.overhead, time.perf_counter()
        try:
            yield operation
        finally:
            self._open.remove(operation)
            operation.close()
            operation.seconds = time.perf_counter() - started - (self.overhead - overhead)
            if log_meter is not None:
                operation.log_bytes = log_meter.bytes - logged

    # botocore passes the same `context` dict to both events of one call.
    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self._open or model.service_model.service_name != "dynamodb":
            return
        started = time.perf_counter()
        context["bench_before"] = self._items_before(model.name, params)
        context["bench_params"] = params
        self.overhead += time.perf_counter() - started

    def _after(self, http_response: Any, parsed: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self._open:
            return
        started = time.perf_counter()
        service = model.service_model.service_name
        call = Call(service, model.name)
        if service == "dynamodb" and "bench_params" in context:
            succeeded = http_response.status_code < 300
            params, before = context["bench_params"], context["bench_before"]
            call = self._dynamodb_call(model.name, params, before, parsed, succeeded)
        for operation in self._open:
            operation.calls.append(call)
        self.overhead += time.perf_counter() - started

    # --- DynamoDB units ---------------------------------------------------------------------------

    def _items_before(self, operation: str, params: Mapping[str, Any]) -> list[dict[str, Any] | None]:
        if operation in _WRITES:
            return [self._current(_key_of(params))]
        if operation == "TransactWriteItems":
            return [self._current(_key_of(_action(item)[1])) for item in params["TransactItems"]]
        return []

    def _dynamodb_call(
        self, operation: str, params: Mapping[str, Any], before: list[Any], parsed: Any, succeeded: bool
    ) -> Call:
        reads = writes = 0.0
        if operation == "GetItem":
            reads = read_units(item_size(self._current(params["Key"])), bool(params.get("ConsistentRead")))
        elif operation in ("Query", "Scan"):
            reads = self._query_units(operation, params, parsed)
        elif operation in _WRITES:
            after = self._current(_key_of(params))
            writes = write_cost(before[0], after, params.get("Item"), self.indexes, succeeded=succeeded)
        elif operation == "TransactWriteItems":
            for item, old in zip(params["TransactItems"], before, strict=True):
                kind, action = _action(item)
                if kind == "ConditionCheck":
                    writes += write_units(item_size(old)) * 2
                    continue
                after = self._current(_key_of(action))
                writes += write_cost(
                    old, after, action.get("Item"), self.indexes, succeeded=succeeded, transactional=True
                )
        elif operation == "TransactGetItems":
            for item in params["TransactItems"]:
                reads += 2 * read_units(item_size(self._current(item["Get"]["Key"])), True)
        return Call("dynamodb", operation, reads, writes)

    def _query_units(self, operation: str, params: Mapping[str, Any], parsed: Any) -> float:
        """What the Query read: the same request again, without the projection or filter that
        hide part of what was read (DynamoDB bills what it read, not what it returned)."""
        items: list[Any] = []
        if parsed.get("Items") or "FilterExpression" in params:  # else it read nothing
            replay = _without_projection_or_filter(params)
            client_call = self._reader.query if operation == "Query" else self._reader.scan
            items = client_call(**replay).get("Items", [])
        consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
        return read_units(sum(item_size(i) for i in items), consistent)

    def _current(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        response = self._reader.get_item(TableName=self._table, Key=dict(key), ConsistentRead=True)
        item = response.get("Item")
        return dict(item) if item else None


def _index(described: Mapping[str, Any]) -> Index:
    projection = described.get("Projection", {})
    return Index(
        name=described["IndexName"],
        keys=tuple(k["AttributeName"] for k in described["KeySchema"]),
        projection=projection.get("ProjectionType", "ALL"),
        included=frozenset(projection.get("NonKeyAttributes", [])),
    )


def _action(transact_item: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    ((kind, action),) = transact_item.items()
    return kind, action


def _key_of(params: Mapping[str, Any]) -> dict[str, Any]:
    source = params.get("Key") or params["Item"]
    return {name: source[name] for name in TABLE_KEYS}


def _without_projection_or_filter(params: Mapping[str, Any]) -> dict[str, Any]:
    hiding = ("ProjectionExpression", "FilterExpression", "Select", "ReturnConsumedCapacity")
    replay = {k: v for k, v in params.items() if k not in hiding}
    used = set(_PLACEHOLDER.findall(str(replay.get("KeyConditionExpression", ""))))
    for attribute in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        kept = {k: v for k, v in replay.get(attribute, {}).items() if k in used}
        if kept:
            replay[attribute] = kept
        else:
            replay.pop(attribute, None)
    return replay
