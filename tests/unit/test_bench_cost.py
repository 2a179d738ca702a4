"""The arithmetic of the cost benchmark: prices applied per unit, Lambda's billing rules, the
state machine's billed path, and the DynamoDB item sizes and request units it prices."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import cost
from benchmarks.aws_counts import Index, item_size, number_size, read_units, write_cost
from benchmarks.cost import Invoked, Prices, Usage, line_items

ROOT = Path(__file__).resolve().parents[2]
MEMORY = {"api_handler": 512, "failover_check": 1024}

USAGE = Usage(
    api_requests=3,
    invocations=(Invoked("api_handler", 0.120), Invoked("failover_check", 0.250)),
    write_units=60,
    read_units=12,
    state_transitions=2,
    schedule_invocations=1,
    sqs_requests=9,
    log_bytes=3000,
)


def doubled(usage: Usage) -> Usage:
    return replace(
        usage,
        api_requests=2 * usage.api_requests,
        invocations=usage.invocations * 2,
        write_units=2 * usage.write_units,
        read_units=2 * usage.read_units,
        state_transitions=2 * usage.state_transitions,
        schedule_invocations=2 * usage.schedule_invocations,
        sqs_requests=2 * usage.sqs_requests,
        log_bytes=2 * usage.log_bytes,
    )


def test_doubling_every_count_doubles_every_line_item():
    once, twice = line_items(USAGE, MEMORY), line_items(doubled(USAGE), MEMORY)
    assert set(once) == set(cost.LINE_ITEMS)
    for item in cost.LINE_ITEMS:
        assert once[item] > 0
        assert twice[item] == pytest.approx(2 * once[item])


@pytest.mark.parametrize(
    ("usage", "item", "price"),
    [
        (Usage(api_requests=1_000_000), "apigw", 3.50),
        (Usage(write_units=1_000_000), "dynamodb", 0.625),
        (Usage(read_units=1_000_000), "dynamodb", 0.125),
        (Usage(state_transitions=1_000), "timer", 0.025),
        (Usage(schedule_invocations=1_000_000), "timer", 1.00),
        (Usage(sqs_requests=1_000_000), "sqs", 0.40),
        (Usage(log_bytes=1_000_000_000), "logs", 0.50),
        (Usage(invocations=(Invoked("api_handler", 0.0),) * 1_000), "lambda", 0.20 / 1_000),
    ],
)
def test_each_quantity_is_priced_at_its_public_price(usage, item, price):
    items = line_items(usage, MEMORY)
    assert items[item] == pytest.approx(price)
    assert sum(items.values()) == pytest.approx(price)  # and nothing else is charged


def test_prices_come_from_the_constants():
    custom = Prices(apigw_request=1.0, wru=10.0, rru=100.0)
    items = line_items(Usage(api_requests=2, write_units=3, read_units=4), MEMORY, custom)
    assert items["apigw"] == 2.0
    assert items["dynamodb"] == 3 * 10.0 + 4 * 100.0
    assert Prices().transition == cost.SFN_PER_TRANSITION


def test_lambda_bills_memory_times_duration_rounded_up_to_the_millisecond():
    usage = Usage(invocations=(Invoked("failover_check", 0.0101),))  # 1024 MB, billed 11 ms
    assert usage.gb_seconds(MEMORY) == pytest.approx(0.011)
    expected = cost.LAMBDA_PER_REQUEST + 0.011 * cost.LAMBDA_PER_GB_SECOND
    assert line_items(usage, MEMORY)["lambda"] == pytest.approx(expected)


def test_doubling_durations_doubles_only_the_compute_part():
    single = line_items(USAGE, MEMORY)
    slow = line_items(USAGE, MEMORY, duration_factor=2.0)
    requests = len(USAGE.invocations) * cost.LAMBDA_PER_REQUEST
    assert slow["lambda"] - requests == pytest.approx(2 * (single["lambda"] - requests))
    assert {k: v for k, v in slow.items() if k != "lambda"} == {k: v for k, v in single.items() if k != "lambda"}


def test_memory_is_resolved_as_chalice_does():
    config = {
        "lambda_memory_size": 256,
        "lambda_functions": {"sweep_overdue": {"lambda_memory_size": 384}},
        "stages": {
            "prod": {"lambda_memory_size": 768, "lambda_functions": {"failover_check": {"lambda_memory_size": 1024}}},
            "dev": {},
        },
    }
    assert cost.lambda_memory_mb(config, "prod", "failover_check") == 1024  # the stage's, for it
    assert cost.lambda_memory_mb(config, "prod", "api_handler") == 768  # the stage's
    assert cost.lambda_memory_mb(config, "dev", "sweep_overdue") == 384  # the top level's, for it
    assert cost.lambda_memory_mb(config, "dev", "api_handler") == 256  # the top level's
    assert cost.lambda_memory_mb({}, "dev", "api_handler") == 128  # Chalice's default


def test_a_fired_check_pays_its_whole_path_and_a_stopped_one_its_wait():
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "Next": "Run"},
            "Run": {"Type": "Task", "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    assert cost.state_path(definition) == ["Wait", "Run", "Done"]
    assert cost.state_transitions(started=5, stopped=2, path_length=3) == 3 * 3 + 2


def test_the_real_state_machine_path_ends_in_a_terminal_state():
    template = json.loads((ROOT / "infra" / "dispatch.json").read_text())
    definition = template["Resources"]["FailoverTimer"]["Properties"]["Definition"]
    path = cost.state_path(definition)
    assert path[0] == definition["StartAt"]
    assert definition["States"][path[-1]].get("End") or definition["States"][path[-1]]["Type"] in ("Succeed", "Fail")
    assert len(set(path)) == len(path)


def test_an_sqs_request_is_billed_per_64_kb_chunk():
    assert [cost.sqs_requests(n) for n in (0, 60, 65536, 65537, 262144)] == [1, 1, 1, 2, 4]


def test_item_sizes_follow_dynamodbs_rules():
    assert number_size("123") == 3  # 2 bytes for 3 digits, plus 1
    assert number_size("0.0100") == 2  # zeros around the digits are trimmed
    item = {
        "pk": {"S": "ab"},
        "n": {"N": "12"},
        "ok": {"BOOL": True},
        "m": {"M": {"k": {"S": "xyz"}}},
        "l": {"L": [{"S": "a"}, {"NULL": True}]},
    }
    # names 2+1+2+1+1; values 2, 2, 1, 3+(1+1+3), 3+(1+1)+(1+1)
    assert item_size(item) == 7 + 2 + 2 + 1 + 8 + 7


def test_write_units_take_the_larger_image_and_index_moves_cost_two():
    due = Index("due", ("due_minute", "due_at"), "INCLUDE", frozenset({"current"}))
    before = {"pk": {"S": "D#1"}, "sk": {"S": "D"}, "due_minute": {"S": "10:01"}, "due_at": {"S": "a"}, "big": {"S": "x" * 1500}}
    moved = {**before, "due_minute": {"S": "10:02"}, "big": {"S": "x" * 10}}
    assert write_cost(before, moved, None, (due,), succeeded=True) == 2 + 2  # 2 KB before, delete + put
    assert write_cost(before, moved, None, (due,), succeeded=True, transactional=True) == 4 + 2
    unchanged_entry = {**before, "big": {"S": "y" * 1500}}
    assert write_cost(before, unchanged_entry, None, (due,), succeeded=True) == 2  # index untouched
    assert write_cost(before, before, moved, (due,), succeeded=False) == 2  # the item as it stood


def test_reads_cost_a_unit_per_4_kb_and_half_when_eventually_consistent():
    assert read_units(0, consistent=True) == 1  # a miss still costs the minimum
    assert read_units(4097, consistent=True) == 2
    assert read_units(100, consistent=False) == 0.5
