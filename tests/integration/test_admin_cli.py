"""The operator command, run in-process against moto (DynamoDB and Secrets Manager)."""
from __future__ import annotations

import base64
import json
import stat
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import jwt
import pytest

from chalicelib.adapters.dynamodb_applications import DynamoApplicationRepository
from chalicelib.api.auth import authenticate
from chalicelib.api.errors import Unauthorized

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import dispatch_admin


@pytest.fixture
def env(table_name, monkeypatch, tmp_path):
    monkeypatch.setenv("DISPATCH_TABLE", table_name)
    monkeypatch.setenv("DISPATCH_SECRET_PREFIX", "acme")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def apps(ddb_client, table_name) -> DynamoApplicationRepository:
    return DynamoApplicationRepository(ddb_client, table_name)


def run(capsys, *argv: str) -> tuple[int, dict, str]:
    status = dispatch_admin.main(["--json", *argv])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out.strip() else {}), err


def create(capsys, *extra: str) -> dict:
    status, output, err = run(capsys, "create", "--name", "shop", *extra)
    assert status == 0, err
    return output


def bearer(application_id: str, private_pem: str) -> str:
    now = int(datetime.now(timezone.utc).timestamp())
    claims = {"application_id": application_id, "iat": now, "jti": str(uuid.uuid4())}
    return "Bearer " + jwt.encode(claims, private_pem, algorithm="RS256")


def basic(api_key: str, api_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()


def test_create_writes_a_private_key_that_authenticates(env, capsys, apps):
    output = create(capsys, "--status-url", "https://example.com/status")
    key_path = Path(output["private_key_path"])
    assert key_path == env / f"{output['application_id']}.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    token = bearer(output["application_id"], key_path.read_text())
    application = authenticate(token, apps, datetime.now(timezone.utc))
    assert application.application_id == output["application_id"]
    assert application.status_url == "https://example.com/status"
    assert list(env.glob("*.tmp")) == []


def test_create_prints_working_basic_credentials(env, capsys, apps):
    output = create(capsys)
    header = basic(output["api_key"], output["api_secret"])
    assert authenticate(header, apps, datetime.now(timezone.utc)).api_key == output["api_key"]


def test_create_stores_the_signature_secret_under_the_prefix(env, capsys, apps):
    output = create(capsys)
    application = apps.get(output["application_id"])
    expected_ref = f"acme/applications/{output['application_id']}/signature-secret"
    assert application.signature_secret_ref == expected_ref
    stored = boto3.client("secretsmanager").get_secret_value(SecretId=expected_ref)
    assert stored["SecretString"] == output["signature_secret"]
    assert output["signature_secret"] not in json.dumps(application.__dict__, default=str)


def test_create_writes_the_key_where_asked_and_never_over_a_file(env, capsys):
    target = env / "keys" / "shop.pem"
    target.parent.mkdir()
    assert Path(create(capsys, "--private-key-out", str(target))["private_key_path"]) == target
    status, _, err = run(capsys, "create", "--name", "again", "--private-key-out", str(target))
    assert status == 2 and "already exists" in err


def test_create_refuses_a_relative_status_url(env, capsys, apps):
    status, _, err = run(capsys, "create", "--name", "shop", "--status-url", "/status")
    assert status == 2 and "status_url" in err
    assert apps.list() == []
    assert list(env.iterdir()) == []


def test_rotate_secret_invalidates_the_old_secret(env, capsys, apps):
    output = create(capsys)
    status, rotated, _ = run(capsys, "rotate-secret", output["application_id"])
    assert status == 0
    now = datetime.now(timezone.utc)
    with pytest.raises(Unauthorized):
        authenticate(basic(output["api_key"], output["api_secret"]), apps, now)
    header = basic(output["api_key"], rotated["api_secret"])
    assert authenticate(header, apps, now).application_id == output["application_id"]


def test_rotate_key_replaces_the_key_file_and_invalidates_the_old_key(env, capsys, apps):
    output = create(capsys)
    key_path = Path(output["private_key_path"])
    old_pem = key_path.read_text()
    status, rotated, _ = run(capsys, "rotate-key", output["application_id"])
    assert status == 0 and Path(rotated["private_key_path"]) == key_path
    now = datetime.now(timezone.utc)
    with pytest.raises(Unauthorized):
        authenticate(bearer(output["application_id"], old_pem), apps, now)
    new_token = bearer(output["application_id"], key_path.read_text())
    assert authenticate(new_token, apps, now).application_id == output["application_id"]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_rotate_signature_secret_stores_a_new_value(env, capsys, apps):
    output = create(capsys)
    status, rotated, _ = run(capsys, "rotate-signature-secret", output["application_id"])
    assert status == 0 and rotated["signature_secret"] != output["signature_secret"]
    ref = apps.get(output["application_id"]).signature_secret_ref
    stored = boto3.client("secretsmanager").get_secret_value(SecretId=ref)["SecretString"]
    assert stored == rotated["signature_secret"]
    # The receiver learns both key ids, so it can accept either while it rolls over.
    from chalicelib.adapters.callback_signing import key_id

    assert output["signature_key_id"] == key_id(output["signature_secret"])
    assert rotated["previous_signature_key_id"] == output["signature_key_id"]
    assert rotated["signature_key_id"] == key_id(rotated["signature_secret"])


def test_set_urls_changes_only_what_is_given_and_empty_clears(env, capsys, apps):
    output = create(capsys, "--status-url", "https://example.com/s")
    app_id = output["application_id"]
    assert run(capsys, "set-urls", app_id, "--inbound-url", "http://example.com/in")[0] == 0
    assert apps.get(app_id).status_url == "https://example.com/s"
    assert apps.get(app_id).inbound_url == "http://example.com/in"
    assert run(capsys, "set-urls", app_id, "--status-url", "")[0] == 0
    assert apps.get(app_id).status_url is None
    assert apps.get(app_id).inbound_url == "http://example.com/in"


@pytest.mark.parametrize(
    "argv", [["--status-url", "ftp://example.com/s"], ["--inbound-url", "example.com"], []]
)
def test_set_urls_refuses_bad_input(env, capsys, apps, argv):
    app_id = create(capsys)["application_id"]
    status, _, err = run(capsys, "set-urls", app_id, *argv)
    assert status == 2 and err.startswith("error:")
    assert apps.get(app_id).status_url is None


def test_list_shows_applications_without_secrets(env, capsys):
    first, second = create(capsys), create(capsys)
    status, rows, _ = run(capsys, "list")
    assert status == 0
    assert [row["application_id"] for row in rows] == [
        first["application_id"],
        second["application_id"],
    ]
    assert first["api_secret"] not in json.dumps(rows)


@pytest.mark.parametrize(
    "command", ["rotate-secret", "rotate-signature-secret", "rotate-key", "set-urls"]
)
def test_unknown_application_is_reported(env, capsys, command):
    extra = ["--status-url", "https://example.com"] if command == "set-urls" else []
    status, _, err = run(capsys, command, "no-such-app", *extra)
    assert status == 1 and "no application no-such-app" in err
    assert list(env.iterdir()) == []


def test_missing_table_setting_is_a_clear_error(env, capsys, monkeypatch):
    monkeypatch.delenv("DISPATCH_TABLE")
    status, _, err = run(capsys, "list")
    assert status == 2 and "DISPATCH_TABLE" in err


def test_text_output_lists_each_credential(env, capsys):
    assert dispatch_admin.main(["create", "--name", "shop"]) == 0
    out = capsys.readouterr().out
    for field in ("application_id", "api_key", "api_secret", "signature_secret"):
        assert field in out


# --- sweep ------------------------------------------------------------------------------------


def _stranded_dispatch(table_name: str, application_id: str, hours_ago: int) -> str:
    """A WhatsApp -> SMS dispatch created `hours_ago` hours ago whose deadline check was lost."""
    from chalicelib import bootstrap
    from chalicelib.config import load_settings
    from chalicelib.domain.model import Channel, Condition
    from tests.fakes import FakeClock, RecordingTimer
    from tests.service_harness import spec

    settings = load_settings({"DISPATCH_TABLE": table_name})
    then = FakeClock(datetime.now(timezone.utc) - timedelta(hours=hours_ago))
    services = bootstrap.build_services(settings, timer=RecordingTimer(), clock=then)

    application = services.applications.get(application_id)
    assert application is not None
    specs = [spec(Channel.WHATSAPP, Condition.READ, 600), spec(Channel.SMS, None, None)]
    return services.dispatches.create(application, specs)


def test_sweep_redrives_a_dispatch_stranded_beyond_the_scheduled_look_back(
    env, capsys, monkeypatch, ddb_client, table_name
):
    from chalicelib import bootstrap
    from chalicelib.adapters.dynamodb_dispatches import DynamoDispatchRepository
    from tests.fakes import RecordingTimer

    timer = RecordingTimer()  # stands in for the stage's timer backend
    monkeypatch.setattr(bootstrap, "build_timer", lambda settings: timer)
    dispatch_uuid = _stranded_dispatch(table_name, create(capsys)["application_id"], hours_ago=3)
    dispatches = DynamoDispatchRepository(ddb_client, table_name)

    status, output, _ = run(capsys, "sweep", "--lookback-minutes", "60")
    assert (status, output["found"]) == (0, 0)  # as far back as the schedule looks: not found
    assert dispatches.get(dispatch_uuid).current == 0

    status, output, _ = run(capsys, "sweep")

    assert status == 0
    assert output == {
        "lookback_minutes": 24 * 60,
        "found": 1,
        "redriven": 1,
        "failed": 0,
        "lost": 1,
        "callbacks_recovered": 0,
        "unread": 0,
    }
    assert dispatches.get(dispatch_uuid).current == 1
    assert [(u, step) for u, step, _ in timer.scheduled] == [(dispatch_uuid, 1), (dispatch_uuid, 1)]
    assert run(capsys, "sweep")[1]["found"] == 0


def test_sweep_refuses_a_look_back_below_one_minute(env, capsys):
    with pytest.raises(SystemExit) as exit_info:
        dispatch_admin.main(["sweep", "--lookback-minutes", "0"])
    assert exit_info.value.code == 2
    assert "at least 1" in capsys.readouterr().err


# --- --stack ----------------------------------------------------------------------------------


def _deployed_check_function(stack: str, variables: dict[str, str]) -> None:
    """What `make deploy` leaves behind, as far as the operator command reads it."""
    import io
    import zipfile

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def failover_check(event, context):\n    return event\n")
    role = boto3.client("iam").create_role(RoleName=f"{stack}-check", AssumeRolePolicyDocument="{}")
    boto3.client("lambda").create_function(
        FunctionName=f"{stack}-failover-check",
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="app.failover_check",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": variables},
    )


def test_stack_supplies_the_table_and_secret_prefix_of_a_deployed_stack(
    env, capsys, monkeypatch, table_name
):
    monkeypatch.delenv("DISPATCH_TABLE")
    monkeypatch.delenv("DISPATCH_SECRET_PREFIX")
    _deployed_check_function(
        "dispatch-prod",
        {"DISPATCH_TABLE": table_name, "DISPATCH_SECRET_PREFIX": "dispatch-prod", "UNRELATED": "x"},
    )

    status, output, err = run(capsys, "--stack", "dispatch-prod", "create", "--name", "shop")

    assert status == 0, err
    secret = boto3.client("secretsmanager").get_secret_value(
        SecretId=f"dispatch-prod/applications/{output['application_id']}/signature-secret"
    )
    assert secret["SecretString"] == output["signature_secret"]
    status, rows, _ = run(capsys, "--stack", "dispatch-prod", "list")
    assert [row["application_id"] for row in rows] == [output["application_id"]]


def test_an_unknown_stack_is_a_clear_error(env, capsys):
    status, _, err = run(capsys, "--stack", "no-such-stack", "list")
    assert status == 1 and "cannot read stack 'no-such-stack'" in err
