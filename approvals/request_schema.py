"""The request form: a definition's JSON Schema applied to what the requester sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator


def with_defaults(schema: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level `default`s filled in, so guards such as `revisions + 1` find their field."""
    filled = dict(data)
    for name, prop in (schema.get("properties") or {}).items():
        if name not in filled and isinstance(prop, Mapping) and "default" in prop:
            filled[name] = prop["default"]
    return filled


def form_errors(schema: Mapping[str, Any], data: Any) -> dict[str, list[str]]:
    """Messages per field ("__all__" for the whole request), empty when valid."""
    if not isinstance(data, Mapping):
        return {"__all__": ["the request must be an object of fields"]}
    errors: dict[str, list[str]] = {}
    for error in Draft202012Validator(schema).iter_errors(data):
        if error.validator == "required" and not error.path:
            present = set(data)
            for name in error.validator_value:
                if name not in present:
                    errors.setdefault(name, []).append("This field is required.")
            continue
        if error.validator == "additionalProperties" and not error.path:
            allowed = set(schema.get("properties") or {})
            for name in data:
                if name not in allowed:
                    errors.setdefault(name, []).append("Unknown field.")
            continue
        field = ".".join(str(p) for p in error.path) or "__all__"
        errors.setdefault(field, []).append(sentence(error.message))
    return errors


def sentence(message: str) -> str:
    """A message as a sentence: capital first, full stop last."""
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
