"""publish_warnings: decisions a guard can block with nothing to fall back on."""

from __future__ import annotations

from approvals.machine.warnings import publish_warnings


def flow(approve: object, **meta: object) -> dict[str, object]:
    return {
        "id": "w",
        "title": "W",
        "initial": "review",
        "states": {
            "review": {
                "meta": {"task": {"roles": ["manager"]}, **meta},
                "on": {"APPROVE": approve, "REJECT": "done"},
            },
            "director": {"meta": {"task": {"roles": ["director"]}}, "on": {"APPROVE": "done"}},
            "done": {"type": "final"},
        },
    }


def test_a_decision_with_a_fallback_is_not_a_warning() -> None:
    approve = [{"target": "director", "guard": "amount >= 10000"}, {"target": "done"}]
    assert publish_warnings(flow(approve)) == []


def test_a_decision_every_arrow_of_which_has_a_guard_is_named() -> None:
    approve = {"target": "done", "guard": "amount < 1000"}
    assert publish_warnings(flow(approve, label="Manager approval")) == [
        "In *Manager approval*, *Approve* can be blocked by its guard `amount < 1000` and no "
        "other arrow takes APPROVE then"
    ]
    approve = [
        {"target": "done", "guard": "amount < 1000"},
        {"target": "director", "guard": "amount >= 10000"},
    ]
    assert publish_warnings(flow(approve)) == [
        "In *Review*, *Approve* can be blocked by its guards `amount < 1000` or "
        "`amount >= 10000` and no other arrow takes APPROVE then"
    ]


def test_steps_without_a_task_are_not_decisions() -> None:
    config = flow("done")
    config["states"]["auto"] = {"on": {"GO": {"target": "done", "guard": "x"}}}
    assert publish_warnings(config) == []
