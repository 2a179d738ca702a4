"""DynamoDB implementation of the CallbackStore port: delivery records and each dispatch's lease.

A dispatch's callbacks live in one partition, `CB#<dispatch_uuid>`, beside (not inside) its
dispatch item, so recording an attempt never rewrites the dispatch nor races its version:

    CB#<uuid> / SEQ#<seq:08d>   one record per callback: what was decided (event_id, kind,
                                decided_at, body), state, attempts [{at, status_code, error,
                                duration_ms}], next_at, window_from, dead_at, dead_reason,
                                replays; `expires_at` = decided_at + retention
    CB#<uuid> / STREAM          the lease (lease_owner, lease_until, claim_id), replay_at / replayed_at,
                                next_at; `expires_at` = last claim or replay + retention

The sort key pads the seq to eight digits so that the partition reads in seq order; `records`
still sorts by the stored number, so a ninth digit would cost order of reading, not correctness.
Times are `dispatch_codec.format_time` strings, which sort as the instants they name: the lease
check (`lease_until <= :now`) compares them as strings.

Two sparse indexes (see `dynamodb_table`) serve the sweeper and the callbacks API:
- a stream with a retry due carries `relay_minute = retry#<minute of next_at>` and `relay_at`,
  which `stalled` reads one minute at a time like `DynamoDispatchRepository.unrelayed`. `claim`
  sets them to the lease's end, so a drain that dies holding the lease is found once it runs
  out; `release` moves them to the next retry, or removes them when nothing is pending.
- a dead record carries `dead_app` (its application) and `dead_at`, which list it under its
  application, latest first. A record put back to pending is written without them (PutItem
  replaces the whole item), which takes it out of the list.

Calls: `claim`, `release` and `request_replay` one UpdateItem; `put` one PutItem; `records` one
Query per page (one for any dispatch under 1 MB of records); `dead` one Query; `stalled` one Query
per minute.
"""
from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import strict_json
from chalicelib.adapters.aws_errors import CONDITION_FAILED, error_code
from chalicelib.adapters.dispatch_codec import format_time, parse_time
from chalicelib.adapters.dynamodb_dispatches import (
    RELAY_IN_MINUTE,
    query_by_minute,
    relay_keys,
)
from chalicelib.adapters.dynamodb_table import (
    DEAD_APP_ATTRIBUTE,
    DEAD_AT_ATTRIBUTE,
    DEAD_INDEX,
    RELAY_AT_ATTRIBUTE,
    RELAY_MINUTE_ATTRIBUTE,
    TTL_ATTRIBUTE,
    key,
)
from chalicelib.domain.callbacks import Attempt, CallbackKind, CallbackRecord, DeliveryState
from chalicelib.service.ports import CallbackStream, InvalidCursor

CALLBACK_PREFIX = "CB#"
RECORD_PREFIX = "SEQ#"
STREAM_SK = "STREAM"
#: `relay` index bucket prefix of a stream whose next retry is due.
RETRY_BUCKET = "retry#"
#: The attributes of a `dead` index LastEvaluatedKey, which is all a cursor may hold.
_CURSOR_KEYS = frozenset({"pk", "sk", DEAD_APP_ATTRIBUTE, DEAD_AT_ATTRIBUTE})

#: Every attribute a stream update names, through placeholders (so no reserved word can bite).
_STREAM_NAMES = {
    "#lo": "lease_owner",
    "#lu": "lease_until",
    "#rp": "replay_at",
    "#rd": "replayed_at",
    "#na": "next_at",
    "#rm": RELAY_MINUTE_ATTRIBUTE,
    "#ra": RELAY_AT_ATTRIBUTE,
    "#e": TTL_ATTRIBUTE,
    "#ci": "claim_id",
}


def record_key(dispatch_uuid: str, seq: int) -> dict[str, dict[str, str]]:
    return key(CALLBACK_PREFIX + dispatch_uuid, f"{RECORD_PREFIX}{seq:08d}")


def stream_key(dispatch_uuid: str) -> dict[str, dict[str, str]]:
    return key(CALLBACK_PREFIX + dispatch_uuid, STREAM_SK)


class DynamoCallbackStore:
    """Callback records and streams in the single table."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        retention_days: int = 90,
        *,
        query_page_size: int | None = None,
    ) -> None:
        self._client = client
        self._table = table_name
        self._retention = timedelta(days=retention_days)
        #: Items per Query page for `records` and `stalled`; None leaves it to DynamoDB (1 MB).
        self._page_size = query_page_size

    # --- the lease ------------------------------------------------------------------------

    def claim(
        self, dispatch_uuid: str, owner: str, now: datetime, until: datetime
    ) -> CallbackStream | None:
        """Take the lease if it is free or has run out. One conditional UpdateItem.

        Each claim writes a fresh `claim_id`: botocore retries a claim whose answer was lost,
        and the retry then meets that very claim; the stream as it stands (returned by the
        failed condition) names it, and the claim holds. Without it the drain would lock itself
        out of its own lease until the lease ran out.

        Also marks the stream due at `until` (next_at and the `relay` keys), so the sweeper
        finds it if this drain dies before `release`.
        """
        expression = "SET #lo = :o, #lu = :u, #e = :e, #na = :u, #rm = :rm, #ra = :u, #ci = :ci"
        retry = relay_keys(RETRY_BUCKET, until)
        claim_id = {"S": uuid.uuid4().hex}
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=stream_key(dispatch_uuid),
                UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(#lu) OR #lu <= :now",
                ExpressionAttributeNames=_names(expression),
                ExpressionAttributeValues={
                    ":o": {"S": owner},
                    ":u": {"S": format_time(until)},
                    ":now": {"S": format_time(now)},
                    ":e": self._expires_at(now),
                    ":rm": retry[RELAY_MINUTE_ATTRIBUTE],
                    ":ci": claim_id,
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            held = exc.response.get("Item") or {}
            if held.get("claim_id") != claim_id:
                return None  # another drain holds it
            response = {"Attributes": held}  # this claim, retried: it holds the lease
        stream = response["Attributes"]
        replay_at = _time(stream, "replay_at")
        replayed_at = _time(stream, "replayed_at")
        if replay_at is not None and replayed_at is not None and replay_at <= replayed_at:
            replay_at = None  # already carried out by an earlier drain
        return CallbackStream(replay_at=replay_at)

    def release(
        self,
        dispatch_uuid: str,
        owner: str,
        *,
        next_at: datetime | None,
        replay_applied: datetime | None = None,
    ) -> None:
        """Give the lease back and say when a callback is next due. One UpdateItem, conditioned
        on still being the owner: a lease taken over after it ran out is left to its new owner.

        It leaves `expires_at` as the claim set it a moment ago (the store has no clock).
        """
        values: dict[str, Any] = {":o": {"S": owner}}
        sets: list[str] = []
        removes = ["#lo", "#lu"]
        if next_at is None:
            removes += ["#na", "#rm", "#ra"]  # nothing pending: out of the `relay` index
        else:
            retry = relay_keys(RETRY_BUCKET, next_at)
            sets += ["#na = :na", "#rm = :rm", "#ra = :na"]
            values[":na"] = retry[RELAY_AT_ATTRIBUTE]
            values[":rm"] = retry[RELAY_MINUTE_ATTRIBUTE]
        if replay_applied is not None:
            sets.append("#rd = :rd")
            values[":rd"] = {"S": format_time(replay_applied)}
        expression = f"REMOVE {', '.join(removes)}"
        if sets:
            expression = f"SET {', '.join(sets)} {expression}"
        try:
            self._client.update_item(
                TableName=self._table,
                Key=stream_key(dispatch_uuid),
                UpdateExpression=expression,
                ConditionExpression="#lo = :o",
                ExpressionAttributeNames=_names(expression),
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise

    def request_replay(self, dispatch_uuid: str, at: datetime) -> None:
        """Ask the next drain to send every callback again. One UpdateItem, which creates the
        stream if the dispatch has none yet. The stream is also marked due at `at`, so the
        sweeper carries the replay out if its nudge is lost."""
        expression = "SET #rp = :rp, #e = :e, #na = :rp, #rm = :rm, #ra = :rp"
        due = relay_keys(RETRY_BUCKET, at)
        self._client.update_item(
            TableName=self._table,
            Key=stream_key(dispatch_uuid),
            UpdateExpression=expression,
            ExpressionAttributeNames=_names(expression),
            ExpressionAttributeValues={
                ":rp": {"S": format_time(at)},
                ":e": self._expires_at(at),
                ":rm": due[RELAY_MINUTE_ATTRIBUTE],
            },
        )

    # --- records --------------------------------------------------------------------------

    def records(self, dispatch_uuid: str) -> list[CallbackRecord]:
        """Every record of the dispatch, by seq. Strongly consistent Query, every page."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :seq)",
            "ExpressionAttributeValues": {
                ":pk": {"S": CALLBACK_PREFIX + dispatch_uuid},
                ":seq": {"S": RECORD_PREFIX},
            },
            "ConsistentRead": True,
        }
        if self._page_size is not None:
            query["Limit"] = self._page_size
        found: list[CallbackRecord] = []
        while True:
            page = self._client.query(**query)
            found.extend(_record_from_item(item) for item in page.get("Items", ()))
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(found, key=lambda record: record.seq)

    def put(self, record: CallbackRecord) -> None:
        """Create or replace one record. One unconditional PutItem: only the lease holder
        writes records, and a replaced item drops index keys the new state does not carry."""
        self._client.put_item(TableName=self._table, Item=self._record_item(record))

    def dead(
        self, application_id: str, limit: int, cursor: str | None = None
    ) -> tuple[list[CallbackRecord], str | None]:
        """One page of the application's dead callbacks, latest first. One Query of `dead`.

        The cursor is the page's LastEvaluatedKey; DynamoDB gives one whenever a page is full,
        so the last page may come back empty. Raises `InvalidCursor` for a cursor that does not
        decode or that names another application.
        """
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": DEAD_INDEX,
            "KeyConditionExpression": "#a = :a",
            "ExpressionAttributeNames": {"#a": DEAD_APP_ATTRIBUTE},
            "ExpressionAttributeValues": {":a": {"S": application_id}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            query["ExclusiveStartKey"] = _decode_cursor(cursor, application_id)
        page = self._client.query(**query)
        records = [_record_from_item(item) for item in page.get("Items", ())]
        last = page.get("LastEvaluatedKey")
        return records, None if last is None else _encode_cursor(last)

    def stalled(self, cutoff: datetime, since: datetime) -> list[str]:
        """Dispatches whose stream has a callback due in [since, cutoff], oldest first.

        One Query of the `relay` index per minute; eventually consistent, which a drain (it
        claims, then reads the records) does not mind.
        """
        query = {"TableName": self._table, **RELAY_IN_MINUTE}
        items = query_by_minute(
            self._client, query, since, cutoff, prefix=RETRY_BUCKET, page_size=self._page_size
        )
        return list({item["pk"]["S"].removeprefix(CALLBACK_PREFIX): None for item in items})

    # --- items ----------------------------------------------------------------------------

    def _expires_at(self, at: datetime) -> dict[str, str]:
        return {"N": str(int((at + self._retention).timestamp()))}

    def _record_item(self, record: CallbackRecord) -> dict[str, Any]:
        item: dict[str, Any] = {
            **record_key(record.dispatch_uuid, record.seq),
            "dispatch_uuid": {"S": record.dispatch_uuid},
            "application_id": {"S": record.application_id},
            "seq": {"N": str(record.seq)},
            "event_id": {"S": record.event_id},
            "kind": {"S": record.kind.value},
            "decided_at": {"S": format_time(record.decided_at)},
            "body": {"S": record.body},
            "state": {"S": record.state.value},
            "attempts": {"L": [{"M": _attempt_to_item(a)} for a in record.attempts]},
            "replays": {"N": str(record.replays)},
            TTL_ATTRIBUTE: self._expires_at(record.decided_at),
        }
        for name in ("next_at", "window_from", DEAD_AT_ATTRIBUTE):
            value = getattr(record, name)
            if value is not None:
                item[name] = {"S": format_time(value)}
        if record.dead_reason is not None:
            item["dead_reason"] = {"S": record.dead_reason}
        if record.state is DeliveryState.DEAD:
            if record.dead_at is None:
                # Without it the record would be dead yet missing from the dead list.
                raise ValueError("a dead callback record needs dead_at")
            item[DEAD_APP_ATTRIBUTE] = {"S": record.application_id}
        return item


def _attempt_to_item(attempt: Attempt) -> dict[str, Any]:
    item: dict[str, Any] = {"at": {"S": format_time(attempt.at)}}
    if attempt.status_code is not None:
        item["status_code"] = {"N": str(attempt.status_code)}
    if attempt.error is not None:
        item["error"] = {"S": attempt.error}
    if attempt.duration_ms is not None:
        item["duration_ms"] = {"N": str(attempt.duration_ms)}
    return item


def _attempt_from_item(item: Mapping[str, Any]) -> Attempt:
    return Attempt(
        at=parse_time(item["at"]["S"]),
        status_code=_int(item, "status_code"),
        error=item.get("error", {}).get("S"),
        duration_ms=_int(item, "duration_ms"),
    )


def _record_from_item(item: Mapping[str, Any]) -> CallbackRecord:
    return CallbackRecord(
        dispatch_uuid=item["dispatch_uuid"]["S"],
        application_id=item["application_id"]["S"],
        seq=int(item["seq"]["N"]),
        event_id=item["event_id"]["S"],
        kind=CallbackKind(item["kind"]["S"]),
        decided_at=parse_time(item["decided_at"]["S"]),
        body=item["body"]["S"],
        state=DeliveryState(item["state"]["S"]),
        attempts=tuple(_attempt_from_item(a["M"]) for a in item["attempts"]["L"]),
        next_at=_time(item, "next_at"),
        window_from=_time(item, "window_from"),
        dead_at=_time(item, DEAD_AT_ATTRIBUTE),
        dead_reason=item.get("dead_reason", {}).get("S"),
        replays=int(item["replays"]["N"]),
    )


def _time(item: Mapping[str, Any], name: str) -> datetime | None:
    value = item.get(name)
    return None if value is None else parse_time(value["S"])


def _int(item: Mapping[str, Any], name: str) -> int | None:
    value = item.get(name)
    return None if value is None else int(value["N"])


def _names(expression: str) -> dict[str, str]:
    """The placeholders `expression` uses (its condition's too): DynamoDB refuses unused ones."""
    return {p: name for p, name in _STREAM_NAMES.items() if p in expression}


# --- cursors ----------------------------------------------------------------------------------


def _encode_cursor(last_evaluated_key: Mapping[str, Any]) -> str:
    plain = {name: value["S"] for name, value in last_evaluated_key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode()


def _decode_cursor(cursor: str, application_id: str) -> dict[str, dict[str, str]]:
    """The ExclusiveStartKey a cursor names, once it is known to be a `dead` index key of this
    application's list: the index partition is the tenant boundary, and a cursor is not signed."""
    try:
        # The strict parser: the cursor is the client's text, and json.loads would raise
        # RecursionError (not ValueError) on a cursor of nested brackets.
        plain = strict_json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except ValueError:  # bad base64 (binascii.Error), bad ASCII, any JsonRefused
        raise InvalidCursor("not a cursor of this list") from None
    if (
        not isinstance(plain, dict)
        or plain.keys() != _CURSOR_KEYS
        or not all(isinstance(value, str) for value in plain.values())
        or plain[DEAD_APP_ATTRIBUTE] != application_id
    ):
        raise InvalidCursor("not a cursor of this list")
    return {name: {"S": value} for name, value in plain.items()}
