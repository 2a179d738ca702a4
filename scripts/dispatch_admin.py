"""Operator command: create applications, rotate their credentials, change their URLs, sweep.

Run from the repository root:  .venv/bin/python scripts/dispatch_admin.py <command> --help

It talks to whatever AWS the environment points at: DISPATCH_TABLE (required) names the table,
DISPATCH_SECRET_PREFIX (default "dispatch") prefixes signature secret names, and the usual AWS_*
variables choose account, region and endpoint (AWS_ENDPOINT_URL for the local stack). With
`--stack NAME` the DISPATCH_* settings come from that deployed stack instead.
Secrets are printed once, here, and stored nowhere in clear.

`sweep` runs the service itself, so it reads the same settings as the deployed functions: set
DISPATCH_TIMER_BACKEND and its DISPATCH_* settings as the stage has them, so the checks it
schedules go to the real timer (with the default local timer they end with this command, and the
scheduled sweep picks them up once their grace period has passed).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.callback_signing import key_id
from chalicelib.service import applications as service
from chalicelib.service.ports import ApplicationRepository, SecretStore

DEFAULT_SECRET_PREFIX = "dispatch"
#: The operator's sweep reaches a day back; the scheduled one only its configured hour.
DEFAULT_SWEEP_LOOKBACK_MINUTES = 24 * 60
T = TypeVar("T")
#: A sub-command: returns the exit status, or None for success.
Handler = Callable[[argparse.Namespace, ApplicationRepository, SecretStore], int | None]


class UsageError(Exception):
    """A problem the operator can fix; printed without a traceback."""


class KeyFile:
    """A private key file written only once the key exists, and never left half-written.

    The temporary file is made before AWS is touched, so an unwritable folder fails the command
    before a new key pair replaces the one in use.
    """

    def __init__(self, path: Path | None, folder: Path, overwrite: bool):
        if path is not None and path.exists() and not overwrite:
            raise UsageError(f"{path} already exists; choose another --private-key-out")
        target_folder = path.parent if path is not None else folder
        try:
            fd, self._tmp = tempfile.mkstemp(dir=target_folder, suffix=".key.tmp")
        except OSError as error:
            raise UsageError(f"cannot write a key file in {target_folder}: {error}") from None
        self._fd: int | None = fd
        self.path = path

    def commit(self, pem: str, default_path: Path) -> Path | None:
        """Move the key into place; None (and a warning) if that fails, so output still follows."""
        path = self.path or default_path
        assert self._fd is not None, "a key file is committed or discarded only once"
        try:
            with os.fdopen(self._fd, "w", encoding="ascii") as handle:  # mkstemp gives 0600
                self._fd = None  # the file object owns (and closes) the descriptor now
                handle.write(pem)
            os.replace(self._tmp, path)
        except OSError as error:
            self.discard()
            print(f"error: key file not written ({error}); run rotate-key", file=sys.stderr)
            return None
        return path

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


def _print(args: argparse.Namespace, fields: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        width = max(len(name) for name in fields)
        for name, value in fields.items():
            print(f"{name:<{width}}  {'' if value is None else value}")


def _with_key_file(
    args: argparse.Namespace, overwrite: bool, make: Callable[[], T]
) -> tuple[KeyFile, T]:
    key_file = KeyFile(args.private_key_out, Path.cwd(), overwrite)
    try:
        result = make()
    except BaseException:
        key_file.discard()
        raise
    return key_file, result


def cmd_create(args: argparse.Namespace, apps: ApplicationRepository, secrets: SecretStore) -> int:
    key_file, credentials = _with_key_file(
        args,
        overwrite=False,
        make=lambda: service.create_application(
            apps,
            secrets,
            name=args.name,
            status_url=args.status_url,
            inbound_url=args.inbound_url,
            now=datetime.now(timezone.utc),
            secret_prefix=args.secret_prefix,
        ),
    )
    key_path = key_file.commit(
        credentials.private_key_pem, Path.cwd() / f"{credentials.application_id}.key"
    )
    _print(
        args,
        {
            "application_id": credentials.application_id,
            "api_key": credentials.api_key,
            "api_secret": credentials.api_secret,
            "signature_secret": credentials.signature_secret,
            "signature_key_id": key_id(credentials.signature_secret),
            "private_key_path": key_path and str(key_path),
        },
    )
    return 0 if key_path else 1


def cmd_list(args: argparse.Namespace, apps: ApplicationRepository, secrets: SecretStore) -> None:
    rows = [
        {
            "application_id": app.application_id,
            "name": app.name,
            "api_key": app.api_key,
            "status_url": app.status_url,
            "inbound_url": app.inbound_url,
            "created_at": app.created_at.isoformat(),
        }
        for app in apps.list()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print("\t".join("" if value is None else str(value) for value in row.values()))


def cmd_rotate_secret(
    args: argparse.Namespace, apps: ApplicationRepository, _: SecretStore
) -> None:
    api_secret = service.rotate_api_secret(apps, args.application_id)
    _print(args, {"application_id": args.application_id, "api_secret": api_secret})


def cmd_rotate_signature_secret(
    args: argparse.Namespace, apps: ApplicationRepository, secrets: SecretStore
) -> None:
    app = apps.get(args.application_id)
    try:
        previous = secrets.get(app.signature_secret_ref) if app else None
    except KeyError:
        previous = None
    value = service.rotate_signature_secret(apps, secrets, args.application_id)
    # Callbacks are signed with the new secret from now on; the receiver keeps accepting the old
    # one's key id until it has the new secret (the token's `kid` says which signed).
    _print(
        args,
        {
            "application_id": args.application_id,
            "signature_secret": value,
            "signature_key_id": key_id(value),
            "previous_signature_key_id": key_id(previous) if previous else None,
        },
    )


def cmd_rotate_key(args: argparse.Namespace, apps: ApplicationRepository, _: SecretStore) -> int:
    key_file, private_pem = _with_key_file(
        args, overwrite=True, make=lambda: service.rotate_key_pair(apps, args.application_id)
    )
    key_path = key_file.commit(private_pem, Path.cwd() / f"{args.application_id}.key")
    path_text = key_path and str(key_path)
    _print(args, {"application_id": args.application_id, "private_key_path": path_text})
    return 0 if key_path else 1


def cmd_set_urls(args: argparse.Namespace, apps: ApplicationRepository, _: SecretStore) -> None:
    if args.status_url is service.KEEP and args.inbound_url is service.KEEP:
        raise UsageError("give --status-url and/or --inbound-url")
    app = service.set_urls(apps, args.application_id, args.status_url, args.inbound_url)
    _print(
        args,
        {
            "application_id": app.application_id,
            "status_url": app.status_url,
            "inbound_url": app.inbound_url,
        },
    )


def cmd_sweep(args: argparse.Namespace, _: ApplicationRepository, __: SecretStore) -> int:
    """One sweep reaching further back than the scheduled one, e.g. after an outage."""
    from chalicelib.bootstrap import build_services
    from chalicelib.config import load_settings

    services = build_services(load_settings(args.environ))
    with _problems_on_stderr():
        result = services.sweeper.sweep(lookback_minutes=args.lookback_minutes)
    _print(
        args,
        {
            "lookback_minutes": args.lookback_minutes,
            "found": result.found,
            "redriven": result.redriven,
            "failed": result.failed,
            "lost": result.lost,
            "callbacks_recovered": result.callbacks_recovered,
            "unread": result.unread,
        },
    )
    return 1 if result.failed else 0


@contextlib.contextmanager
def _problems_on_stderr() -> Iterator[None]:
    """Show which dispatches failed (ids only, as JSON lines) without mixing them into stdout."""
    import logging

    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LambdaPowertoolsFormatter(service="dispatch-admin"))
    handler.setLevel(logging.WARNING)
    service_logger = logging.getLogger("chalicelib")
    service_logger.addHandler(handler)
    try:
        yield
    finally:
        service_logger.removeHandler(handler)


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _url_or_clear(value: str) -> str | None:
    return value or None  # an empty value clears the URL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dispatch_admin", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--stack",
        help="a deployed stack: read its DISPATCH_* settings from its failover-check function",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        sub.set_defaults(handler=handler)
        return sub

    create = command("create", cmd_create, "create an application and print its credentials")
    create.add_argument("--name", required=True)
    create.add_argument("--status-url")
    create.add_argument("--inbound-url")
    create.add_argument("--private-key-out", type=Path, help="default ./<application_id>.key")
    command("list", cmd_list, "list applications (no secrets)")
    for name, handler, text in (
        ("rotate-secret", cmd_rotate_secret, "new API secret; the old one stops working"),
        ("rotate-signature-secret", cmd_rotate_signature_secret, "new callback signature secret"),
    ):
        command(name, handler, text).add_argument("application_id")
    rotate_key = command("rotate-key", cmd_rotate_key, "new RS256 key pair; old JWTs stop working")
    rotate_key.add_argument("application_id")
    rotate_key.add_argument("--private-key-out", type=Path, help="default ./<application_id>.key")
    set_urls = command("set-urls", cmd_set_urls, 'change URLs ("" clears one)')
    set_urls.add_argument("application_id")
    set_urls.add_argument("--status-url", type=_url_or_clear, default=service.KEEP)
    set_urls.add_argument("--inbound-url", type=_url_or_clear, default=service.KEEP)
    sweep = command("sweep", cmd_sweep, "re-drive dispatches whose checks are overdue, now")
    sweep.add_argument(
        "--lookback-minutes",
        type=_positive_int,
        default=DEFAULT_SWEEP_LOOKBACK_MINUTES,
        help=f"how far back to look for overdue checks (default {DEFAULT_SWEEP_LOOKBACK_MINUTES})",
    )
    return parser


def _adapters(table_name: str) -> tuple[ApplicationRepository, SecretStore]:
    import boto3

    from chalicelib.adapters.dynamodb_applications import DynamoApplicationRepository
    from chalicelib.adapters.secrets import SecretsManagerStore

    apps = DynamoApplicationRepository(boto3.client("dynamodb"), table_name)
    return apps, SecretsManagerStore(boto3.client("secretsmanager"))


def _stack_settings(stack: str) -> dict[str, str]:
    """The DISPATCH_* settings a deployed stack's Lambdas run with, resolved by CloudFormation.

    Read from the failover-check function (named `<stack>-failover-check` by the template), so
    the operator works on the same table, secrets and timer as the service without copying
    names by hand. Needs lambda:GetFunctionConfiguration; the variables hold no secrets.
    """
    import boto3

    config = boto3.client("lambda").get_function_configuration(
        FunctionName=f"{stack}-failover-check"
    )
    variables = config.get("Environment", {}).get("Variables", {})
    return {name: value for name, value in variables.items() if name.startswith("DISPATCH_")}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.environ = dict(os.environ)
    if args.stack:
        try:
            # What the caller set explicitly still wins over the stack's values.
            args.environ = {**_stack_settings(args.stack), **os.environ}
        except (BotoCoreError, ClientError) as error:
            print(f"error: cannot read stack {args.stack!r}: {error}", file=sys.stderr)
            return 1
    table_name = args.environ.get("DISPATCH_TABLE", "").strip()
    if not table_name:
        print("error: set DISPATCH_TABLE (or --stack) to find the dispatch table", file=sys.stderr)
        return 2
    args.secret_prefix = args.environ.get("DISPATCH_SECRET_PREFIX") or DEFAULT_SECRET_PREFIX
    try:
        apps, secrets = _adapters(table_name)
        status = args.handler(args, apps, secrets)
    except service.ApplicationNotFound as error:
        print(f"error: no application {error.args[0]}", file=sys.stderr)
        return 1
    except (UsageError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"error: AWS call failed: {error}", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
