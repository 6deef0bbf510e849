"""Title templates: a request named from its form, the workflow named by its fields' titles."""

from __future__ import annotations

import copy

import pytest

from approvals.machine.titles import placeholders, readable_title, render_title
from approvals.machine.validation import canonical_config, validate_config
from tests.approvals.machine.test_validation import path_first

FORM = {
    "type": "object",
    "properties": {
        "system": {"type": "string", "title": "System"},
        "access_level": {"type": "string", "title": "Access level"},
        "note": {"type": "string"},
        "amount": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}
TEMPLATE = "{system} · {access_level} · {requester}"

CONFIG = {
    "id": "access",
    "title": TEMPLATE,
    "initial": "review",
    "form": FORM,
    "inbox_columns": ["system", "amount"],
    "states": {
        "review": {"meta": {"task": {"roles": ["security"]}}, "on": {"APPROVE": "done"}},
        "done": {"type": "final"},
    },
}


def test_a_request_is_named_from_its_fields_and_requester():
    context = {"system": "github", "access_level": "write"}
    assert render_title(TEMPLATE, context, "Alice Anders") == "github · write · Alice Anders"


def test_fixed_values_read_as_their_titles():
    form = {
        "properties": {
            "system": {"type": "string", "enum": ["github"], "x-enumNames": ["GitHub"]},
            "access_level": {
                "type": "string",
                "oneOf": [{"const": "write", "title": "Read and write"}],
            },
        }
    }
    context = {"system": "github", "access_level": "write"}
    title = render_title(TEMPLATE, context, "Alice Anders", form=form)
    assert title == "GitHub · Read and write · Alice Anders"
    assert render_title(TEMPLATE, {"system": "github"}, "Alice", form=form) == "GitHub · Alice"


def test_a_template_names_the_requests_and_the_workflow_is_named_by_its_id():
    assert readable_title(TEMPLATE, "access-request") == "Access request"
    assert readable_title("{note} ({amount})", "petty_cash") == "Petty cash"
    assert readable_title("Purchase order", "po") == "Purchase order"


@pytest.mark.parametrize(
    ("template", "context", "title"),
    [
        ("{system} · {note}", {"system": "aws"}, "aws"),
        ("{note} · {system}", {"system": "aws"}, "aws"),
        ("{system} · {note} · {requester}", {"system": "aws", "note": ""}, "aws · Rita"),
        ("Order {amount}", {"amount": 1200.0}, "Order 1200"),
        ("Order {amount}", {"amount": 12.5}, "Order 12.5"),
        ("{tags}", {"tags": ["a", "b"]}, "a, b"),
        ("Plain name", {"system": "aws"}, "Plain name"),
        ("{system}", {"system": "PO-1 - urgent"}, "PO-1 - urgent"),
    ],
)
def test_empty_fields_leave_no_trace_and_values_read_as_text(template, context, title):
    assert render_title(template, context, "Rita") == title


def test_a_long_title_is_cut():
    title = render_title("{note}", {"note": "x" * 500}, "Rita")
    assert len(title) == 200 and title.endswith("…")


def test_placeholders_in_order_once():
    assert placeholders("{a} {b} {a} {1} { c }") == ["a", "b"]


def test_a_valid_template_and_columns_pass_and_stay_in_the_canonical_form():
    assert validate_config(CONFIG) == []
    canonical = canonical_config(CONFIG)
    assert canonical["title"] == TEMPLATE and canonical["inbox_columns"] == ["system", "amount"]
    assert canonical_config(canonical) == canonical


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"title": "{system} · {acces_level}"},
            "title: placeholder '{acces_level}' is not a field of the start form "
            "(form.properties) (did you mean 'access_level'?)",
        ),
        (
            {"title": "{system} for {who}"},
            "title: placeholder '{who}' is not a field of the start form (form.properties)",
        ),
        (
            {"title": "{system"},
            "title: a brace that is not part of a placeholder: write placeholders as {field}, "
            "a field of the start form (form.properties), or {requester}",
        ),
        (
            {"inbox_columns": ["system", "vendr"]},
            "inbox_columns: the form field *vendr* does not exist",
        ),
        (
            {"inbox_columns": ["system", "system"]},
            "inbox_columns[1]: form field 'system' is listed twice",
        ),
        ({"inbox_columns": "system"}, "inbox_columns: expected a list of form field names"),
        ({"inbox_columns": []}, "inbox_columns: expected at least one form field"),
        ({"inbox_columns": [3]}, "inbox_columns[0]: expected a string, got a number"),
    ],
)
def test_validation_refuses_unknown_placeholders_and_columns_with_the_path(change, problem):
    config = {**copy.deepcopy(CONFIG), **change}
    problems = [path_first(p) for p in validate_config(config)]
    assert any(p.startswith(problem) for p in problems), problems


def test_more_than_five_columns_are_refused():
    form = {
        "type": "object",
        "properties": {f"f{n}": {"type": "string"} for n in range(6)},
    }
    config = {**CONFIG, "title": "T", "form": form, "inbox_columns": [f"f{n}" for n in range(6)]}
    assert "inbox_columns: at most 5 columns" in [path_first(p) for p in validate_config(config)]


def test_a_template_without_a_form_has_only_the_requester():
    config = {**CONFIG, "title": "{requester}'s request", "form": {"type": "object"}}
    config.pop("inbox_columns")
    assert [path_first(p) for p in validate_config(config)] == []
    config["title"] = "{system}"
    [problem] = [path_first(p) for p in validate_config(config)]
    assert problem.startswith("title: placeholder '{system}' is not a field of the start form")
