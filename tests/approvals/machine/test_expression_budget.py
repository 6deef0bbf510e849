"""The evaluation budget: no guard or assign can run away with the time, or the memory, of
the decision that evaluates it (docs/definition-format.md, "The evaluation budget")."""

from __future__ import annotations

import math
from typing import Any

import pytest

from approvals.machine import (
    Budget,
    ExpressionError,
    check_expression,
    compile_expression,
    validate_config,
)
from approvals.machine.expressions import MAX_ITEMS, MAX_MACRO_NESTING, MAX_STEPS, MAX_TEXT

DIGITS = "[0,1,2,3,4,5,6,7,8,9]"


def nested_lists(levels: int) -> str:
    """10**levels elements: each level maps every digit onto the level below."""
    inner = DIGITS
    for level in range(levels - 1):
        inner = f"{DIGITS}.map(v{level}, {inner})"
    return inner


# A 290-character guard of the kind that was published and then held a request's row lock for
# more than 40 s: six nested macros over literal lists, 10**6 elements.
MILLION = f"size({nested_lists(6)}) > 0 && title != '{'x' * 89}'"


def steps_only() -> Budget:
    """A budget without its wall-time limit: steps are counted the same on any machine, and a
    busy test machine must not change what a test sees."""
    return Budget(seconds=math.inf)


def exceeded(source: str, context: dict[str, Any], budget: Budget | None = None) -> str:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source).evaluate(context, None, budget=budget or steps_only())
    assert caught.value.over_budget
    return str(caught.value)


def guarded(guard: str) -> dict[str, Any]:
    return {
        "id": "guarded",
        "title": "Guarded",
        "initial": "review",
        "states": {
            "review": {
                "meta": {"task": {"roles": ["manager"]}},
                "on": {"APPROVE": [{"target": "done", "guard": guard}, {"target": "done"}]},
            },
            "done": {"type": "final"},
        },
    }


# ----- refused when the definition is checked


def test_the_million_element_guard_is_refused_at_validation() -> None:
    assert len(MILLION) == 290
    problems = validate_config(guarded(MILLION), roles={"manager"})
    assert problems == [
        "Step *Review*, the *Approve* arrow's guard: macros nested more than "
        f"{MAX_MACRO_NESTING} deep (map, filter, all, exists, exists_one) "
        "(states.review.on.APPROVE[0].guard)"
    ]


def test_macros_over_literal_lists_that_would_take_too_many_steps_are_refused() -> None:
    hundred = "[" + ",".join(str(i % 10) for i in range(100)) + "]"
    source = f"{hundred}.all(a, {hundred}.all(b, {hundred}.all(c, c >= 0)))"
    with pytest.raises(ExpressionError) as caught:
        check_expression(source)
    assert str(caught.value).startswith(f"evaluating this takes more than {MAX_STEPS:,} steps")
    assert caught.value.over_budget


def test_a_long_literal_list_mapped_onto_another_is_refused() -> None:
    # Within the nesting limit, but building 150 lists of 150 values is over the step limit.
    many = "[" + ",".join(str(i % 10) for i in range(150)) + "]"
    with pytest.raises(ExpressionError) as caught:
        check_expression(f"size({many}.map(a, {many})) > 0")
    assert str(caught.value).startswith(f"evaluating this takes more than {MAX_STEPS:,} steps")


@pytest.mark.parametrize(
    "source",
    [
        "amount < 1000",
        "tags.exists(t, t == 'urgent')",
        "orders.exists(o, o.items.exists(i, i.sku == event.sku))",
        "teams.exists(t, t.members.exists(m, m.roles.exists(r, r == 'lead')))",
        f"{DIGITS}.map(a, {DIGITS}.map(b, a * b)).size() == 10",
        f"size({nested_lists(3)}) == 10",
    ],
)
def test_ordinary_guards_pass_the_check(source: str) -> None:
    assert check_expression(source) is compile_expression(source)


def test_compiling_alone_does_not_refuse_what_the_check_refuses() -> None:
    # Definitions published before the check still load; their guards meet the budget when
    # they run instead.
    assert compile_expression(MILLION).source == MILLION
    text = exceeded(MILLION, {"title": "x"})
    assert text.startswith("evaluation budget exceeded: more than")


# ----- refused while evaluating


def test_macros_over_context_lists_stop_at_the_step_limit() -> None:
    # Nothing is known about `items` at validation; 40**3 inner evaluations are not allowed.
    source = "items.all(a, items.all(b, items.all(c, c >= 0)))"
    check_expression(source)
    text = exceeded(source, {"items": list(range(40))})
    assert text == f"evaluation budget exceeded: more than {MAX_STEPS:,} steps"
    assert compile_expression(source).evaluate({"items": list(range(5))}) is True


def test_a_built_list_over_the_size_limit_stops() -> None:
    half = MAX_ITEMS // 2 + 1
    text = exceeded("size(items + items) > 0", {"items": list(range(half))})
    assert text == f"evaluation budget exceeded: a list of more than {MAX_ITEMS:,} elements"


def test_built_text_over_the_size_limit_stops() -> None:
    text = exceeded("size(t + t + t) > 0", {"t": "x" * (MAX_TEXT // 3 + 1)})
    assert text == f"evaluation budget exceeded: text of more than {MAX_TEXT:,} characters"


def test_joining_large_lists_costs_steps_for_each_element() -> None:
    # Each join stays under the size limit, but copying them over and over is work.
    items = list(range(MAX_ITEMS // 2))
    text = exceeded("items.map(x, items + items).size() > 0", {"items": items})
    assert text == f"evaluation budget exceeded: more than {MAX_STEPS:,} steps"


def test_a_result_that_shares_one_list_many_times_is_counted_in_full() -> None:
    # 300 references to one 300-element list: small in memory, 90,000 values once stored.
    items = list(range(300))
    text = exceeded("items.map(x, items)", {"items": items})
    assert text == f"evaluation budget exceeded: more than {MAX_STEPS:,} steps"


def test_comparing_large_structures_costs_steps() -> None:
    items = list(range(MAX_ITEMS))
    text = exceeded("items.all(x, items == items)", {"items": items})
    assert text == f"evaluation budget exceeded: more than {MAX_STEPS:,} steps"


def test_string_of_a_list_is_refused() -> None:
    # CEL defines string() for scalars; celpy's would write out the whole structure at once.
    with pytest.raises(ExpressionError) as caught:
        compile_expression("string(items)").evaluate({"items": [1, 2]})
    assert "string() does not accept a list" in str(caught.value)
    assert compile_expression("string(amount)").evaluate({"amount": 5}) == "5"


def test_wall_time_is_bounded() -> None:
    # A budget with no time left: the first step is over it, whatever the machine's speed.
    text = exceeded("amount < 1000", {"amount": 5}, Budget(seconds=0))
    assert text == "evaluation budget exceeded: more than 0 s of evaluation"


def test_one_budget_is_shared_by_the_evaluations_that_draw_on_it() -> None:
    expression = compile_expression("items.all(x, x >= 0)")
    context = {"items": list(range(100))}
    budget = steps_only()
    with pytest.raises(ExpressionError) as caught:
        for _ in range(MAX_STEPS):
            expression.evaluate(context, None, budget=budget)
    assert caught.value.over_budget
    assert budget.steps_left < 0
    # Without a shared budget, each evaluation gets its own.
    for _ in range(3):
        assert expression.evaluate(context, None, budget=steps_only()) is True


def test_other_errors_are_not_over_budget() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("1 / 0 == 1").evaluate({})
    assert not caught.value.over_budget
