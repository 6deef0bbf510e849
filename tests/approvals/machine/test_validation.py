"""validate_config: one test per rule, each with the exact message it gives."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from approvals.machine import (
    DefinitionError,
    canonical_config,
    normalize_transitions,
    state_type,
    validate_config,
)
from approvals.machine.loader import MAX_DEPTH

ROLES = {"manager", "director", "finance", "security", "warehouse", "shipping", "operator"}
ACTIONS = {"notify", "webhook"}


def simple() -> dict[str, Any]:
    return {
        "id": "purchase-order",
        "title": "Purchase order",
        "initial": "submitted",
        "form": {
            "type": "object",
            "properties": {
                "amount": {"type": "number"},
                "revisions": {"type": "integer", "default": 0},
            },
        },
        "states": {
            "submitted": {
                "always": [
                    {"target": "approved", "guard": "amount < 1000"},
                    {"target": "review"},
                ]
            },
            "review": {
                "meta": {"task": {"roles": ["manager"], "sla": "P2D", "remind": ["P1D"]}},
                "on": {
                    "APPROVE": "approved",
                    "REJECT": "rejected",
                    "REQUEST_CHANGES": "changes",
                },
                "after": {"P7D": "rejected"},
            },
            "changes": {
                "meta": {"task": {"requester": True}},
                "on": {
                    "RESUBMIT": {"target": "review", "assign": {"revisions": "revisions + 1"}},
                    "WITHDRAW": "rejected",
                },
            },
            "approved": {
                "invoke": {"src": "notify", "onDone": "done", "onError": "done"},
            },
            "done": {"type": "final"},
            "rejected": {"type": "final"},
        },
    }


def parallel() -> dict[str, Any]:
    return {
        "id": "orders",
        "title": "Orders",
        "initial": "fulfillment",
        "states": {
            "fulfillment": {
                "type": "parallel",
                "states": {
                    "inventory": {
                        "initial": "picking",
                        "states": {
                            "picking": {
                                "meta": {"task": {"roles": ["warehouse"]}},
                                "on": {"PICKED": "packed"},
                            },
                            "packed": {"type": "final"},
                        },
                    },
                    "shipping": {
                        "type": "compound",
                        "initial": "label",
                        "states": {
                            "label": {"on": {"LABELLED": "ready"}},
                            "ready": {"type": "final"},
                        },
                    },
                },
                "onDone": "shipped",
                "on": {"CANCEL": "cancelled"},
            },
            "shipped": {"type": "final"},
            "cancelled": {"type": "final"},
        },
    }


def path_first(problem: str) -> str:
    """A problem as "path: message": what the rule tests below compare. The words that start
    each problem ("Step *Review*, the *Approve* arrow") are tested on their own, at the end."""
    if not problem.endswith(")") or ": " not in problem:
        return problem
    body, _, where = problem[:-1].rpartition(" (")
    return f"{where}: {body.partition(': ')[2]}"


def errors(config: Any, **kwargs: Any) -> list[str]:
    return [path_first(problem) for problem in validate_config(config, **kwargs)]


def test_the_samples_are_valid() -> None:
    assert errors(simple(), roles=ROLES, actions=ACTIONS) == []
    assert errors(parallel(), roles=ROLES, actions=ACTIONS) == []


# -- top level ------------------------------------------------------------------------


def test_not_a_mapping() -> None:
    assert errors(["a"]) == ["a definition must be a mapping, got a list"]


@pytest.mark.parametrize("key", ["id", "title", "initial", "states"])
def test_required_keys(key: str) -> None:
    config = simple()
    del config[key]
    assert f"top level: missing required key '{key}'" in errors(config)


def test_unknown_top_level_key() -> None:
    config = simple()
    config["intial"] = "x"
    assert errors(config) == ["top level: unknown key 'intial' (did you mean 'initial'?)"]


@pytest.mark.parametrize("value", ["Purchase Order", "-po", "po.v2", "Po", ""])
def test_id_is_a_slug(value: str) -> None:
    config = simple()
    config["id"] = value
    [message] = errors(config)
    assert message.startswith("id: ")


def test_id_length() -> None:
    config = simple()
    config["id"] = "p" * 101
    assert errors(config) == ["id: longer than 100 characters"]


def test_title() -> None:
    config = simple()
    config["title"] = 5
    assert errors(config) == ["title: expected a string, got a number"]
    config["title"] = " "
    assert errors(config) == ["title: must not be empty"]
    config["title"] = "t" * 201
    assert errors(config) == ["title: longer than 200 characters"]


def test_description_must_be_text() -> None:
    config = simple()
    config["description"] = ["x"]
    assert errors(config) == ["description: expected a string, got a list"]


def test_unknown_initial_state() -> None:
    config = simple()
    config["initial"] = "submited"
    assert errors(config) == [
        "initial: the first step *submited* does not exist; did you mean *submitted*?"
    ]


def test_initial_must_be_top_level() -> None:
    config = parallel()
    config["initial"] = "picking"
    assert errors(config) == ["initial: the first step *picking* does not exist"]


def test_form_must_be_a_valid_schema() -> None:
    config = simple()
    config["form"]["properties"]["amount"] = {"type": "numbr"}
    [message] = errors(config)
    assert message.startswith("form.properties.amount.type: ")


def test_form_must_describe_an_object() -> None:
    config = simple()
    config["form"] = {"type": "array"}
    assert errors(config) == [
        "form.type: must be 'object': the form describes the fields of one request"
    ]


def test_form_defaults_must_fit_their_field() -> None:
    config = simple()
    config["form"]["properties"]["revisions"]["default"] = "zero"
    assert errors(config) == ["form.properties.revisions.default: 'zero' is not of type 'integer'"]


def test_settings_must_be_a_mapping() -> None:
    config = simple()
    config["settings"] = ["x"]
    assert errors(config) == ["settings: expected a mapping, got a list"]


def test_states_must_not_be_empty() -> None:
    config = simple()
    config["states"] = {}
    assert "states: a definition needs at least one state" in errors(config)


# -- states ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.b", "1st", "with space", "naïve"])
def test_state_names(name: str) -> None:
    config = simple()
    config["states"][name] = {"type": "final"}
    assert errors(config)[0].startswith(f"states: invalid state name '{name}': use letters")


def test_state_must_be_a_mapping() -> None:
    config = simple()
    config["states"]["done"] = None
    assert errors(config) == [
        "states.done: expected a mapping, got nothing (null) (write {type: final} for a final "
        "state)"
    ]


def test_unknown_state_key() -> None:
    config = simple()
    config["states"]["review"]["tranistions"] = {}
    assert errors(config) == ["states.review: unknown key 'tranistions'"]


def test_unknown_state_key_with_suggestion() -> None:
    config = simple()
    config["states"]["review"]["entyr"] = "notify"
    assert errors(config) == ["states.review: unknown key 'entyr' (did you mean 'entry'?)"]


def test_xstate_v4_cond_gets_a_hint() -> None:
    config = simple()
    config["states"]["submitted"]["always"][0] = {"target": "approved", "cond": "amount < 1"}
    assert (
        "states.submitted.always[0]: unknown key 'cond' (XState v4's cond is called guard here)"
        in errors(config)
    )


def test_unknown_state_type() -> None:
    config = simple()
    config["states"]["done"]["type"] = "finale"
    assert errors(config) == [
        "states.done.type: unknown type 'finale'; use one of atomic, final, parallel, "
        "compound (did you mean 'final'?)"
    ]


def test_no_way_out() -> None:
    config = simple()
    config["states"]["review"] = {"meta": {"task": {"roles": ["manager"]}}}
    assert (
        "states.review: no way out (add on, always, after or invoke, or make it type: final)"
        in errors(config)
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("on", {"GO": "review"}),
        ("always", "review"),
        ("after", {"P1D": "review"}),
        ("invoke", {"src": "notify", "onDone": "review"}),
        ("states", {"a": {"type": "final"}}),
        ("onDone", "review"),
        ("initial", "a"),
    ],
)
def test_final_states_are_final(key: str, value: Any) -> None:
    config = simple()
    config["states"]["done"][key] = value
    assert f"states.done: a final state cannot have {key}" in errors(config)


def test_final_state_cannot_have_a_task() -> None:
    config = simple()
    config["states"]["done"]["meta"] = {"task": {"roles": ["manager"]}}
    assert errors(config) == ["states.done: a final state cannot have meta.task"]


def test_final_state_may_have_entry_actions_and_meta() -> None:
    config = simple()
    config["states"]["done"].update(entry="notify", meta={"outcome": "completed"})
    assert errors(config, actions=ACTIONS) == []


def test_atomic_state_cannot_have_on_done() -> None:
    config = simple()
    config["states"]["review"]["onDone"] = "done"
    assert errors(config) == [
        "states.review: onDone is only for parallel states (for an invoke, use invoke.onDone)"
    ]


def test_explicit_atomic_state_cannot_have_states() -> None:
    config = simple()
    config["states"]["review"].update(type="atomic", states={"x": {"type": "final"}})
    assert errors(config) == [
        "states.review: an atomic state cannot have states (did you mean type: parallel?)"
    ]


def test_top_level_compound_states_are_not_supported() -> None:
    config = simple()
    config["states"]["review"] = {
        "initial": "a",
        "states": {"a": {"on": {"GO": "b"}}, "b": {"type": "final"}},
    }
    assert errors(config) == [
        "states.review: top-level compound states are not supported; use a parallel state "
        "or flatten it"
    ]


def test_state_path_length() -> None:
    config = parallel()
    region = config["states"]["fulfillment"]["states"]["inventory"]
    long_name = "p" * 100
    region["states"][long_name] = region["states"].pop("picking")
    region["initial"] = long_name
    config["states"]["fulfillment"]["states"]["i" * 99] = config["states"]["fulfillment"][
        "states"
    ].pop("inventory")
    assert (
        f"states.fulfillment.states.{'i' * 99}.states.{long_name}: the full path is longer "
        "than 200 characters" in errors(config)
    )


# -- transitions -------------------------------------------------------------------------


def test_unknown_target() -> None:
    config = simple()
    config["states"]["review"]["on"]["APPROVE"] = "aproved"
    assert errors(config) == [
        "states.review.on.APPROVE: the *Approve* arrow points to *aproved*, which does not exist; "
        "did you mean *approved*?"
    ]


def test_unknown_target_in_a_list() -> None:
    config = simple()
    config["states"]["submitted"]["always"][1]["target"] = "reveiw"
    assert errors(config) == [
        "states.submitted.always[1].target: the second *always* arrow points to *reveiw*, which "
        "does not exist; did you mean *review*?"
    ]


def test_targets_are_sibling_names_not_paths() -> None:
    config = parallel()
    config["states"]["fulfillment"]["onDone"] = "#orders.shipped"
    assert errors(config) == [
        "states.fulfillment.onDone: the arrow taken when every region is done points to "
        "*#orders.shipped*, but an arrow names a step beside its own, without a path; did you "
        "mean *shipped*?"
    ]


def test_target_must_be_a_string() -> None:
    config = simple()
    config["states"]["review"]["on"]["APPROVE"] = {"target": ["approved"]}
    assert errors(config) == ["states.review.on.APPROVE.target: expected a string, got a list"]


def test_transition_must_be_a_name_or_mapping() -> None:
    config = simple()
    config["states"]["review"]["on"]["APPROVE"] = 5
    assert errors(config) == [
        "states.review.on.APPROVE: expected a target state name or a mapping with "
        "target/guard/assign, got a number"
    ]


def test_empty_transition_list() -> None:
    config = simple()
    config["states"]["review"]["on"]["APPROVE"] = []
    assert errors(config) == ["states.review.on.APPROVE: expected at least one transition"]


def test_guard_syntax_error() -> None:
    config = simple()
    config["states"]["submitted"]["always"][0]["guard"] = "amount <"
    assert errors(config) == [
        "states.submitted.always[0].guard: syntax error at column 8: unexpected end of expression"
    ]


def test_guard_must_be_text() -> None:
    config = simple()
    config["states"]["submitted"]["always"][0]["guard"] = True
    assert errors(config) == [
        "states.submitted.always[0].guard: expected an expression string, got a boolean"
    ]


def test_assign_expression_error() -> None:
    config = simple()
    config["states"]["changes"]["on"]["RESUBMIT"]["assign"]["revisions"] = "revisions +"
    assert errors(config) == [
        "states.changes.on.RESUBMIT.assign.revisions: syntax error at column 11: unexpected "
        "end of expression"
    ]


def test_assign_values_are_expressions() -> None:
    config = simple()
    config["states"]["changes"]["on"]["RESUBMIT"]["assign"]["revisions"] = 0
    assert errors(config) == [
        "states.changes.on.RESUBMIT.assign.revisions: expected an expression string, got a "
        'number (quote it: "0")'
    ]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("event", "cannot assign to 'event': guards could never read it"),
        ("first-name", "invalid field name 'first-name'"),
    ],
)
def test_assign_field_names(field: str, message: str) -> None:
    config = simple()
    config["states"]["changes"]["on"]["RESUBMIT"]["assign"] = {field: "1"}
    [error] = errors(config)
    assert error.startswith(f"states.changes.on.RESUBMIT.assign: {message}")


def test_unguarded_transition_hides_the_ones_after_it() -> None:
    config = simple()
    config["states"]["review"]["on"]["APPROVE"] = [
        {"target": "approved"},
        {"target": "rejected", "guard": "amount > 5"},
    ]
    assert errors(config) == [
        "states.review.on.APPROVE[0]: has no guard, so the transitions after it can never be taken"
    ]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("done.invoke.x", "event names starting with 'done.' are reserved"),
        ("error.platform", "event names starting with 'error.' are reserved"),
        ("xstate.init", "event names starting with 'xstate.' are reserved"),
        ("*", "wildcard events are not supported"),
        ("approve-it", "invalid event name 'approve-it'"),
        ("_GO", "invalid event name '_GO'"),
    ],
)
def test_event_names(event: str, message: str) -> None:
    config = simple()
    config["states"]["review"]["on"][event] = "approved"
    [error] = errors(config)
    assert error.startswith(f"states.review.on: {message}")


def test_a_badly_named_event_still_has_its_transitions_checked() -> None:
    config = simple()
    config["states"]["review"]["on"] = {"approve-it": "aproved", "REJECT": "rejected"}
    assert errors(config) == [
        "states.review.on: invalid event name 'approve-it': use letters, digits and _, "
        "starting with a letter (like APPROVE)",
        "states.review.on.approve-it: the *Approve-it* arrow points to *aproved*, which does "
        "not exist; did you mean *approved*?",
        # Reported in the same pass: nothing leads to it any more.
        "states.changes: cannot be reached from the first step",
    ]


def test_always_needs_a_target() -> None:
    config = simple()
    config["states"]["submitted"]["always"][1] = {"assign": {"revisions": "1"}}
    assert (
        "states.submitted.always[1]: an always transition needs a target (without one it "
        "would run forever)" in errors(config)
    )


def test_always_to_itself_loops() -> None:
    config = simple()
    config["states"]["submitted"]["always"][1] = "submitted"
    assert (
        "states.submitted.always[1]: an always transition to its own state loops forever"
        in errors(config)
    )


def test_always_with_every_transition_guarded_can_get_stuck() -> None:
    config = simple()
    config["states"]["submitted"]["always"][1]["guard"] = "amount >= 1000"
    assert errors(config) == [
        "states.submitted.always: every transition has a guard, so a request is stuck here "
        "when none holds; add a last one without a guard"
    ]


# -- after ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delay", "message"),
    [
        ("P2M", "states.review.after.P2M: P2M is ambiguous"),
        ("P0D", "states.review.after.P0D: P0D is zero"),
        ("soon", "states.review.after.soon: 'soon' is not a duration"),
        (0, "states.review.after.0: 0 milliseconds"),
    ],
)
def test_after_delays(delay: Any, message: str) -> None:
    config = simple()
    config["states"]["review"]["after"] = {delay: "rejected"}
    [error] = errors(config)
    assert error.startswith(message)


def test_after_accepts_milliseconds() -> None:
    config = simple()
    config["states"]["review"]["after"] = {5000: "rejected", "86400000": "rejected"}
    assert errors(config) == []


# -- entry, exit, invoke ------------------------------------------------------------------


def test_unknown_actions_only_when_actions_are_given() -> None:
    config = simple()
    config["states"]["review"]["entry"] = "notfy"
    config["states"]["review"]["exit"] = ["notify", "hook"]
    config["states"]["approved"]["invoke"]["src"] = "webhok"
    assert errors(config) == []
    assert errors(config, actions=ACTIONS) == [
        "states.review.entry: the action *notfy* does not exist; did you mean *notify*?",
        "states.review.exit[1]: the action *hook* does not exist; did you mean *webhook*?",
        "states.approved.invoke.src: the action *webhok* does not exist; did you mean *webhook*?",
    ]


def test_invoke_needs_src() -> None:
    config = simple()
    del config["states"]["approved"]["invoke"]["src"]
    assert errors(config) == [
        "states.approved.invoke: missing required key 'src' (the action to run)"
    ]


def test_invoke_needs_a_way_on() -> None:
    config = simple()
    config["states"]["approved"]["invoke"] = {"src": "notify"}
    assert (
        "states.approved.invoke: needs onDone or onError, or the state needs another way out "
        "(on, always or after)" in errors(config)
    )


def test_invoke_without_on_done_would_get_stuck() -> None:
    config = simple()
    del config["states"]["approved"]["invoke"]["onDone"]
    assert errors(config) == [
        "states.approved.invoke: has no onDone, so a request would be stuck here once the "
        "action succeeds"
    ]


def test_invoke_without_on_done_is_fine_with_another_way_out() -> None:
    config = simple()
    config["states"]["approved"]["invoke"] = {"src": "notify"}
    config["states"]["approved"]["on"] = {"CONFIRM": "done"}
    assert errors(config) == []


@pytest.mark.parametrize(
    ("retry", "message"),
    [
        ({"max_attempts": 0}, "retry.max_attempts: expected a whole number from 1 to 20, got 0"),
        ({"max_attempts": 21}, "retry.max_attempts: expected a whole number from 1 to 20"),
        ({"max_attempts": True}, "retry.max_attempts: expected a whole number from 1 to 20"),
        ({"backoff": "linear"}, "retry.backoff: expected exponential or fixed, got 'linear'"),
        ({"delay": "P1M"}, "retry.delay: P1M is ambiguous"),
        ({"attempts": 3}, "retry: unknown key 'attempts' (did you mean 'max_attempts'?)"),
    ],
)
def test_invoke_retry(retry: dict[str, Any], message: str) -> None:
    config = simple()
    config["states"]["approved"]["invoke"]["retry"] = retry
    [error] = errors(config)
    assert error.startswith(f"states.approved.invoke.{message}")


def test_invoke_input_must_be_a_mapping() -> None:
    config = simple()
    config["states"]["approved"]["invoke"]["input"] = "hello"
    assert errors(config) == ["states.approved.invoke.input: expected a mapping, got text"]


def test_one_invoke_per_state() -> None:
    config = simple()
    config["states"]["approved"]["invoke"] = [{"src": "notify", "onDone": "done"}]
    assert "states.approved.invoke: expected a mapping (one invoke per state)" in errors(config)


def test_invoke_only_on_atomic_states() -> None:
    config = parallel()
    config["states"]["fulfillment"]["invoke"] = {"src": "notify", "onDone": "shipped"}
    assert errors(config) == ["states.fulfillment: invoke is only allowed on atomic states"]


def test_invoke_transitions_are_checked() -> None:
    config = simple()
    config["states"]["approved"]["invoke"]["onError"] = "dne"
    assert errors(config) == [
        "states.approved.invoke.onError: the arrow taken when its action fails points to *dne*, "
        "which does not exist; did you mean *done*?"
    ]


# -- tasks --------------------------------------------------------------------------------


def task_errors(task: Any, **kwargs: Any) -> list[str]:
    config = simple()
    config["states"]["review"]["meta"]["task"] = task
    return errors(config, **kwargs)


def test_unknown_roles_only_when_roles_are_given() -> None:
    task = {"roles": ["managr"], "sla": "P2D", "escalate_to": ["directr"]}
    assert task_errors(task) == []
    assert task_errors(task, roles=ROLES) == [
        "states.review.meta.task.roles: the role *managr* does not exist; did you mean *manager*?",
        "states.review.meta.task.escalate_to: the role *directr* does not exist; did you mean "
        "*director*?",
    ]


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({}, "states.review.meta.task: a task needs roles, or requester: true"),
        ({"requester": False}, "states.review.meta.task: a task needs roles, or requester: true"),
        (
            {"roles": ["manager"], "requester": True},
            "states.review.meta.task: a task is for roles or for the requester (requester: true), "
            "not both",
        ),
        ({"roles": []}, "states.review.meta.task.roles: expected at least one role"),
        ({"roles": "manager"}, "states.review.meta.task.roles: expected a list of role names"),
        (
            {"roles": ["manager", "manager"]},
            "states.review.meta.task.roles[1]: role 'manager' is listed twice",
        ),
        ({"requester": "yes"}, "states.review.meta.task.requester: expected true or false"),
        (
            {"roles": ["manager"], "rule": "most"},
            "states.review.meta.task.rule: expected any, all, everyone or {quorum: N}",
        ),
        (
            {"roles": ["manager"], "rule": {"everyone": False}},
            "states.review.meta.task.rule.everyone: expected true",
        ),
        (
            {"roles": ["manager"], "rule": {"everyone": True, "quorum": 2}},
            "states.review.meta.task.rule: unknown key 'quorum'",
        ),
        (
            {"requester": True, "rule": "everyone"},
            "states.review.meta.task.rule: a requester task has one person deciding",
        ),
        (
            {"roles": ["manager"], "rule": {"quorum": 0}},
            "states.review.meta.task.rule.quorum: expected a whole number of at least 1, got 0",
        ),
        (
            {"roles": ["manager"], "rule": {"quorum": 2, "of": 3}},
            "states.review.meta.task.rule: unknown key 'of'",
        ),
        (
            {"requester": True, "rule": "all"},
            "states.review.meta.task.rule: a requester task has one person deciding; only any "
            "applies",
        ),
        ({"roles": ["manager"], "sla": "P1M"}, "states.review.meta.task.sla: P1M is ambiguous"),
        (
            {"roles": ["manager"], "sla": "P2D", "remind": ["P2D"]},
            "states.review.meta.task.remind[0]: P2D is not shorter than the sla P2D",
        ),
        (
            {"roles": ["manager"], "remind": "P1D"},
            "states.review.meta.task.remind: expected a list of durations",
        ),
        (
            {"roles": ["manager"], "escalate_to": ["director"]},
            "states.review.meta.task.escalate_to: needs an sla: escalation happens when the sla "
            "runs out",
        ),
        (
            {"requester": True, "forbid_requester": True},
            "states.review.meta.task.forbid_requester: cannot be true on a task for the requester",
        ),
        (
            {"roles": ["manager"], "forbid_requester": "no"},
            "states.review.meta.task.forbid_requester: expected true or false",
        ),
        ({"roles": ["manager"], "label": 5}, "states.review.meta.task.label: expected a string"),
        (
            {"roles": ["manager"], "sla_": "P1D"},
            "states.review.meta.task: unknown key 'sla_' (did you mean 'sla'?)",
        ),
        ("manager", "states.review.meta.task: expected a mapping, got text"),
    ],
)
def test_task_rules(task: Any, message: str) -> None:
    found = task_errors(task)
    assert any(error.startswith(message) for error in found), found


@pytest.mark.parametrize(
    "task",
    [
        {"roles": ["manager", "security"], "rule": "all"},
        {"roles": ["security"], "rule": {"quorum": 2}},
        {"roles": ["manager", "security"], "rule": "everyone"},
        {"roles": ["manager"], "rule": {"everyone": True}},
        {"roles": ["manager"], "rule": "any", "sla": "P2D", "remind": ["P1D", "PT36H"]},
        {"roles": ["manager"], "sla": 172800000, "escalate_to": ["director"]},
        {"requester": True, "rule": "any", "forbid_requester": False, "label": "Fix it"},
    ],
)
def test_valid_tasks(task: dict[str, Any]) -> None:
    assert task_errors(task, roles=ROLES) == []


def test_task_on_a_parallel_state() -> None:
    config = parallel()
    config["states"]["fulfillment"]["meta"] = {"task": {"roles": ["manager"]}}
    assert errors(config) == [
        "states.fulfillment.meta.task: a task can only be on an atomic state, not a parallel state"
    ]


def test_other_meta_keys_are_free() -> None:
    config = simple()
    config["states"]["review"]["meta"]["label"] = "Manager review"
    config["states"]["review"]["meta"]["color"] = {"any": ["thing"]}
    assert errors(config) == []


# -- parallel states ------------------------------------------------------------------------


def test_parallel_needs_two_regions() -> None:
    config = parallel()
    del config["states"]["fulfillment"]["states"]["shipping"]
    assert errors(config) == [
        "states.fulfillment.states: a parallel state needs at least 2 regions"
    ]


def test_parallel_needs_on_done() -> None:
    config = parallel()
    del config["states"]["fulfillment"]["onDone"]
    assert "states.fulfillment: a parallel state needs onDone (it is how the state is left)" in (
        errors(config)
    )


def test_parallel_has_no_initial() -> None:
    config = parallel()
    config["states"]["fulfillment"]["initial"] = "inventory"
    assert errors(config) == [
        "states.fulfillment: a parallel state has no initial: all its regions start together"
    ]


def test_parallel_cannot_have_always() -> None:
    config = parallel()
    config["states"]["fulfillment"]["always"] = "shipped"
    assert errors(config) == ["states.fulfillment: a parallel state cannot have always"]


def test_region_must_be_compound() -> None:
    config = parallel()
    config["states"]["fulfillment"]["states"]["shipping"] = {"on": {"GO": "inventory"}}
    assert errors(config) == [
        "states.fulfillment.states.shipping: a region of a parallel state must be a compound "
        "state with initial and states"
    ]


def test_region_needs_initial() -> None:
    config = parallel()
    del config["states"]["fulfillment"]["states"]["inventory"]["initial"]
    assert errors(config) == [
        "states.fulfillment.states.inventory: a region needs initial (the name of its first state)"
    ]


def test_region_initial_must_be_a_child() -> None:
    config = parallel()
    config["states"]["fulfillment"]["states"]["inventory"]["initial"] = "pickng"
    assert errors(config) == [
        "states.fulfillment.states.inventory.initial: unknown state 'pickng' (did you mean "
        "'picking'?)"
    ]


def test_region_needs_a_final_state() -> None:
    config = parallel()
    config["states"]["fulfillment"]["states"]["inventory"]["states"]["packed"] = {
        "on": {"UNPACK": "picking"}
    }
    assert (
        "states.fulfillment.states.inventory: a region needs at least one final state (the "
        "parallel state's onDone waits for every region to reach one)" in errors(config)
    )


def test_region_cannot_have_transitions() -> None:
    config = parallel()
    config["states"]["fulfillment"]["states"]["inventory"]["on"] = {"GO": "shipping"}
    assert errors(config) == [
        "states.fulfillment.states.inventory: a region cannot have on; put transitions on its "
        "states or on the parallel state"
    ]


def test_no_nesting_below_a_region() -> None:
    config = parallel()
    config["states"]["fulfillment"]["states"]["inventory"]["states"]["picking"] = {
        "type": "parallel",
        "states": {},
        "onDone": "packed",
    }
    assert errors(config) == [
        "states.fulfillment.states.inventory.states.picking: nested parallel/compound states "
        "are not supported below a region"
    ]


def test_leaves_target_leaves_of_their_own_region() -> None:
    config = parallel()
    picking = config["states"]["fulfillment"]["states"]["inventory"]["states"]["picking"]
    picking["on"]["PICKED"] = "ready"  # a leaf of the other region
    picking["on"]["GIVE_UP"] = "cancelled"  # a top-level state
    assert errors(config) == [
        "states.fulfillment.states.inventory.states.picking.on.PICKED: the *Picked* arrow "
        "points to *ready*, which does not exist",
        "states.fulfillment.states.inventory.states.picking.on.GIVE_UP: the *Give up* arrow "
        "points to *cancelled*, which does not exist",
        "states.fulfillment.states.inventory.states.packed: cannot be reached from the first "
        "step of its region",
    ]


def test_parallel_transitions_target_top_level_states() -> None:
    config = parallel()
    config["states"]["fulfillment"]["on"]["CANCEL"] = "packed"
    assert errors(config) == [
        "states.fulfillment.on.CANCEL: the *Cancel* arrow points to *packed*, which does not exist",
        "states.cancelled: cannot be reached from the first step",
    ]


# -- the graph --------------------------------------------------------------------------------


def test_unreachable_state() -> None:
    config = simple()
    config["states"]["orphan"] = {"on": {"GO": "done"}}
    assert errors(config) == ["states.orphan: cannot be reached from the first step"]


def test_unreachable_leaf() -> None:
    config = parallel()
    region = config["states"]["fulfillment"]["states"]["inventory"]
    region["states"]["lost"] = {"type": "final"}
    assert errors(config) == [
        "states.fulfillment.states.inventory.states.lost: cannot be reached from the first "
        "step of its region"
    ]


def test_every_region_is_entered_with_its_parallel_state() -> None:
    config = parallel()
    config["initial"] = "start"
    config["states"]["start"] = {"on": {"GO": "fulfillment"}}
    assert errors(config) == []


def test_unreachable_is_not_reported_behind_an_unknown_target() -> None:
    config = simple()
    config["states"]["review"]["on"]["REQUEST_CHANGES"] = "chnages"
    # 'changes' is now unreachable, but only because of the typo: report the typo alone.
    assert errors(config) == [
        "states.review.on.REQUEST_CHANGES: the *Request changes* arrow points to *chnages*, which "
        "does not exist; did you mean *changes*?"
    ]


def test_no_path_to_a_final_state() -> None:
    config = simple()
    config["states"]["review"]["on"]["PARK"] = "parked"
    config["states"]["parked"] = {"on": {"POKE": "parked2"}}
    config["states"]["parked2"] = {"on": {"POKE": "parked"}}
    assert errors(config) == [
        "states.parked: a request here can never finish: no way leads on to a final step",
        "states.parked2: a request here can never finish: no way leads on to a final step",
    ]


def test_no_path_to_a_final_state_of_the_region() -> None:
    config = parallel()
    states = config["states"]["fulfillment"]["states"]["shipping"]["states"]
    states["label"]["on"]["LOST"] = "limbo"
    states["limbo"] = {"on": {"WAIT": "limbo"}}
    assert errors(config) == [
        "states.fulfillment.states.shipping.states.limbo: a request here can never finish: no way "
        "leads on to a final step "
        "of its region"
    ]


def test_all_errors_at_once() -> None:
    config = simple()
    config["title"] = ""
    config["states"]["review"]["on"]["APPROVE"] = "aproved"
    config["states"]["review"]["meta"]["task"]["roles"] = ["managr"]
    config["states"]["done"]["on"] = {"X": "review"}
    assert errors(config, roles=ROLES) == [
        "title: must not be empty",
        "states.review.meta.task.roles: the role *managr* does not exist; did you mean *manager*?",
        "states.review.on.APPROVE: the *Approve* arrow points to *aproved*, which does not exist; "
        "did you mean *approved*?",
        "states.done: a final state cannot have on",
    ]


def test_validation_does_not_change_the_config() -> None:
    config = simple()
    before = copy.deepcopy(config)
    validate_config(config, roles=ROLES, actions=ACTIONS)
    assert config == before


# -- canonical form -----------------------------------------------------------------------


def test_canonical_key_order_and_defaults() -> None:
    config = {
        "states": {
            "a": {
                "on": {"GO": "b"},
                "meta": {"label": "A", "task": {"label": "Do", "roles": ["manager"]}},
                "entry": "notify",
                "description": "",
            },
            "b": {"type": "final"},
        },
        "initial": "a",
        "description": "",
        "settings": {},
        "title": "T",
        "id": "t",
    }
    canonical = canonical_config(config)
    assert list(canonical) == ["id", "title", "initial", "form", "states"]
    assert canonical["form"] == {"type": "object"}
    assert canonical["states"]["a"] == {
        "entry": ["notify"],
        "meta": {"label": "A", "task": {"roles": ["manager"], "label": "Do"}},
        "on": {"GO": "b"},
    }
    assert list(canonical["states"]["a"]) == ["entry", "meta", "on"]


def test_canonical_transitions() -> None:
    config = simple()
    review = config["states"]["review"]
    review["on"]["APPROVE"] = [{"target": "approved"}]
    review["on"]["REJECT"] = {"target": "rejected", "description": ""}
    review["on"]["REQUEST_CHANGES"] = [{"target": "changes", "guard": "amount > 1"}]
    review["on"]["NOTE"] = {"assign": {"noted": "true"}}
    review["after"] = {5000: ["rejected"]}
    states = canonical_config(config)["states"]
    assert states["review"]["on"] == {
        "APPROVE": "approved",
        "REJECT": "rejected",
        "REQUEST_CHANGES": {"target": "changes", "guard": "amount > 1"},
        "NOTE": {"assign": {"noted": "true"}},
    }
    assert states["review"]["after"] == {"5000": "rejected"}
    assert states["submitted"]["always"] == [
        {"target": "approved", "guard": "amount < 1000"},
        {"target": "review"},
    ]
    assert states["changes"]["on"]["RESUBMIT"] == {
        "target": "review",
        "assign": {"revisions": "revisions + 1"},
    }


def test_canonical_state_types() -> None:
    config = parallel()
    config["states"]["fulfillment"]["states"]["inventory"]["states"]["picking"]["type"] = "atomic"
    states = canonical_config(config)["states"]
    regions = states["fulfillment"]["states"]
    assert states["fulfillment"]["type"] == "parallel"
    assert regions["inventory"]["type"] == "compound"  # implied by states, written out
    assert list(regions["inventory"]) == ["type", "initial", "states"]
    assert "type" not in regions["inventory"]["states"]["picking"]
    assert list(states["fulfillment"]) == ["type", "on", "onDone", "states"]


def test_canonical_invoke() -> None:
    config = simple()
    config["states"]["approved"]["invoke"] = {
        "onError": ["done"],
        "retry": {"delay": "PT5S", "max_attempts": 2},
        "input": {},
        "onDone": {"target": "done"},
        "src": "notify",
    }
    assert canonical_config(config)["states"]["approved"]["invoke"] == {
        "src": "notify",
        "retry": {"max_attempts": 2, "delay": "PT5S"},
        "onDone": "done",
        "onError": "done",
    }


@pytest.mark.parametrize("make", [simple, parallel])
def test_canonical_is_idempotent(make: Any) -> None:
    once = canonical_config(make())
    assert canonical_config(once) == once
    assert list(canonical_config(once)) == list(once)


def test_canonical_does_not_share_with_the_input() -> None:
    config = simple()
    canonical = canonical_config(config)
    canonical["form"]["properties"]["amount"]["minimum"] = 0
    canonical["states"]["review"]["meta"]["task"]["roles"].append("director")
    assert config == simple()


def test_canonical_refuses_an_invalid_config() -> None:
    config = simple()
    config["initial"] = "nowhere"
    with pytest.raises(DefinitionError) as caught:
        canonical_config(config)
    assert caught.value.errors == [
        "The definition's initial step: the first step *nowhere* does not exist (initial)"
    ]


# -- helpers for the engine ---------------------------------------------------------------


def test_normalize_transitions() -> None:
    assert normalize_transitions(None) == []
    assert normalize_transitions("a") == [{"target": "a"}]
    assert normalize_transitions({"target": "a", "guard": "x"}) == [{"target": "a", "guard": "x"}]
    assert normalize_transitions([{"guard": "x", "target": "a"}, "b"]) == [
        {"guard": "x", "target": "a"},
        {"target": "b"},
    ]


def test_state_type() -> None:
    assert state_type({}) == "atomic"
    assert state_type({"states": {}}) == "compound"
    assert state_type({"type": "final"}) == "final"
    assert state_type({"type": "parallel", "states": {}}) == "parallel"


def test_a_transition_with_a_broken_guard_still_leads_somewhere() -> None:
    config = simple()
    config["states"]["review"]["on"]["ESCALATE"] = {"target": "board", "guard": "amount >"}
    config["states"]["board"] = {"on": {"APPROVE": "approved"}}
    assert errors(config) == [
        "states.review.on.ESCALATE.guard: syntax error at column 8: unexpected end of expression"
    ]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [MAX_DEPTH, 5000])
def test_a_config_nested_deeper_than_the_limit_is_refused_not_a_crash(depth: int) -> None:
    # A config that never was a file (the admin, a program) gets the same limit as a file.
    config = simple()
    config["states"]["review"]["meta"]["deep"] = nested(depth)
    [problem] = errors(config)
    assert problem.startswith("states.review.meta.deep.a.a.")
    assert problem.endswith(f": nested more than {MAX_DEPTH} levels deep")
    with pytest.raises(DefinitionError):
        canonical_config(config)


def test_a_config_nested_within_the_limit_is_fine() -> None:
    config = simple()
    config["states"]["review"]["meta"]["deep"] = nested(MAX_DEPTH - 4)
    assert errors(config) == []
    assert canonical_config(config)["states"]["review"]["meta"]["deep"] == nested(MAX_DEPTH - 4)


def test_a_transition_description_is_one_short_line() -> None:
    config = simple()
    first = config["states"]["submitted"]["always"][0]
    first["description"] = "the amount is under 1,000"
    assert errors(config) == []
    first["description"] = "x" * 121
    assert errors(config) == [
        "states.submitted.always[0].description: is 121 characters long; at most 120 "
        "(say the condition in a few words)"
    ]
    first["description"] = "two\nlines"
    assert errors(config) == ["states.submitted.always[0].description: must be one line"]
    first["description"] = 12
    assert errors(config) == [
        "states.submitted.always[0].description: expected a string, got a number"
    ]


# -- the words, and one pass ---------------------------------------------------------


def test_a_problem_says_in_words_where_it_is_then_gives_the_path() -> None:
    config = simple()
    config["states"]["review"]["on"]["REJECT"] = [{"target": "nowhere"}]
    config["states"]["review"]["meta"]["task"]["sla"] = "P2M"
    config["states"]["review"]["meta"]["label"] = "Manager approval"
    assert validate_config(config) == [
        "Step *Manager approval*, its task's SLA: P2M is ambiguous (years and months vary in "
        "length); use days (states.review.meta.task.sla)",
        "Step *Manager approval*: the *Reject* arrow points to *nowhere*, which does not exist "
        "(states.review.on.REJECT[0].target)",
    ]
    config = simple()
    config["states"]["changes"]["on"]["RESUBMIT"] = [
        {"target": "review", "guard": "revisions < 3"},
        {"target": "rejected", "guard": "revisions <"},
    ]
    config["form"]["properties"]["amount"]["type"] = "numbr"
    assert validate_config(config, roles={"manager"}, actions=set()) == [
        "The request form: 'numbr' is not valid under any of the given schemas "
        "(form.properties.amount.type)",
        "Step *Changes*, the second *Resubmit* arrow's guard: syntax error at column 11: "
        "unexpected end of expression (states.changes.on.RESUBMIT[1].guard)",
        "Step *Approved*, its action: the action *notify* does not exist "
        "(states.approved.invoke.src)",
    ]


def test_the_issue_s_example_reads_as_written() -> None:
    config = simple()
    config["states"]["review"]["on"]["REJECT"] = [{"target": "nowhere"}]
    assert validate_config(config) == [
        "Step *Review*: the *Reject* arrow points to *nowhere*, which does not exist "
        "(states.review.on.REJECT[0].target)"
    ]


def test_every_problem_in_one_pass_each_once() -> None:
    """An unreachable state is named with the other problems, not after they are fixed; a
    broken transition has its guard checked too; a typo'd target does not also make the state
    it meant unreachable; the same problem twice is listed once."""
    config = simple()
    config["states"]["orphan"] = {"on": {"GO": "done"}}
    config["states"]["review"]["on"]["APPROVE"] = {"target": "aproved", "guard": "amount <"}
    config["states"]["review"]["on"]["REJECT"] = {"target": "nowhere", "guard": "x >"}
    config["states"]["review"]["on"]["REQUEST_CHANGES"] = ["changes", "changes"]
    problems = errors(config, roles={"manager"})
    assert problems == [
        "states.review.on.APPROVE.target: the *Approve* arrow points to *aproved*, which does "
        "not exist; did you mean *approved*?",
        "states.review.on.APPROVE.guard: syntax error at column 8: unexpected end of expression",
        "states.review.on.REJECT.target: the *Reject* arrow points to *nowhere*, which does not "
        "exist",
        "states.review.on.REJECT.guard: syntax error at column 3: unexpected end of expression",
        "states.review.on.REQUEST_CHANGES[0]: has no guard, so the transitions after it can "
        "never be taken",
        "states.orphan: cannot be reached from the first step",
    ]
    assert len(problems) == len(set(problems))


def test_a_state_that_cannot_be_read_blames_nothing_behind_it() -> None:
    config = simple()
    config["states"]["review"]["on"] = ["APPROVE"]  # not a mapping: where it leads is unknown
    assert errors(config) == ["states.review.on: expected a mapping, got a list"]
