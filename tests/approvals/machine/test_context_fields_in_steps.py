"""Named delays (`after: {expires_in: ...}`), roles_from and sla_from: validated at publish."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from approvals.machine.durations import DurationError, is_delay_name
from approvals.machine.statechart import Statechart
from approvals.machine.validation import validate_config


def flow(**task: Any) -> dict[str, Any]:
    return {
        "id": "ask",
        "title": "Ask",
        "initial": "review",
        "form": {
            "type": "object",
            "properties": {
                "roles": {"type": "array", "items": {"type": "string"}},
                "sla": {"type": "string"},
                "expires_in": {"type": "string"},
            },
        },
        "states": {
            "review": {
                "meta": {"task": {"roles_from": "roles", "sla_from": "sla", **task}},
                "on": {"APPROVE": "done"},
                "after": {"expires_in": "timed_out"},
            },
            "done": {"type": "final"},
            "timed_out": {"type": "final", "meta": {"outcome": "cancelled"}},
        },
    }


def test_a_valid_flow_compiles_with_its_named_delay_and_fields() -> None:
    assert validate_config(flow()) == []
    chart = Statechart(flow())
    spec = chart.state("review").task
    assert (spec.roles_from, spec.sla_from, spec.roles) == ("roles", "sla", ())
    assert list(chart.state("review").after) == ["expires_in"]
    assert chart.delay("expires_in", {"expires_in": "PT4H"}) == timedelta(hours=4)
    assert chart.delay("PT5M", {}) == timedelta(minutes=5)
    assert chart.delay("5000", {}) == timedelta(seconds=5)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({}, "holds no duration"),
        ({"expires_in": "soon"}, "the field expires_in"),
        ({"expires_in": "P1M"}, "ambiguous"),
    ],
)
def test_a_named_delay_without_a_duration_in_its_field_is_an_error(context, message) -> None:
    with pytest.raises(DurationError, match=message):
        Statechart(flow()).delay("expires_in", context)


def test_delay_names_are_names_that_are_not_durations() -> None:
    assert is_delay_name("expires_in")
    assert not is_delay_name("P2D") and not is_delay_name("PT4H") and not is_delay_name("5000")
    assert not is_delay_name("two days")
    assert not is_delay_name("P2M") and not is_delay_name("PT") and not is_delay_name("p0d")


def _problems(config: dict[str, Any]) -> str:
    return " | ".join(validate_config(config))


def test_a_named_delay_must_be_a_form_field() -> None:
    config = flow()
    config["states"]["review"]["after"] = {"expires": "timed_out"}
    assert "the name of a form field that holds one; did you mean *expires_in*?" in _problems(
        config
    )


def test_roles_from_and_sla_from_must_be_form_fields() -> None:
    problems = _problems(flow(roles_from="who", sla_from="when"))
    assert "roles_from reads the form field *who*" in problems
    assert "sla_from reads the form field *when*" in problems


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"roles": ["manager"]}, "roles or roles_from, not both"),
        ({"sla": "P1D"}, "sla or sla_from, not both"),
        ({"rule": "all"}, "rule all needs the roles written in the definition"),
        ({"rule": "everyone"}, "rule everyone needs the roles written"),
        ({"requester": True}, "not both"),
    ],
)
def test_bad_combinations_are_refused(task: dict[str, Any], message: str) -> None:
    assert message in _problems(flow(**task))


def test_escalation_takes_sla_from_as_its_sla() -> None:
    config = flow(escalate_to=["director"])
    assert "needs an sla" not in _problems(config)
    del config["states"]["review"]["meta"]["task"]["sla_from"]
    assert "needs an sla" in _problems(copy.deepcopy(config))
