"""Regenerate `components.schemas` in chalicelib/api/openapi.json from the pydantic models.

Everything else in the document is written by hand. Run after changing a model in
`chalicelib/api/request_models.py`, `response_models.py` or `callback_response_models.py`, or
after editing the document:

    .venv/bin/python scripts/gen_openapi.py           # rewrite the document, sorted and indented
    .venv/bin/python scripts/gen_openapi.py --check   # exit 1 if the document is out of date
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script, the repository root is not on the path
    sys.path.insert(0, str(ROOT))

from pydantic import BaseModel  # noqa: E402
from pydantic.json_schema import (  # noqa: E402
    GenerateJsonSchema,
    JsonSchemaValue,
    models_json_schema,
)
from pydantic_core import core_schema  # noqa: E402

from chalicelib.api import callback_response_models, request_models, response_models  # noqa: E402

DOCUMENT = ROOT / "chalicelib" / "api" / "openapi.json"
REF_TEMPLATE = "#/components/schemas/{model}"

#: The models the document names; the models they contain are pulled in with them.
MODELS: tuple[type[BaseModel], ...] = (
    request_models.CreateDispatchRequest,
    request_models.SandboxStatusRequest,
    request_models.SandboxOutageRequest,
    response_models.CreateDispatchResponse,
    response_models.CreateWorkflowResponse,
    response_models.DispatchView,
    response_models.Problem,
    response_models.MessageStatusCallback,
    response_models.FinalReportCallback,
    response_models.ReceivedCallback,
    callback_response_models.DispatchCallbacks,
    callback_response_models.CallbackList,
    callback_response_models.ReplayAccepted,
)


class _SchemaGenerator(GenerateJsonSchema):
    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        # An optional field's `None` default only means "may be omitted"; `"default": null` on a
        # string field would tell clients that null is a value it takes.
        if "default" in schema and schema["default"] is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)


def generate_schemas() -> dict[str, Any]:
    """`components.schemas` as the models define them now."""
    _, top = models_json_schema(
        [(model, "validation") for model in MODELS],
        ref_template=REF_TEMPLATE,
        schema_generator=_SchemaGenerator,
    )
    return dict(top["$defs"])


def regenerate(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with its `components.schemas` replaced by the generated ones."""
    components = {**document.get("components", {}), "schemas": generate_schemas()}
    return {**document, "components": components}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str]) -> int:
    current = DOCUMENT.read_text(encoding="utf-8")
    updated = render(regenerate(json.loads(current)))
    if "--check" in argv:
        if updated != current:
            print(f"{DOCUMENT} is out of date: run scripts/gen_openapi.py", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
