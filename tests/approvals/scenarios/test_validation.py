"""The shapes of a definition's scenarios, checked with the rest of the definition."""

from __future__ import annotations

import copy

import pytest

from approvals.machine import canonical_config, dump_document, load_document, validate_config
from tests.approvals.scenarios.helpers import APPROVED, RESUBMITTED, flow_with


def problems(*scenarios, roles=None):
    return validate_config(flow_with(*scenarios), roles=roles)


def test_good_scenarios_pass_validation():
    assert problems(APPROVED, RESUBMITTED, roles={"manager", "director"}) == []


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        (
            {"context": {}, "expect": {"status": "completed"}},
            "The first scenario: missing required key 'name' (scenarios[0])",
        ),
        (
            {"name": "x", "steps": []},
            "The scenario *x*: missing required key 'expect' (what the run ends with) "
            "(scenarios[0])",
        ),
        (
            {"name": "x", "steps": [{"decide": "APROVE", "as_role": "manager"}], "expect": {}},
            "The scenario *x*, step 1: the event *APROVE* is accepted by no step; did you "
            "mean *APPROVE*? (scenarios[0].steps[0].decide)",
        ),
        (
            {"name": "x", "steps": [{"advance": "three days"}], "expect": {"status": "active"}},
            "(scenarios[0].steps[0].advance)",
        ),
        (
            {"name": "x", "steps": [{"event": "APPROVE", "advance": "P1D"}], "expect": {}},
            "The scenario *x*, step 1: a step is one of event: NAME, decide: NAME (with "
            "as_role) or advance: DURATION, got event and advance (scenarios[0].steps[0])",
        ),
        (
            {"name": "x", "steps": [{"event": "APPROVE", "as_role": "manager"}], "expect": {}},
            "as_role goes with decide (a task's decision)",
        ),
        (
            {"name": "x", "expect": {"state": "aproved"}},
            "The scenario *x*: the state *aproved* does not exist; did you mean *approved*? "
            "(scenarios[0].expect.state)",
        ),
        (
            {"name": "x", "expect": {"status": "done"}},
            "The scenario *x*: expected one of active, completed, rejected, cancelled, failed, "
            "withdrawn, got 'done' (scenarios[0].expect.status)",
        ),
        (
            {"name": "x", "expect": {"tasks": [{"roles": "manager"}]}},
            "The scenario *x*: expected a list of role names (scenarios[0].expect.tasks[0].roles)",
        ),
        (
            {"name": "x", "expect": {"state": "review", "colour": "red"}},
            "unknown key 'colour' (scenarios[0].expect)",
        ),
        (
            {"name": "x", "outputs": {"review": {}}, "expect": {"status": "active"}},
            "The scenario *x*: the step *review* has no action",
        ),
        (
            {"name": "x", "start_at": "monday", "expect": {"status": "active"}},
            "expected a date and time with its offset (2026-01-05T09:00:00+01:00), got 'monday' "
            "(scenarios[0].start_at)",
        ),
    ],
)
def test_bad_scenarios_are_named_with_their_place(scenario, message):
    found = problems(scenario)
    assert any(message in p for p in found), found


def test_a_role_no_step_is_offered_to_is_refused():
    scenario = {**APPROVED, "steps": [{"decide": "APPROVE", "as_role": "manger"}]}
    assert problems(scenario) == [
        "The scenario *a manager approves*, step 1: no step is offered to the role *manger*; "
        "did you mean *manager*? (scenarios[0].steps[0].as_role)"
    ]
    # A role used by several decisions is one problem, at its first use.
    twice = {**scenario, "steps": scenario["steps"] * 3}
    assert problems(twice, {**twice, "name": "again"}) == [
        "The scenario *a manager approves*, step 1: no step is offered to the role *manger* "
        "(and 5 more step(s)); did you mean *manager*? (scenarios[0].steps[0].as_role)"
    ]
    # The requester answers their own tasks; escalation roles are offered too.
    for role in ("requester", "director"):
        assert problems({**APPROVED, "steps": [{"decide": "APPROVE", "as_role": role}]}) == []


def test_names_are_unique_and_scenarios_a_list():
    assert any(
        "the name *a manager approves* is used twice" in p for p in problems(APPROVED, APPROVED)
    )
    config = flow_with()
    config["scenarios"] = {"name": "x"}
    assert validate_config(config) == [
        "The scenarios: expected a list of scenarios, got a mapping (scenarios)"
    ]


def test_scenarios_under_settings_are_refused():
    config = flow_with()
    config["settings"] = {"scenarios": [APPROVED]}
    assert any("scenarios go at the top level" in p for p in validate_config(config))


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_scenarios_round_trip_through_a_file(fmt):
    config = flow_with(APPROVED, {**RESUBMITTED, "start_at": "2026-03-02T08:00:00+01:00"})
    canonical = canonical_config(config)
    assert canonical["scenarios"] == [
        APPROVED,
        {**RESUBMITTED, "start_at": "2026-03-02T08:00:00+01:00"},
    ]
    again = canonical_config(load_document(dump_document(canonical, fmt=fmt), filename=f"x.{fmt}"))
    assert again == canonical


TIMED = """
id: timed
title: Timed
initial: review
states:
  review:
    meta: {task: {roles: [manager]}}
    on: {APPROVE: done}
  done: {type: final}
scenarios:
  - name: approved on a Monday
    start_at: 2026-03-02T08:00:00+01:00
    steps: [{decide: APPROVE, as_role: manager}]
    expect: {state: done}
"""


def test_a_yaml_timestamp_is_kept_as_text():
    canonical = canonical_config(load_document(TIMED, filename="x.yaml"))
    assert canonical["scenarios"][0]["start_at"] == "2026-03-02T08:00:00+01:00"
    assert canonical_config(copy.deepcopy(canonical)) == canonical
