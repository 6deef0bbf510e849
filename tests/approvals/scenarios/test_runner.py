"""Running scenarios in memory: the shipped examples pass and take every transition, and a
failing scenario says where it first differs."""

from __future__ import annotations

from pathlib import Path

import pytest

from approvals.machine import canonical_config, load_document
from approvals.machine.scenarios import (
    run_scenario,
    run_scenarios,
    transition_words,
    uncovered,
)
from approvals.machine.statechart import Statechart
from tests.approvals.scenarios.helpers import APPROVED, RESUBMITTED, WRONG, flow_with

WORKFLOWS = Path(__file__).resolve().parents[3] / "approvals" / "workflows"
EXAMPLES = sorted(WORKFLOWS.glob("*.yaml"))


def chart_of(config):
    return Statechart(canonical_config(config))


def run(scenario, **task):
    config = flow_with(scenario, **task)
    return run_scenario(chart_of(config), canonical_config(config)["scenarios"][0])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_has_scenarios_that_pass_and_cover_every_transition(path):
    config = canonical_config(load_document(path.read_text(encoding="utf-8"), filename=path.name))
    chart = Statechart(config)
    results = run_scenarios(chart, config["scenarios"])
    assert len(results) >= 2
    assert [str(r) for r in results if not r.passed] == []
    assert [transition_words(t) for t in uncovered(chart, results)] == []


def test_a_passing_scenario_evaluates_guards_and_assign():
    assert run(APPROVED).passed
    result = run(RESUBMITTED)
    assert result.passed, result.difference


@pytest.mark.parametrize(
    ("expect", "difference"),
    [
        ({"state": "approved"}, "expect.state: expected approved, got review"),
        ({"status": "completed"}, "expect.status: expected completed, got active"),
        ({"context": {"revisions": 2}}, "expect.context.revisions: expected 2, got 1"),
        (
            {"context": {"note": "x"}},
            "expect.context.note: expected x, got nothing (no such field)",
        ),
        (
            {"tasks": [{"roles": ["director"]}]},
            "expect.tasks[0].roles: expected ['director'], got ['manager']",
        ),
        (
            {"tasks": []},
            "expect.tasks: expected 0 open task(s), got 1 (also review to manager)",
        ),
        (
            {"tasks": [{"state": "review"}, {"state": "review"}]},
            "expect.tasks[1]: expected a task with state review, got no such task "
            "(1 open: review to manager)",
        ),
    ],
)
def test_a_failing_scenario_reports_its_first_difference(expect, difference):
    result = run({**RESUBMITTED, "expect": expect})
    assert not result.passed
    assert result.difference == difference
    assert str(result) == f"FAIL sent back and resubmitted: {difference}"


def test_the_first_difference_is_the_first_in_order():
    result = run(WRONG)
    assert result.difference == "expect.state: expected approved, got rejected"


def test_an_event_the_state_does_not_accept_is_refused_in_words():
    result = run({**APPROVED, "steps": [{"event": "RESUBMIT"}]})
    assert not result.passed
    assert result.difference.startswith("steps[0] (event RESUBMIT): ")
    assert "(it accepts APPROVE, REJECT, REQUEST_CHANGES)" in result.difference


def test_a_decision_the_step_does_not_accept_is_refused():
    result = run({**APPROVED, "steps": [{"decide": "RESUBMIT", "as_role": "manager"}]})
    assert result.difference == (
        "steps[0] (decide RESUBMIT as manager): the step *Review* does not accept Resubmit "
        "(it accepts APPROVE, REJECT, REQUEST_CHANGES)"
    )


def test_a_role_the_step_is_not_offered_to_is_refused():
    # The directors take the step only once it escalates.
    result = run({**APPROVED, "steps": [{"decide": "APPROVE", "as_role": "director"}]})
    assert result.difference == (
        "steps[0] (decide APPROVE as director): no open task is offered to the role director "
        "(open: review to manager)"
    )


def test_advancing_time_escalates_then_flags_at_the_last_level():
    escalated = {
        "name": "late",
        "context": {"title": "Laptop", "amount": 900},
        "steps": [{"advance": "P3D"}],
        "expect": {"tasks": [{"state": "review", "roles": ["director"], "level": 1}]},
    }
    assert run(escalated).passed, run(escalated).difference
    # Past the last level the task stays with the directors (flagged, not escalated again).
    later = {**escalated, "steps": [{"advance": "P3D"}, {"advance": "P10D"}]}
    assert run(later).passed
    decided = {
        **later,
        "steps": [*later["steps"], {"decide": "APPROVE", "as_role": "director"}],
        "expect": {"state": "approved", "status": "completed"},
    }
    assert run(decided).passed
    too_soon = {**escalated, "steps": [{"advance": "P1D"}]}
    assert run(too_soon).difference == (
        "expect.tasks[0].roles: expected ['director'], got ['manager']"
    )


def test_advancing_time_fires_after_transitions():
    stale = {
        "name": "stale",
        "context": {"title": "Laptop", "amount": 900},
        "steps": [{"decide": "REQUEST_CHANGES", "as_role": "manager"}, {"advance": "P30D"}],
        "expect": {"state": "withdrawn", "status": "cancelled", "tasks": []},
    }
    assert run(stale).passed
    early = {**stale, "steps": [stale["steps"][0], {"advance": "P29D"}]}
    assert run(early).difference == "expect.state: expected withdrawn, got changes"


def test_the_requesters_own_withdrawal_ends_it_as_withdrawn():
    withdrawn = {
        "name": "withdrawn",
        "context": {"title": "Laptop", "amount": 900},
        "steps": [
            {"decide": "REQUEST_CHANGES", "as_role": "manager"},
            {"decide": "WITHDRAW", "as_role": "requester"},
        ],
        "expect": {"state": "withdrawn", "status": "withdrawn"},
    }
    assert run(withdrawn).passed


def test_a_context_that_does_not_fit_the_form_fails_the_scenario():
    result = run({**APPROVED, "context": {"title": "Laptop"}})
    assert result.difference == (
        "context: does not fit the request form (amount: This field is required.)"
    )


def test_automated_actions_return_their_declared_outputs():
    config = {
        "id": "checked",
        "title": "Checked",
        "initial": "check",
        "states": {
            "check": {
                "invoke": {
                    "src": "webhook",
                    "onDone": [
                        {"target": "ok", "guard": "event.output.status == 200"},
                        {"target": "review"},
                    ],
                    "onError": "review",
                }
            },
            "review": {"meta": {"task": {"roles": ["operator"]}}, "on": {"APPROVE": "ok"}},
            "ok": {"type": "final"},
        },
        "scenarios": [
            {
                "name": "answered 200",
                "outputs": {"check": {"status": 200}},
                "expect": {"state": "ok", "context": {"check": {"status": 200}}},
            },
            {
                "name": "answered 500",
                "outputs": {"check": {"status": 500}},
                "expect": {"state": "review", "tasks": [{"roles": ["operator"]}]},
            },
            {"name": "no output declared", "expect": {"state": "review"}},
            {"name": "failed", "failures": {"check": "timeout"}, "expect": {"state": "review"}},
        ],
    }
    config = canonical_config(config)
    results = run_scenarios(Statechart(config), config["scenarios"])
    assert [r.passed for r in results] == [True, True, False, True]
    # The guard is the engine's: an output without the field it reads fails, as it would live.
    assert results[2].difference == (
        "start: guard 'event.output.status == 200' of check (invoke.onDone) failed: no field "
        "'status' (has() tests whether a field is there)"
    )
