"""`make bench` section "cold_start": a fresh process's first request, and the package's size.

Cold start. Each sample is a fresh Python process that imports the application and hands its
handler one API Gateway event, `POST /v0.1/dispatch`, as the Lambda runtime would: the timed part
is `import app` plus that first request, after which a second request shows what was one-time
cost. The service runs with the `prod` stage's wiring from `chalicelib.bootstrap` (DynamoDB,
the Step Functions timer, callbacks on SQS), its channels on the sandbox provider so nothing
leaves the machine. Its AWS calls go to moto's server on a loopback port (`AWS_ENDPOINT_URL`),
not to moto in-process: moto imports boto3 itself, which would hide the cost the first request
really pays on Lambda, where boto3 is imported and each client built lazily on first use. Each
emulated call takes a few ms, about what DynamoDB takes from a Lambda in its region. The
baseline is `benchmarks.bare_app` started the same way in the same environment. Processes
alternate service, bare, service... and each figure is a median.

`import.<package>` figures come from `python -X importtime -c "import app"`: the self time of
every module of a package summed (a `chalicelib` layer counts as a package), so the figures add
up to the whole import and each millisecond is counted once; the largest show what to make lazy.

Package size. The `prod` stage's `deployment.zip` from `chalice package` (`scripts/package.py`):
an existing one under build/ is used if it is newer than the code and requirements, or one this
section built before into the temp directory; otherwise it is built there (about 30 s). A quick
run never builds when a package exists at all: it measures the newest, and says it is stale.

This module is also the child process (`python -m benchmarks.cold_start --child service`), so its
top-level imports are the few the child needs, to preload nothing the timed import would load.
"""
from __future__ import annotations

import os
import sys
import time

#: Not `typing.TYPE_CHECKING`: importing typing here would take it off the timed import.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any

    from benchmarks.report import Figure

SECTION = "cold_start"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "us-east-1"
TABLE = "dispatch-cold-start"
PREFIX = "dispatch-cold-start"
STAGE = "prod"
#: Lambda's limits on a function's package: zipped (direct upload) and unzipped.
ZIP_LIMIT_MB, UNZIPPED_LIMIT_MB = 50, 250
PACKAGE_CACHE = "dispatch-bench-package"
#: The lock tests/infra/test_package.py takes: Chalice's package cache is not safe to share.
PACKAGE_LOCK = "dispatch-chalice-package.lock"
CHILD_MODULES = {"service": "app", "bare": "benchmarks.bare_app"}
RESULT = "COLD-START-RESULT "
FIRST_NOTES = {
    "service": (
        "services built: lazy imports (boto3...), boto3 clients, then the request's AWS calls",
        "the same process's next request: its AWS calls to moto's server and warm code",
    ),
    "bare": ("", "the same process's next request"),
}


def run(quick: bool) -> list[Figure]:
    figures = cold_starts(5 if quick else 15)
    figures += import_times(1 if quick else 3)
    figures += package_size(build_if_stale=not quick)
    return figures


# --- cold start ---------------------------------------------------------------------------------


def cold_starts(samples: int) -> list[Figure]:
    import json
    import statistics

    from benchmarks.bodies import TWO_STEPS
    from benchmarks.report import Figure

    with _EmulatedAws() as environ:
        environ["COLD_START_BODY"] = json.dumps(TWO_STEPS)
        results: dict[str, list[dict[str, float]]] = {mode: [] for mode in CHILD_MODULES}
        for _ in range(samples):
            for mode in CHILD_MODULES:
                results[mode].append(_child_run(mode, environ))

    def median(mode: str, key: str) -> float:
        return statistics.median(sample[key] for sample in results[mode])

    def total(mode: str) -> float:
        return statistics.median(sample["import_ms"] + sample["first_ms"] for sample in results[mode])

    figures = []
    for mode in CHILD_MODULES:
        first, second = FIRST_NOTES[mode]
        figures += [
            Figure(SECTION, f"{mode}.total", round(total(mode), 1), "ms", note="import + first request"),
            Figure(SECTION, f"{mode}.import", round(median(mode, "import_ms"), 1), "ms"),
            Figure(SECTION, f"{mode}.first_request", round(median(mode, "first_ms"), 1), "ms", note=first),
            Figure(SECTION, f"{mode}.second_request", round(median(mode, "second_ms"), 2), "ms", note=second),
        ]
    figures.append(
        Figure(SECTION, "ratio", round(total("service") / total("bare"), 2), "ratio",
               note=f"service.total / bare.total; medians of {samples} fresh processes each, interleaved")
    )
    return figures


def _child_run(mode: str, environ: dict[str, str]) -> dict[str, float]:
    import json
    import subprocess

    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.cold_start", "--child", mode],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} child failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return dict(json.loads(lines[-1][len(RESULT):]))


def child(mode: str) -> None:
    """In a fresh process: import the app, then two requests through its Lambda handler."""
    import importlib

    started = time.perf_counter()
    app = importlib.import_module(CHILD_MODULES[mode]).app
    imported = time.perf_counter()
    first = app(_event(), _Context())
    answered = time.perf_counter()
    second = app(_event(), _Context())
    again = time.perf_counter()
    for response in (first, second):
        if response["statusCode"] != 202:
            raise SystemExit(f"expected 202, got {response['statusCode']}: {response['body'][:300]}")
    import json

    timings = {
        "import_ms": (imported - started) * 1000,
        "first_ms": (answered - imported) * 1000,
        "second_ms": (again - answered) * 1000,
    }
    print(RESULT + json.dumps(timings), flush=True)


def _event() -> dict[str, Any]:
    """`POST /v0.1/dispatch` as API Gateway's REST proxy integration hands it to the handler."""
    headers = {
        "Authorization": os.environ["COLD_START_AUTHORIZATION"],
        "Content-Type": "application/json",
        "Host": "example.execute-api.us-east-1.amazonaws.com",
    }
    return {
        "resource": "/v0.1/dispatch",
        "path": "/v0.1/dispatch",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/v0.1/dispatch",
            "httpMethod": "POST",
            "path": "/api/v0.1/dispatch",
            "stage": "api",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7"},
        },
        "body": os.environ["COLD_START_BODY"],
        "isBase64Encoded": False,
    }


class _Context:
    """The parts of Lambda's context object Chalice and the service may read."""

    function_name = "dispatch-prod"
    memory_limit_in_mb = 512
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:dispatch-prod"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class _EmulatedAws:
    """moto's server on a free loopback port, provisioned as the `prod` stack would be (table,
    state machine, callback queue, one application); yields the children's environment."""

    def __enter__(self) -> dict[str, str]:
        import threading

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
        threading.Thread(target=self._server.serve_forever, name="moto-cold-start", daemon=True).start()
        endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        aws = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DISPATCH_"))}
        environ.update(aws)
        return {**environ, **_provision(aws)}

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _provision(aws: dict[str, str]) -> dict[str, str]:
    """Create the stack's resources and an application; returns the function's settings."""
    import base64
    import json
    from datetime import datetime, timezone

    import boto3

    from chalicelib.adapters.dynamodb_applications import DynamoApplicationRepository
    from chalicelib.adapters.dynamodb_table import create_table
    from chalicelib.adapters.secrets import SecretsManagerStore
    from chalicelib.service.applications import create_application

    session = boto3.Session(
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )

    def client(name: str) -> Any:
        return session.client(name, endpoint_url=aws["AWS_ENDPOINT_URL"])

    create_table(client("dynamodb"), TABLE)
    credentials = create_application(
        DynamoApplicationRepository(client("dynamodb"), TABLE),
        SecretsManagerStore(client("secretsmanager")),
        "cold-start",
        "https://app.example/dispatch/status",
        None,
        datetime.now(timezone.utc),
        PREFIX,
    )
    role = client("iam").create_role(RoleName=f"{PREFIX}-timer", AssumeRolePolicyDocument="{}")
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}
    machine = client("stepfunctions").create_state_machine(
        name=f"{PREFIX}-timer", definition=json.dumps(definition), roleArn=role["Role"]["Arn"]
    )
    queue = client("sqs").create_queue(QueueName=f"{PREFIX}-callbacks")
    pair = f"{credentials.api_key}:{credentials.api_secret}".encode()
    channels = ("sms", "mms", "whatsapp", "messenger", "viber_service_msg")
    return {
        "DISPATCH_STAGE": STAGE,
        "DISPATCH_LOG_LEVEL": "INFO",
        "DISPATCH_TABLE": TABLE,
        "DISPATCH_SECRET_PREFIX": PREFIX,
        "DISPATCH_TIMER_BACKEND": "stepfunctions",
        "DISPATCH_STATE_MACHINE_ARN": machine["stateMachineArn"],
        "DISPATCH_CALLBACK_DELIVERY": "sqs",
        "DISPATCH_CALLBACK_QUEUE_URL": queue["QueueUrl"],
        "DISPATCH_CHANNEL_PROVIDERS": json.dumps({channel: "sandbox" for channel in channels}),
        "COLD_START_AUTHORIZATION": "Basic " + base64.b64encode(pair).decode(),
    }


# --- import time ----------------------------------------------------------------------------------


def import_times(runs: int) -> list[Figure]:
    """The self time of each package's modules while `import app` runs, summed; the 10 largest,
    median over `runs` fresh processes."""
    import statistics
    import subprocess

    from benchmarks.report import Figure

    samples: list[dict[str, float]] = []
    for _ in range(runs):
        completed = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import app"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
        )
        samples.append(self_time_by_package(completed.stderr))
    packages = {name for sample in samples for name in sample}
    medians = {name: statistics.median(s.get(name, 0.0) for s in samples) for name in packages}
    total = statistics.median(sum(sample.values()) for sample in samples)
    top = sorted(medians.items(), key=lambda item: item[1], reverse=True)[:10]
    figures = [
        Figure(SECTION, "import.total", round(total, 1), "ms", note="python -X importtime -c 'import app'")
    ]
    figures += [
        Figure(SECTION, f"import.{name}", round(ms, 1), "ms", note=f"{100 * ms / total:.0f}%, self time")
        for name, ms in top
    ]
    return figures


def self_time_by_package(importtime_output: str) -> dict[str, float]:
    """ms of self time per package, from `-X importtime` lines: `import time: self | cum | name`.
    The project's modules are counted by layer (`chalicelib.api`), others by top-level package."""
    totals: dict[str, float] = {}
    for line in importtime_output.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        parts = name.split(".")
        package = ".".join(parts[:2]) if parts[0] == "chalicelib" and len(parts) > 2 else parts[0]
        totals[package] = totals.get(package, 0.0) + int(self_us) / 1000
    return totals


# --- package size ---------------------------------------------------------------------------------


def package_size(build_if_stale: bool) -> list[Figure]:
    from benchmarks.report import at_most

    zip_path, how = _deployment_zip(build_if_stale)
    sizes = unzipped_by_distribution(zip_path)
    unzipped = sum(sizes.values())
    top = sorted(sizes.items(), key=lambda item: item[1], reverse=True)[:5]
    listed = ", ".join(f"{name} {size / 1e6:.1f}" for name, size in top)
    return [
        at_most(SECTION, "package.zip", round(zip_path.stat().st_size / 1e6, 2), "MB", ZIP_LIMIT_MB,
                f"{STAGE} deployment.zip, {how}"),
        at_most(SECTION, "package.unzipped", round(unzipped / 1e6, 2), "MB", UNZIPPED_LIMIT_MB,
                f"largest (MB): {listed}"),
    ]


def _deployment_zip(build_if_stale: bool) -> tuple[Path, str]:
    """The zip to measure and how it was found: fresh, built now, or stale."""
    import tempfile
    from pathlib import Path

    cache = Path(tempfile.gettempdir()) / PACKAGE_CACHE / STAGE
    candidates = [Path(ROOT, "build", STAGE, "deployment.zip"), cache / "deployment.zip"]
    existing = sorted((p for p in candidates if p.exists()), key=lambda p: p.stat().st_mtime, reverse=True)
    newest_source = max(p.stat().st_mtime for p in _sources())
    if existing and existing[0].stat().st_mtime > newest_source:
        return existing[0], f"up to date ({_shown(existing[0])})"
    if existing and not build_if_stale:
        return existing[0], f"STALE: older than the code ({_shown(existing[0])})"
    _build(cache)
    return cache / "deployment.zip", "built now"


def _sources() -> Iterator[Path]:
    """What the package is made of: the code, its requirements and the stage configuration."""
    from pathlib import Path

    root = Path(ROOT)
    yield from (root / "requirements.txt", root / "app.py", root / ".chalice" / "config.json")
    yield from (p for p in (root / "chalicelib").rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _build(out_dir: Path) -> None:
    """`scripts/package.py` (what `make package` runs) into a fresh folder, then moved to
    `out_dir`, so an interrupted build never leaves a half-written package to be measured."""
    import fcntl
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / PACKAGE_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        building = Path(tempfile.mkdtemp(dir=out_dir.parent))
        command = [sys.executable, "scripts/package.py", "--stage", STAGE, "--out", str(building)]
        try:
            subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=600)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        shutil.rmtree(out_dir, ignore_errors=True)
        building.rename(out_dir)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def unzipped_by_distribution(zip_path: Path) -> dict[str, int]:
    """Bytes each distribution takes unzipped, from the files its `.dist-info/RECORD` lists
    (itself included); a file no RECORD lists counts under its top-level name (`chalicelib`)."""
    import zipfile

    with zipfile.ZipFile(zip_path) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist() if not info.is_dir()}
        owner: dict[str, str] = {}
        for name in sizes:
            if name.endswith(".dist-info/RECORD"):
                distribution = name.split("/")[0].removesuffix(".dist-info").rsplit("-", 1)[0]
                for line in archive.read(name).decode("utf-8").splitlines():
                    listed = line.rsplit(",", 2)[0]
                    owner[listed] = distribution
    totals: dict[str, int] = {}
    for name, size in sizes.items():
        key = owner.get(name, name.split("/")[0])
        totals[key] = totals.get(key, 0) + size
    return totals


if __name__ == "__main__":
    if sys.argv[1:2] != ["--child"] or len(sys.argv) != 3 or sys.argv[2] not in CHILD_MODULES:
        raise SystemExit(f"usage: python -m benchmarks.cold_start --child {{{','.join(CHILD_MODULES)}}}")
    child(sys.argv[2])
