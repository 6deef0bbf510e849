"""The definitions shipped in approvals/workflows/: valid, and stable through export."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.machine import (
    canonical_config,
    compile_expression,
    dump_document,
    evaluate_guard,
    load_document,
    validate_config,
)

WORKFLOWS = Path(__file__).resolve().parents[3] / "approvals" / "workflows"
EXAMPLES = sorted(WORKFLOWS.glob("*.yaml"))
ROLES = {"manager", "director", "finance", "operator", "warehouse", "shipping", "security"}
ACTIONS = {"notify", "webhook"}


def load(name: str) -> dict[str, Any]:
    path = WORKFLOWS / name
    return load_document(path.read_text(encoding="utf-8"), filename=path.name)


def test_the_examples_are_there() -> None:
    assert [path.name for path in EXAMPLES] == [
        "access_request.yaml",
        "onboard_supplier.yaml",
        "order_fulfillment.yaml",
        "purchase_order.yaml",
        "supplier_order.yaml",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path: Path) -> None:
    config = load_document(path.read_text(encoding="utf-8"), filename=path.name)
    assert validate_config(config, roles=ROLES, actions=ACTIONS) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_canonical_form_is_idempotent(path: Path) -> None:
    canonical = canonical_config(load(path.name))
    assert canonical_config(canonical) == canonical
    assert validate_config(canonical, roles=ROLES, actions=ACTIONS) == []


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_export_round_trips(path: Path, fmt: str) -> None:
    canonical = canonical_config(load(path.name))
    text = dump_document(canonical, fmt=fmt)
    again = canonical_config(load_document(text, filename=f"export.{fmt}"))
    assert again == canonical
    assert dump_document(again, fmt=fmt) == text


def test_purchase_order_routes_by_amount() -> None:
    config = load("purchase_order.yaml")
    small, _ = config["states"]["submitted"]["always"]
    guard = compile_expression(small["guard"])
    assert evaluate_guard(guard, {"amount": 999.5}, None) is True
    assert evaluate_guard(guard, {"amount": 1000}, None) is False
    large, _ = config["states"]["manager_review"]["on"]["APPROVE"]
    assert evaluate_guard(compile_expression(large["guard"]), {"amount": 10000}, None) is True


def test_purchase_order_counts_revisions_from_the_form_default() -> None:
    config = load("purchase_order.yaml")
    # The engine starts a request with the form's defaults filled in.
    defaults = {
        name: prop["default"]
        for name, prop in config["form"]["properties"].items()
        if "default" in prop
    }
    assert defaults == {"currency": "EUR", "revisions": 0}
    assign = config["states"]["changes_requested"]["on"]["RESUBMIT"]["assign"]
    revisions = compile_expression(assign["revisions"]).evaluate(defaults)
    assert revisions == 1
    assert type(revisions) is int


def test_access_request_rules() -> None:
    states = load("access_request.yaml")["states"]
    assert states["approval"]["meta"]["task"]["rule"] == "all"
    assert states["security_board"]["meta"]["task"]["rule"] == {"quorum": 2}


def test_order_fulfillment_is_parallel() -> None:
    fulfillment = load("order_fulfillment.yaml")["states"]["fulfillment"]
    assert fulfillment["type"] == "parallel"
    assert set(fulfillment["states"]) == {"inventory", "shipping"}
    assert fulfillment["onDone"] == "shipped"
    assert fulfillment["on"] == {"CANCEL": "cancelled"}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "done", "rejected", "P1D", "PT0S", "amount <", "x", "final", "any"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["target", "guard", "type", "states", "on", "src", "roles", "x"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validation_never_crashes_on_a_damaged_example(data: st.DataObject) -> None:
    # Admins edit definitions by hand: whatever they break, they get messages, never a crash.
    config = copy.deepcopy(load(data.draw(st.sampled_from(EXAMPLES)).name))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(config)[1:]))
        parent = config
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(_JSON)
        elif isinstance(parent, dict):
            del parent[path[-1]]
    problems = validate_config(config, roles=ROLES, actions=ACTIONS)
    assert all(isinstance(problem, str) and ": " in problem for problem in problems)
    if not problems:
        canonical = canonical_config(config)
        assert canonical_config(canonical) == canonical
