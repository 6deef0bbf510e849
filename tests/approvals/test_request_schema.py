"""The request form's messages: one per problem and field, defaults filled before checking."""

from __future__ import annotations

from approvals.request_schema import form_errors, with_defaults

SCHEMA = {
    "type": "object",
    "required": ["title", "amount", "currency"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "amount": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "enum": ["EUR", "USD"], "default": "EUR"},
    },
}


def test_each_missing_field_is_named_once():
    assert form_errors(SCHEMA, {}) == {
        "title": ["This field is required."],
        "amount": ["This field is required."],
        "currency": ["This field is required."],
    }


def test_each_unknown_field_is_named_once():
    errors = form_errors(SCHEMA, {"title": "a", "amount": 1, "currency": "EUR", "x": 1, "y": 2})
    assert errors == {"x": ["Unknown field."], "y": ["Unknown field."]}


def test_a_default_fills_a_required_field_but_a_bad_value_is_still_refused():
    assert form_errors(SCHEMA, with_defaults(SCHEMA, {"title": "a", "amount": 1})) == {}
    errors = form_errors(SCHEMA, with_defaults(SCHEMA, {"title": "a", "amount": 1, "currency": 5}))
    assert errors == {"currency": ["5 is not of type 'string'.", "5 is not one of ['EUR', 'USD']."]}


def test_a_request_that_is_not_an_object_is_refused_as_a_whole():
    errors = form_errors(SCHEMA, ["title"])
    assert errors == {"__all__": ["the request must be an object of fields"]}
