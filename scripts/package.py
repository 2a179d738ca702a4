"""Build the deployable CloudFormation (SAM) template for a stage: `make package STAGE=prod`.

Runs `chalice package` with the merge template `infra/dispatch.json`, which adds what Chalice
cannot declare (the table, the timer state machine, the schedule group, their roles, the callback
queue and its dead-letter queue and alarm) and wires the Lambda environment and the callback
queue's event source to them by reference. Prints the template's path. Packaging needs no AWS
account: only a region name, which is set here if the environment has none.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = ROOT / "infra" / "dispatch.json"
#: Stages meant for AWS; `local` is the emulated stack of `make run` and has no policy file.
AWS_STAGES = ("dev", "prod")


def package(stage: str, out_dir: Path) -> Path:
    """Package `stage` into `out_dir` (deployment.zip and sam.json) and return the template."""
    if stage not in AWS_STAGES:
        raise ValueError(f"stage must be one of {AWS_STAGES}, not {stage!r}")
    env = {**os.environ}
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION", "us-east-1"))
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run(
        [
            str(chalice),
            "package",
            "--stage",
            stage,
            "--merge-template",
            str(MERGE_TEMPLATE),
            str(out_dir),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    template = out_dir / "sam.json"
    document = json.loads(template.read_text())  # fail here, not at deploy time, if it is not JSON
    if _restore_intrinsics(document, json.loads(MERGE_TEMPLATE.read_text())):
        template.write_text(json.dumps(document, indent=2) + "\n")
    return template


def _restore_intrinsics(merged: dict[str, Any], overrides: dict[str, Any]) -> bool:
    """Give every intrinsic function of the merge template back whole; True if any was mangled.

    Chalice merges the two templates dict by dict, key by key, so an intrinsic laid over one of
    Chalice's own comes out holding both: the callback event source's `Queue` becomes
    `{"Fn::Sub": "...:dispatch-callbacks", "Fn::GetAtt": ["CallbackQueue", "Arn"]}`, which
    CloudFormation rejects. An intrinsic is a value, not a mapping to merge: the template's wins.
    """
    changed = False
    for key, value in overrides.items():
        if not isinstance(value, dict) or not isinstance(merged.get(key), dict):
            continue
        if _is_intrinsic(value):
            changed |= merged[key] != value
            merged[key] = value
        else:
            changed |= _restore_intrinsics(merged[key], value)
    return changed


def _is_intrinsic(value: dict[str, Any]) -> bool:
    if len(value) != 1:
        return False
    (key,) = value
    return key == "Ref" or key.startswith("Fn::")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="prod", choices=AWS_STAGES)
    parser.add_argument("--out", type=Path, help="output folder (default build/<stage>)")
    args = parser.parse_args(argv)
    out = (args.out or ROOT / "build" / args.stage).resolve()
    try:
        template = package(args.stage, out)
    except subprocess.CalledProcessError as error:
        print(f"chalice package failed with exit status {error.returncode}", file=sys.stderr)
        return 1
    print(template)
    return 0


if __name__ == "__main__":
    sys.exit(main())
