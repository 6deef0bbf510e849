"""Start triggers refused at validation and publish, each with the place named."""

from __future__ import annotations

import pytest

from approvals.machine.validation import validate_config
from approvals.services.definitions import definition_import, definition_problems
from approvals.services.errors import InvalidInput
from tests.approvals.flows import NOW, publish
from tests.approvals.triggers.flows import drafting_flow, report_flow, research_flow


def problems(config) -> list[str]:
    return validate_config(config)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"cron": "0 25 * * *", "tz": "UTC"},
            "is not a valid cron expression: [0 25 * * *] is not acceptable, out of range "
            "(schedule[0].cron)",
        ),
        ({"cron": "0 8 * * * *", "tz": "UTC"}, "has 6 field(s); a cron expression has 5"),
        ({"cron": "every monday", "tz": "UTC"}, "(schedule[0].cron)"),
        ({"cron": 8, "tz": "UTC"}, "expected a cron expression such as '0 8 * * MON'"),
        (
            {"cron": "0 8 * * MON", "tz": "Europe/Lutetia"},
            "'Europe/Lutetia' is not a known time zone (an IANA name such as 'Europe/Paris') "
            "(schedule[0].tz)",
        ),
        ({"cron": "0 8 * * MON"}, "missing required key 'tz'"),
        ({"tz": "UTC"}, "missing required key 'cron'"),
        ({"cron": "0 8 * * MON", "tz": "UTC", "catch_up": "no"}, "(schedule[0].catch_up)"),
        ({"cron": "0 8 * * MON", "tz": "UTC", "context": []}, "(schedule[0].context)"),
        ({"cron": "0 8 * * MON", "tz": "UTC", "name": "Weekly!"}, "(schedule[0].name)"),
        ({"cron": "0 8 * * MON", "tz": "UTC", "every": "week"}, "unknown key 'every'"),
    ],
)
def test_a_bad_schedule_is_named(entry, expected):
    found = problems(report_flow(entry))
    assert any(expected in p for p in found), found


def test_schedule_names_are_distinct():
    entry = {"cron": "0 8 * * MON", "tz": "UTC", "name": "weekly"}
    found = problems(report_flow(entry, dict(entry)))
    assert any("another schedule is named 'weekly' (schedule[1].name)" in p for p in found)


def test_schedule_must_be_a_list():
    config = report_flow()
    config["schedule"] = {"cron": "0 8 * * MON"}
    assert any("expected a list of schedules" in p for p in problems(config))


@pytest.mark.django_db
def test_publish_refuses_a_cron_that_does_not_parse(reviewer):
    with pytest.raises(InvalidInput) as refused:
        definition_import(
            config=report_flow({"cron": "61 * * * *", "tz": "UTC", "context": {"team": "a"}}),
            actor=None,
            publish=True,
            now=NOW,
        )
    assert any("(schedule[0].cron)" in p for p in refused.value.field_errors["definition"])


@pytest.mark.django_db
def test_the_installation_checks_run_as_and_the_context(reviewer, bot):
    found = definition_problems(
        report_flow({"cron": "0 8 * * MON", "tz": "UTC", "run_as": "ghost", "context": {"team": 3}})
    )
    assert any("there is no active user *ghost*" in p and "schedule[0].run_as" in p for p in found)
    assert any("team:" in p and "(schedule[0].context)" in p for p in found)
    ok = {"cron": "0 8 * * MON", "tz": "UTC", "run_as": "report-bot", "context": {"team": "x"}}
    assert definition_problems(report_flow(ok)) == []


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ({"input": {"subject": "topic"}}, "missing required key 'workflow'"),
        ({"workflow": "Drafting!"}, "does not name a workflow"),
        ({"workflow": "research"}, "the workflow *research* cannot start itself"),
        ({"workflow": "drafting", "input": {"subject": "topic +"}}, "on_complete_start.input"),
        ({"workflow": "drafting", "then": "x"}, "unknown key 'then'"),
    ],
)
def test_a_bad_completion_trigger_is_named(trigger, expected):
    found = problems(research_flow(**trigger))
    assert any(expected in p for p in found), found


def test_a_completion_trigger_is_only_for_final_states():
    config = research_flow()
    config["states"]["review"]["on_complete_start"] = {"workflow": "drafting"}
    assert any(
        "an atomic state cannot have on_complete_start (states.review)" in p
        for p in problems(config)
    )


@pytest.mark.django_db
def test_publish_checks_the_started_workflow_and_its_form(reviewer):
    found = definition_problems(research_flow())
    assert any("there is no published workflow *drafting*" in p for p in found)
    publish(drafting_flow())
    assert definition_problems(research_flow()) == []
    found = definition_problems(research_flow(workflow="drafting", input={"title": "topic"}))
    assert any("*title* is not a field of the form of *drafting*" in p for p in found)
    assert any("the form of *drafting* requires *subject*" in p for p in found)


def test_a_completion_trigger_in_a_region_is_refused():
    config = research_flow()
    config["states"]["review"] = {
        "type": "parallel",
        "states": {
            "legal": {
                "initial": "check",
                "states": {
                    "check": {"on": {"OK": "ok"}},
                    "ok": {"type": "final", "on_complete_start": {"workflow": "drafting"}},
                },
            }
        },
        "onDone": "approved",
    }
    assert any(
        "only a top-level final state ends a request" in p
        and "states.review.states.legal.states.ok.on_complete_start" in p
        for p in problems(config)
    ), problems(config)
