"""Validation of the assessment's machine-readable outputs against their published schemas."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema

DOCS = Path(__file__).resolve().parents[1] / "docs"


@cache
def _validator(name: str, cls):
    schema = json.loads((DOCS / name).read_text())
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def assert_valid_findings(data: dict) -> None:
    """findings.json against docs/findings.schema.json (JSON Schema 2020-12)."""
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in _validator("findings.schema.json", jsonschema.Draft202012Validator).iter_errors(data)]
    assert not errors, errors[:5]


def assert_valid_sarif(data: dict) -> None:
    """A SARIF log against the official OASIS SARIF 2.1.0 schema (draft-04)."""
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in _validator("schemas/sarif-schema-2.1.0.json", jsonschema.Draft4Validator).iter_errors(data)]
    assert not errors, errors[:5]
