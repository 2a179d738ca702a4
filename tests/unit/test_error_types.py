"""docs/errors.md lists every problem type a client can be answered."""
from __future__ import annotations

import re
from pathlib import Path

from chalicelib.api import errors

ERRORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_error_class_has_a_row_in_docs_errors_md() -> None:
    documented = set(re.findall(r"urn:dispatch:problem:([a-z-]+)", ERRORS_DOC.read_text()))
    slugs = {cls.slug for cls in [errors.ApiError, *_subclasses(errors.ApiError)]}
    assert slugs <= documented, f"docs/errors.md has no row for {sorted(slugs - documented)}"
