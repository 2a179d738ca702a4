"""The Lambda policies of the AWS stages are least-privilege, and every resource they name is one
the merge template declares. (That they cover every call the code makes, and nothing more, is
checked in tests/e2e/test_aws_backends.py, by recording the calls of whole dispatches.)"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = json.loads((ROOT / "infra" / "dispatch.json").read_text())
PSEUDO = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::URLSuffix"}

COMMON = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "secretsmanager:GetSecretValue",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sqs:SendMessage",
    # The callback queue's event source mapping polls with the function's own role.
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
#: Each stage's whole grant: widening it must be a deliberate change here too.
GRANTS = {
    "prod": COMMON | {"states:StartExecution", "states:StopExecution"},
    "dev": COMMON | {"scheduler:CreateSchedule", "scheduler:DeleteSchedule", "iam:PassRole"},
}


def policy(stage: str) -> dict[str, Any]:
    return json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else list(value)


def resources(statement: dict[str, Any]) -> list[Any]:
    value = statement["Resource"]
    return value if isinstance(value, list) else [value]


def references(value: Any) -> set[str]:
    """Names a CloudFormation expression refers to (Ref, GetAtt and ${...} in Sub)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        if "Fn::Sub" in value:
            return {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", value["Fn::Sub"])}
        return set().union(*(references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(references(v) for v in value)) if value else set()
    return set()


@pytest.mark.parametrize("stage", sorted(GRANTS))
def test_the_stage_grants_exactly_its_actions(stage):
    granted = {a for s in policy(stage)["Statement"] for a in actions(s)}
    assert granted == GRANTS[stage]
    assert all(s["Effect"] == "Allow" for s in policy(stage)["Statement"])


@pytest.mark.parametrize("stage", sorted(GRANTS))
def test_no_statement_is_unscoped(stage):
    for statement in policy(stage)["Statement"]:
        assert all("*" not in action for action in actions(statement)), statement["Sid"]
        for resource in resources(statement):
            # Every resource is a reference into this stack, never a literal or bare wildcard.
            assert isinstance(resource, dict), statement["Sid"]
            assert references(resource), statement["Sid"]


@pytest.mark.parametrize("stage", sorted(GRANTS))
def test_every_reference_is_declared_by_the_merge_template(stage):
    declared = set(TEMPLATE["Resources"]) | PSEUDO
    used = references(policy(stage)["Statement"])
    assert used <= declared, used - declared


def test_pass_role_is_only_for_the_scheduler_role_and_only_to_the_scheduler():
    (statement,) = [s for s in policy("dev")["Statement"] if "iam:PassRole" in actions(s)]
    assert actions(statement) == ["iam:PassRole"]
    assert resources(statement) == [{"Fn::GetAtt": ["SchedulerInvokeRole", "Arn"]}]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }


#: What is queried: callback records by partition, and the sweeper's, the relay's and the dead
#: list's indexes.
QUERIED = [
    {"Fn::GetAtt": ["DispatchTable", "Arn"]},
    {"Fn::Sub": "${DispatchTable.Arn}/index/due"},
    {"Fn::Sub": "${DispatchTable.Arn}/index/relay"},
    {"Fn::Sub": "${DispatchTable.Arn}/index/dead"},
]


@pytest.mark.parametrize("stage", sorted(GRANTS))
def test_table_access_is_the_table_and_its_indexes_only(stage):
    for statement in policy(stage)["Statement"]:
        if any(a.startswith("dynamodb:") for a in actions(statement)):
            assert references(resources(statement)) == {"DispatchTable"}
            if "dynamodb:Query" in actions(statement):
                assert actions(statement) == ["dynamodb:Query"]
                assert resources(statement) == QUERIED
            else:  # item reads and writes: the table, never an index
                assert resources(statement) == [{"Fn::GetAtt": ["DispatchTable", "Arn"]}]


def test_every_index_the_policies_name_is_declared_on_the_table():
    declared = {
        index["IndexName"]
        for index in TEMPLATE["Resources"]["DispatchTable"]["Properties"]["GlobalSecondaryIndexes"]
    }
    named = {r["Fn::Sub"].rsplit("/index/", 1)[1] for r in QUERIED if "Fn::Sub" in r}
    assert named <= declared, named - declared


@pytest.mark.parametrize("stage", sorted(GRANTS))
def test_queue_access_is_the_callback_and_webhook_queues_only(stage):
    sqs = [s for s in policy(stage)["Statement"] if any(a.startswith("sqs:") for a in actions(s))]
    assert {a for s in sqs for a in actions(s)} == {a for a in GRANTS[stage] if a.startswith("sqs:")}
    queues = set()
    for statement in sqs:
        # Never a dead-letter queue: only SQS itself moves messages there.
        (resource,) = resources(statement)
        assert resource["Fn::GetAtt"][1] == "Arn", statement["Sid"]
        queues.add(resource["Fn::GetAtt"][0])
    assert queues == {"CallbackQueue", "WebhookQueue"}


@pytest.mark.parametrize("stage", sorted(GRANTS))
def test_secrets_are_limited_to_this_stacks_application_and_provider_secrets(stage):
    (statement,) = [
        s for s in policy(stage)["Statement"] if "secretsmanager:GetSecretValue" in actions(s)
    ]
    tails = sorted(r["Fn::Sub"].rsplit(":secret:", 1)[1] for r in resources(statement))
    assert tails == ["${AWS::StackName}/applications/*", "${AWS::StackName}/providers/*"]
