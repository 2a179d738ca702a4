"""The local stack behind `make run`: the real app, with AWS emulated on loopback.

Starts moto's server (DynamoDB and Secrets Manager) on a free loopback port, points every boto3
client at it, creates the table and a demo application, and serves the Chalice app in this
process at http://127.0.0.1:$PORT with the local timer firing failover checks through the same
handler the `failover_check` Lambda runs. Nothing leaves the machine: every channel goes to the
sandbox provider. State lives in memory and is gone when the stack stops.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Where the demo credentials go; tests point it elsewhere to leave a developer's own alone.
STATE_DIR = Path(os.environ.get("DISPATCH_LOCAL_DIR", ROOT / ".local"))
HOST = "127.0.0.1"
MESSENGER_TEXT = "This is a Facebook Messenger Message sent from the Dispatch API"


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    # The emulator's per-request lines would drown the service's own logs.
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    moto = _start_moto()
    from chalice.cli.factory import CLIFactory

    factory = CLIFactory(str(ROOT), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name="local")
    app = config.chalice_app  # imports app.py and applies the stage's environment variables
    demo = _prepare(port)
    server = factory.create_local_server(app, config, HOST, port)
    _print_banner(port, demo)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        from chalicelib import bootstrap

        bootstrap.local_timer().stop()
        moto.stop()
    return 0


def _start_moto():
    from moto.server import ThreadedMotoServer

    moto_port = _free_port()
    server = ThreadedMotoServer(ip_address=HOST, port=moto_port, verbose=False)
    server.start()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://{HOST}:{moto_port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "eu-west-1"),
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        }
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    return server


def _prepare(port: int) -> dict:
    """Create the table and the demo application; write its credentials under .local/."""
    import boto3

    from chalicelib.adapters.dynamodb_table import create_table
    from chalicelib.bootstrap import get_services
    from chalicelib.service.applications import create_application

    services = get_services()
    create_table(boto3.client("dynamodb"), services.settings.table_name)
    status_url = f"http://{HOST}:{port}/sandbox/callbacks"
    creds = create_application(
        services.applications,
        services.secrets,
        "demo",
        status_url,
        None,
        services.clock.now(),
        services.settings.secret_prefix,
    )
    STATE_DIR.mkdir(exist_ok=True)
    key_path = STATE_DIR / "demo-app.key"
    key_path.write_text(creds.private_key_pem)
    key_path.chmod(0o600)
    demo = {
        "application_id": creds.application_id,
        "api_key": creds.api_key,
        "api_secret": creds.api_secret,
        "private_key_path": str(key_path),
        "signature_secret": creds.signature_secret,
        "status_url": status_url,
        "base_url": f"http://{HOST}:{port}",
    }
    demo_path = STATE_DIR / "demo-app.json"
    demo_path.write_text(json.dumps(demo, indent=2) + "\n")
    demo_path.chmod(0o600)
    return demo


def _print_banner(port: int, demo: dict) -> None:
    seed = {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "messenger", "id": "1111111111111111"},
                "to": {"type": "messenger", "id": "0000000000000000"},
                "message": {"content": {"type": "text", "text": MESSENGER_TEXT}},
                "failover": {"expiry_time": 600, "condition_status": "read"},
            },
            {
                "from": {"type": "sms", "number": "447700900001"},
                "to": {"type": "sms", "number": "447700900000"},
                "message": {"content": {"type": "text", "text": "This is an SMS sent from the Dispatch API"}},
            },
        ],
    }
    print(f"dispatch local stack on {demo['base_url']}  (demo credentials: {STATE_DIR / 'demo-app.json'})")
    print("Send the seed's Messenger -> SMS dispatch:\n")
    print(f"curl -sS -X POST {demo['base_url']}/v0.1/dispatch \\")
    print(f"  -u '{demo['api_key']}:{demo['api_secret']}' \\")
    print("  -H 'Content-Type: application/json' \\")
    print(f"  -d '{json.dumps(seed)}'\n", flush=True)


def _interrupt(*_: object) -> None:
    # serve_forever() can only be stopped from another thread; unwinding it is simpler.
    raise KeyboardInterrupt


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
