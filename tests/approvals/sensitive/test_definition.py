"""Where `x-sensitive` may go in a definition, each misuse refused at save time with its place."""

from __future__ import annotations

import pytest

from approvals.machine.config import sensitive_fields
from approvals.services.definitions import definition_problems
from tests.approvals.sensitive.flows import payment_flow
from tests.factories import GroupFactory

pytestmark = pytest.mark.django_db


def problems_of(config) -> list[str]:
    return definition_problems(config)


def test_the_flow_is_valid_and_names_its_sensitive_field():
    GroupFactory(name="manager")
    config = payment_flow()
    assert problems_of(config) == []
    assert sensitive_fields(config["form"]) == {"iban"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["form"]["properties"]["iban"].update({"x-sensitive": "yes"}),
            "form.properties.iban.x-sensitive",
        ),
        (
            lambda c: c["form"]["properties"].update(
                {
                    "address": {
                        "type": "object",
                        "properties": {"street": {"type": "string", "x-sensitive": True}},
                    }
                }
            ),
            "only a field of the form itself",
        ),
        (lambda c: c.update({"inbox_columns": ["iban"]}), "the inbox cannot show, sort or filter"),
        (lambda c: c.update({"title": "Pay {iban}"}), "a title is shown in lists"),
        (
            lambda c: c["form"]["properties"]["title"].update({"x-sensitive": True}),
            "the form's `title` field names the request",
        ),
    ],
)
def test_misuses_are_refused_with_their_place(change, expected):
    config = payment_flow()
    change(config)
    found = problems_of(config)
    assert any(expected in problem for problem in found), found
