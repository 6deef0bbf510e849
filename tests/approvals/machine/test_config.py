"""config.py: what a config says about each state, whichever way it is spelled, and what a
broken one reads as."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.machine.config import (
    ConfigTransition,
    Retry,
    as_list,
    child_states,
    form_of,
    invoke_of,
    join_path,
    meta_of,
    normalize_transitions,
    retry_of,
    state_type,
    target_path,
    task_of,
    task_rule,
    transitions_of,
    walk_states,
)
from tests.approvals.flows import parallel_flow


def transition(trigger: Any, **fields: Any) -> ConfigTransition:
    values: dict[str, Any] = {
        "event": "",
        "delay": "",
        "position": 0,
        "target": None,
        "guard": None,
        "assign": {},
        "description": "",
    }
    values.update(fields)
    return ConfigTransition(trigger=trigger, **values)


# -- states and paths ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({}, "atomic"),
        ({"on": {"GO": "b"}}, "atomic"),
        ({"type": "final"}, "final"),
        ({"states": {"a": {}}}, "compound"),
        ({"type": "compound", "initial": "a", "states": {"a": {}}}, "compound"),
        ({"states": None}, "compound"),
        ({"type": "parallel", "states": {}}, "parallel"),
        ({"type": "", "states": {}}, "compound"),
        ({"type": 3}, "atomic"),
        ({"type": "atomc"}, "atomc"),
    ],
)
def test_state_type(node: dict[str, Any], expected: str) -> None:
    assert state_type(node) == expected


def test_walk_gives_every_state_with_its_path_before_its_children() -> None:
    walked = [(s.path, s.name, s.parent, s.type) for s in walk_states(parallel_flow())]
    assert walked == [
        ("fulfillment", "fulfillment", None, "parallel"),
        ("fulfillment.inventory", "inventory", "fulfillment", "compound"),
        ("fulfillment.inventory.picking", "picking", "fulfillment.inventory", "atomic"),
        ("fulfillment.inventory.packed", "packed", "fulfillment.inventory", "final"),
        ("fulfillment.shipping", "shipping", "fulfillment", "compound"),
        ("fulfillment.shipping.label", "label", "fulfillment.shipping", "atomic"),
        ("fulfillment.shipping.ready", "ready", "fulfillment.shipping", "final"),
        ("shipped", "shipped", None, "final"),
        ("cancelled", "cancelled", None, "final"),
    ]


def test_child_states_of_a_state_and_of_the_config() -> None:
    config = parallel_flow()
    assert [s.path for s in child_states(config)] == ["fulfillment", "shipped", "cancelled"]
    fulfillment = config["states"]["fulfillment"]
    regions = child_states(fulfillment, "fulfillment")
    assert [(s.path, s.parent) for s in regions] == [
        ("fulfillment.inventory", "fulfillment"),
        ("fulfillment.shipping", "fulfillment"),
    ]
    assert regions[0].node is fulfillment["states"]["inventory"]
    assert child_states(config["states"]["shipped"], "shipped") == []


@pytest.mark.parametrize("states", [None, "a", ["a", "b"], 7])
def test_states_that_are_not_a_mapping_hold_nothing(states: Any) -> None:
    assert child_states({"states": states}) == []
    assert list(walk_states({"states": states})) == []


def test_a_child_that_is_not_a_mapping_reads_as_an_empty_state() -> None:
    (child,) = child_states({"states": {"broken": None}}, "top")
    assert (child.path, child.node, child.type) == ("top.broken", {}, "atomic")


def test_names_that_are_not_text_read_as_text() -> None:
    (child,) = child_states({"states": {5: {"type": "final"}}}, "p")
    assert (child.path, child.name, child.type) == ("p.5", "5", "final")


def test_paths() -> None:
    assert join_path(None, "review") == "review"
    assert join_path("", "review") == "review"
    assert join_path("fulfillment", "inventory") == "fulfillment.inventory"
    assert target_path("review", "done") == "done"
    assert target_path("fulfillment", "shipped") == "shipped"
    assert target_path("fulfillment.inventory.picking", "packed") == "fulfillment.inventory.packed"


# -- transitions --------------------------------------------------------------------------


def test_as_list() -> None:
    assert as_list(None) == []
    assert as_list("notify") == ["notify"]
    assert as_list({"target": "a"}) == [{"target": "a"}]
    assert as_list(["a", "b"]) == ["a", "b"]
    assert as_list(("a", "b")) == ["a", "b"]
    assert as_list([]) == []


def test_normalize_transitions_leaves_out_what_is_no_transition() -> None:
    assert normalize_transitions([5, None, "a", ["b"], {"target": "c"}, True]) == [
        {"target": "a"},
        {"target": "c"},
    ]
    assert normalize_transitions(5) == []


def test_normalize_transitions_gives_copies() -> None:
    written = {"target": "a", "assign": {"n": "n + 1"}}
    (normalized,) = normalize_transitions(written)
    normalized["assign"]["n"] = "0"
    assert written == {"target": "a", "assign": {"n": "n + 1"}}


def test_transitions_in_every_spelling_and_under_every_trigger() -> None:
    node = {
        "on": {
            "APPROVE": [
                {"target": "big", "guard": "amount >= 1000", "description": "Large."},
                "small",
            ],
            "REJECT": "rejected",
            "NOTE": {"assign": {"notes": "notes + 1", "last": "event.text"}},
        },
        "always": {"target": "fast", "guard": "urgent"},
        "after": {"P7D": "expired", 5000: ["reminded"]},
        "invoke": {"src": "notify", "onDone": "done", "onError": [{"target": "failed"}]},
        "onDone": "finished",
    }
    assert transitions_of(node) == [
        transition(
            "on", event="APPROVE", target="big", guard="amount >= 1000", description="Large."
        ),
        transition("on", event="APPROVE", position=1, target="small"),
        transition("on", event="REJECT", target="rejected"),
        transition("on", event="NOTE", assign={"notes": "notes + 1", "last": "event.text"}),
        transition("always", target="fast", guard="urgent"),
        transition("after", delay="P7D", target="expired"),
        transition("after", delay="5000", target="reminded"),
        transition("invoke.onDone", target="done"),
        transition("invoke.onError", target="failed"),
        transition("onDone", target="finished"),
    ]


def test_a_state_without_transitions_has_none() -> None:
    assert transitions_of({}) == []
    assert transitions_of({"type": "final", "meta": {"outcome": "rejected"}}) == []
    assert transitions_of({"invoke": {"src": "notify"}}) == []


def test_transitions_of_a_broken_state() -> None:
    node = {
        "on": ["APPROVE"],  # not a mapping: no events
        "after": "P1D",  # likewise
        "always": [7, {"target": "a", "guard": 1, "assign": ["x"]}, None, ""],
        "invoke": [{"src": "notify", "onDone": "done"}],  # one invoke per state, not a list
    }
    assert transitions_of(node) == [
        transition("always", target="a", guard="1"),
        transition("always", position=1),
    ]


# -- meta, invoke, task, form -------------------------------------------------------------


def test_meta_and_invoke_of() -> None:
    assert meta_of({"meta": {"label": "Review"}}) == {"label": "Review"}
    assert meta_of({"meta": "Review"}) == {}
    assert meta_of({}) == {}
    assert invoke_of({"invoke": {"src": "notify"}}) == {"src": "notify"}
    assert invoke_of({"invoke": "notify"}) is None
    assert invoke_of({}) is None


def test_retry_defaults_and_values() -> None:
    assert retry_of({"src": "notify"}) == Retry(3, "exponential", "PT10S")
    assert retry_of({"src": "notify", "retry": {"max_attempts": 5}}) == Retry(
        5, "exponential", "PT10S"
    )
    written = {"max_attempts": 1, "backoff": "fixed", "delay": "PT1M"}
    assert retry_of({"retry": written}) == Retry(1, "fixed", "PT1M")
    assert retry_of({"retry": {"delay": 30000}}).delay == 30000


def test_retry_values_of_the_wrong_shape_read_as_the_defaults() -> None:
    assert retry_of({"retry": "often"}) == Retry()
    broken = {"max_attempts": True, "backoff": ["fixed"], "delay": None}
    assert retry_of({"retry": broken}) == Retry(3, "exponential", "PT10S")
    assert retry_of({"retry": {"max_attempts": "5"}}).max_attempts == 3


def test_task_of() -> None:
    task = {"roles": ["manager"], "sla": "P2D"}
    assert task_of({"meta": {"task": task, "label": "Review"}}) is task
    assert task_of({"meta": {"label": "Review"}}) is None
    assert task_of({"meta": {"task": ["manager"]}}) is None
    assert task_of({"meta": "task"}) is None
    assert task_of({}) is None


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({}, ("any", 1)),
        ({"rule": "any"}, ("any", 1)),
        ({"rule": "all"}, ("all", 1)),
        ({"rule": {"quorum": 2}}, ("quorum", 2)),
        ({"rule": {"quorum": "two"}}, ("quorum", 0)),
        ({"rule": {"quorum": True}}, ("quorum", 0)),
        ({"rule": {}}, ("quorum", 0)),
        ({"rule": "most"}, ("most", 1)),
    ],
)
def test_task_rule(rule: dict[str, Any], expected: tuple[str, int]) -> None:
    assert task_rule({"roles": ["manager"], **rule}) == expected


def test_form_of() -> None:
    form = {"type": "object", "properties": {"amount": {"type": "number"}}}
    assert form_of({"form": form}) is form
    assert form_of({}) == {"type": "object"}
    assert form_of({"form": {}}) == {"type": "object"}
    assert form_of({"form": "object"}) == {"type": "object"}


def test_context_fields_are_the_form_s_and_what_assign_sets() -> None:
    from approvals.machine.config import context_fields

    config = {
        "form": {"type": "object", "properties": {"amount": {}, "title": {}}},
        "states": {
            "a": {"on": {"GO": {"target": "b", "assign": {"revisions": "1"}}}},
            "b": {"type": "final"},
        },
    }
    assert context_fields(config) == {"amount", "title", "revisions"}
    assert context_fields({"form": "broken", "states": []}) == set()
