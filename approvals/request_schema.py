"""The request form: a definition's JSON Schema applied to what the requester sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from approvals.machine.config import sensitive_fields


def with_defaults(schema: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level `default`s filled in before validation: a required field with a default may be
    left out, and guards such as `revisions + 1` find their field."""
    filled = dict(data)
    for name, prop in (schema.get("properties") or {}).items():
        if name not in filled and isinstance(prop, Mapping) and "default" in prop:
            filled[name] = prop["default"]
    return filled


def form_errors(schema: Mapping[str, Any], data: Any) -> dict[str, list[str]]:
    """Messages per field ("__all__" for the whole request), each once, empty when valid."""
    if not isinstance(data, Mapping):
        return {"__all__": ["the request must be an object of fields"]}
    errors: dict[str, list[str]] = {}
    hidden = sensitive_fields(schema)

    def add(field: str, message: str) -> None:
        messages = errors.setdefault(field, [])
        if message not in messages:
            messages.append(message)

    for error in Draft202012Validator(schema).iter_errors(data):
        # The validator reports `required` and `additionalProperties` once per offending
        # field, each time with the whole list: name each field by what is (not) in the data.
        if error.validator == "required" and not error.path:
            for name in error.validator_value:
                if name not in data:
                    add(name, "This field is required.")
            continue
        if error.validator == "additionalProperties" and not error.path:
            allowed = set(schema.get("properties") or {})
            for name in data:
                if name not in allowed:
                    add(name, "Unknown field.")
            continue
        message = error.message
        if error.path and error.path[0] in hidden:
            # The message quotes the value; a sensitive one is not echoed back (nor logged).
            message = message.replace(repr(error.instance), "the value")
        add(".".join(str(p) for p in error.path) or "__all__", sentence(message))
    return errors


def sentence(message: str) -> str:
    """A message as a sentence: capital first, full stop last."""
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
