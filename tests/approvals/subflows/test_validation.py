"""What is wrong with a sub-workflow step is said when the definition is published, where it
can be known then: the child's workflow, its form's fields and types, circles."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.machine.validation import validate_config
from approvals.services.definitions import definition_problems
from approvals.services.errors import InvalidInput
from tests.approvals.flows import publish
from tests.approvals.subflows.flows import child_flow, parent_flow
from tests.factories import GroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _roles(db):
    for name in ("procurement", "manager"):
        GroupFactory(name=name)


def with_invoke(**changes: Any) -> dict[str, Any]:
    invoke = {
        "src": "workflow:vendor-onboarding",
        "input": {"vendor": "vendor_name"},
        "onDone": "review",
        "onError": "no_vendor",
        **changes,
    }
    return parent_flow({k: v for k, v in invoke.items() if v is not None})


def problems(config: dict[str, Any]) -> list[str]:
    return definition_problems(config)


def test_a_valid_parent_has_no_problems():
    publish(child_flow())
    assert problems(with_invoke()) == []


def test_a_workflow_that_is_not_published_is_named():
    (problem,) = problems(with_invoke())
    assert "there is no published workflow *vendor-onboarding*" in problem
    assert problem.endswith("(states.onboard.invoke.src)")


def test_a_pinned_version_that_does_not_exist_or_is_not_a_number():
    publish(child_flow())
    (missing,) = problems(with_invoke(src="workflow:vendor-onboarding@7"))
    assert "has no version 7 that is published or retired" in missing
    (bad,) = problems(with_invoke(src="workflow:vendor-onboarding@latest"))
    assert "must be a whole number from 1, not 'latest'" in bad
    (shape,) = problems(with_invoke(src="workflow:Not A Key"))
    assert "does not name a workflow" in shape


def test_a_field_the_child_form_does_not_have_is_an_error_with_a_suggestion():
    publish(child_flow())
    (problem,) = problems(with_invoke(input={"vendor": "vendor_name", "vendr": "vendor_name"}))
    assert "*vendr* is not a field of the form of *vendor-onboarding*" in problem
    assert "vendor" in problem and problem.endswith("(states.onboard.invoke.input)")


def test_a_required_child_field_left_out_is_an_error():
    publish(child_flow())
    (problem,) = problems(with_invoke(input={"country": "'DE'"}))
    assert "the form of *vendor-onboarding* requires *vendor*" in problem


def test_a_field_of_the_wrong_type_is_an_error():
    publish(child_flow())
    (problem,) = problems(with_invoke(input={"vendor": "amount"}))
    assert "*amount* is integer or number here, but *vendor* of *vendor-onboarding* takes" in (
        problem
    )
    assert problem.endswith("(states.onboard.invoke.input.vendor)")


def test_an_input_expression_that_does_not_parse_is_an_error():
    publish(child_flow())
    (problem,) = problems(with_invoke(input={"vendor": "vendor_name +"}))
    assert problem.endswith("(states.onboard.invoke.input.vendor)")


def test_retry_on_error_required_and_cancel_children_only_for_sub_workflows():
    publish(child_flow())
    found = problems(with_invoke(retry={"max_attempts": 2}, onError=None))
    assert any("has no retry" in p for p in found)
    assert any("a sub-workflow needs onError" in p for p in found)
    assert any(
        "cancel_children" in p and "expected true or false" in p
        for p in problems(with_invoke(cancel_children="no"))
    )
    action = parent_flow(
        {"src": "notify", "cancel_children": False, "onDone": "review", "onError": "no_vendor"}
    )
    (problem,) = problems(action)
    assert "only a sub-workflow" in problem


def test_a_circle_of_sub_workflows_is_refused_at_publish():
    publish(child_flow())
    publish(with_invoke())
    # The child now wants to start a purchase: purchase → vendor-onboarding → purchase.
    child = child_flow()
    child["form"]["properties"]["amount"] = {"type": "number"}
    child["states"]["check"]["on"]["BUY"] = "buying"
    child["states"]["buying"] = {
        "invoke": {
            "src": "workflow:purchase",
            "input": {"vendor_name": "vendor", "amount": "1"},
            "onDone": "onboarded",
            "onError": "refused",
        }
    }
    (problem,) = problems(child)
    assert "in a circle: vendor-onboarding → purchase → vendor-onboarding" in problem
    with pytest.raises(InvalidInput):
        publish(child)
    own = with_invoke(src="workflow:purchase")
    assert any("cannot start a request of itself" in p for p in problems(own))


def test_output_is_for_final_states_and_holds_expressions():
    child = child_flow()
    child["states"]["check"]["meta"]["output"] = {"x": "vendor"}
    child["states"]["onboarded"]["meta"]["output"] = {"vendor_id": "vendor +", "bad name": "1"}
    found = validate_config(child)
    assert any("only a final state has an output" in p for p in found)
    assert any(p.endswith("(states.onboarded.meta.output.vendor_id)") for p in found)
    assert any("invalid output name 'bad name'" in p for p in found)
