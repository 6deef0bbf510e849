"""Guard expressions: CEL through celpy, numbers that mix, errors that read well."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.machine import ExpressionError, compile_expression, evaluate_guard

CONTEXT: dict[str, Any] = {
    "amount": 5000,
    "price": 999.5,
    "revisions": 0,
    "title": "Laptop",
    "currency": "EUR",
    "tags": ["urgent", "it"],
    "vendor": {"name": "ACME", "country": "DE"},
    "vendor_id": None,
}


def run(source: str, context: dict[str, Any] | None = None, event: Any = None) -> Any:
    return compile_expression(source).evaluate(CONTEXT if context is None else context, event)


def error_of(source: str, context: dict[str, Any] | None = None, event: Any = None) -> str:
    with pytest.raises(ExpressionError) as caught:
        run(source, context, event)
    return str(caught.value)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("amount - 1000", 4000),
        ("amount / 2", 2500),
        ("7 / 2", 3),  # int division truncates, as in CEL
        ("7 / 2.0", 3.5),
        ("amount % 3", 2),
        ("-amount", -5000),
        ("price * 2", 1999),  # a whole double comes back as an int
        ("price + 0.25", 999.75),
    ],
)
def test_arithmetic(source: str, expected: Any) -> None:
    result = run(source)
    assert result == expected
    assert type(result) is type(expected)


def test_assigning_a_counter_gives_an_int() -> None:
    assert run("revisions + 1") == 1
    assert type(run("revisions + 1")) is int
    # A counter that arrived as 0.0 (a JSON client wrote 0.0) still stores 1, not 1.0.
    result = run("revisions + 1", {"revisions": 0.0})
    assert result == 1
    assert type(result) is int


@pytest.mark.parametrize(
    ("context", "expected"),
    [({"amount": 999.5}, True), ({"amount": 5000}, False), ({"amount": 1000.0}, False)],
)
def test_ints_and_doubles_compare_naturally(context: dict[str, Any], expected: bool) -> None:
    assert run("amount < 1000", context) is expected
    assert run("amount < 1000.0", context) is expected
    assert run("1000 > amount", context) is expected


@pytest.mark.parametrize(
    "source",
    ["2 == 2.0", "amount == 5000.0", "amount + 0.5 > amount", "[1, 2] == [1, 2.0]", "1.0 in [1]"],
)
def test_mixed_numbers_are_numbers(source: str) -> None:
    assert run(source) is True


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("title == 'Laptop'", True),
        ("title + ' x2'", "Laptop x2"),
        ("title.startsWith('Lap')", True),
        ("title.endsWith('top')", True),
        ("title.contains('apt')", True),
        ("size(title)", 6),
        ("title.matches('^L[a-z]+$')", True),
        ("title < 'Mouse'", True),
    ],
)
def test_strings(source: str, expected: Any) -> None:
    assert run(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("currency in ['EUR', 'USD']", True),
        ("currency in ['GBP']", False),
        ("'urgent' in tags", True),
        ("'country' in vendor", True),
        ("vendor.country == 'DE'", True),
        ("vendor['name']", "ACME"),
        ("tags[0]", "urgent"),
        ("tags.exists(t, t == 'it')", True),
        ("tags.all(t, size(t) > 1)", True),
        ("tags.map(t, t + '!')", ["urgent!", "it!"]),
        ("has(vendor.name)", True),
        ("has(vendor.iban)", False),
    ],
)
def test_lists_and_maps(source: str, expected: Any) -> None:
    assert run(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("amount > 1000 && currency == 'EUR'", True),
        ("amount > 1000 && currency == 'USD'", False),
        ("amount < 1000 || currency == 'EUR'", True),
        ("!(amount < 1000)", True),
        ("amount > 1000 ? 'big' : 'small'", "big"),
        # Errors on the side that does not decide are absorbed, as in CEL.
        ("true || 1 / 0 == 1", True),
        ("has(vendor.iban) && vendor.iban == 'x'", False),
    ],
)
def test_logic(source: str, expected: Any) -> None:
    assert run(source) == expected


def test_null_compares_equal_only_to_null() -> None:
    assert run("vendor_id == null") is True
    assert run("vendor_id == 'x'") is False
    assert run("title != null") is True


def test_a_leading_dot_names_the_same_field() -> None:
    assert run(".amount == amount") is True
    assert error_of(".amont") == "unknown name 'amont'"


def test_event_fields() -> None:
    assert run("event.amount > 10", event={"amount": 20}) is True
    assert run("event.comment", event={"comment": "ok"}) == "ok"
    assert run("has(event.comment)") is False  # no event: event is {}


def test_event_shadows_a_context_key_named_event() -> None:
    context = {"event": {"x": "from context"}}
    assert run("event.x", context, {"x": "from event"}) == "from event"
    assert run("event", context) == {}


def test_results_are_plain_python() -> None:
    result = run("{'a': [1, 2.5, 'x', true, null], 'b': vendor}")
    assert result == {"a": [1, 2.5, "x", True, None], "b": {"name": "ACME", "country": "DE"}}
    assert type(result["a"][3]) is bool
    assert type(result["a"][0]) is int


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("amont < 1000", "unknown name 'amont'"),
        ("1 / 0", "division by zero"),
        ("price / 0", "division by zero"),
        ("amount % 0", "modulo by zero"),
        ("title < 3", "cannot compare string and int with '<'"),
        ("title + 1", "cannot apply '+' to string and int"),
        ("vendor_id < 3", "cannot compare null and int with '<'"),
        ("event.comment", "no field 'comment'"),
        ("vendor['iban']", 'no key "iban" in the map'),
        ("tags[5]", "list index out of range"),
        ("amount && true", "'&&' needs true/false on both sides, not int"),
        ("!amount", "'!' needs true/false, not int"),
        ("amount ? 1 : 2", "the condition before '?' must be true/false, not int"),
        ("'a' in title", "'in' needs a list or map on its right, not string"),
        ("frobnicate(1)", "unknown function 'frobnicate'"),
        ("title.frobnicate()", "unknown function 'frobnicate'"),
        ("int('abc')", "int(): invalid literal"),
        ("size(1)", "size() does not accept these arguments"),
        ("9223372036854775807 + 1", "number out of range"),
        ("title.matches('(')", "invalid regular expression '('"),
        ("b'x'", "the result is bytes"),
        ("int", "the result is a function or type, not a value"),
    ],
)
def test_runtime_errors_read_well(source: str, message: str) -> None:
    text = error_of(source)
    assert message in text
    assert "celpy" not in text
    assert "<class" not in text
    assert len(text) < 200


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("amount <", "syntax error at column 8: unexpected end of expression"),
        ("amount > > 1", "syntax error at column 10: unexpected '>'"),
        ("'abc", "syntax error at column 1: unterminated string"),
        ("amount @ 2", "syntax error at column 8: unexpected character '@'"),
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("99999999999999999999", "invalid literal at column 1"),
        ("(" * 100 + "1" + ")" * 100, "nested too deeply"),
        ("1" * 3000, "longer than 2000 characters"),
    ],
)
def test_syntax_errors(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert message in str(caught.value)


def test_syntax_error_carries_the_column() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("amount <")
    assert caught.value.column == 8


def test_non_string_source() -> None:
    with pytest.raises(ExpressionError, match="expected an expression string, not int"):
        compile_expression(5)  # type: ignore[arg-type]
    with pytest.raises(ExpressionError, match="not list"):
        compile_expression(["a"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "__import__('os').system('true')",
        "title.__class__",
        "title.__class__.__mro__",
        "vendor.__class__",
        "amount.__class__",
        "type(title).__subclasses__()",
        "exec('1')",
        "eval('1')",
        "open('/etc/passwd')",
        "getattr(title, 'upper')",
        "globals()",
        "google.protobuf.__dict__",
    ],
)
def test_no_way_into_python(source: str) -> None:
    with pytest.raises(ExpressionError):
        run(source)


def test_a_dunder_key_in_a_map_is_just_data() -> None:
    assert run("m.__class__", {"m": {"__class__": "harmless"}}) == "harmless"


def test_compiled_expressions_are_cached() -> None:
    assert compile_expression("amount < 1000") is compile_expression("amount < 1000")


def test_names() -> None:
    expression = compile_expression(
        "amount > 1 && vendor.country == 'DE' && tags.exists(t, t == event.tag)"
    )
    assert expression.names() == {"amount", "vendor", "tags"}
    assert expression.source.startswith("amount > 1")


def test_fields_the_guard_does_not_read_are_not_converted() -> None:
    # A context value that expressions cannot hold must only fail the guards that use it.
    context = {"amount": 5, "blob": object()}
    assert run("amount == 5", context) is True
    assert "cannot be used in an expression" in error_of("blob == 1", context)


def test_evaluate_guard() -> None:
    expression = compile_expression("amount >= 1000")
    assert evaluate_guard(expression, CONTEXT, None) is True
    assert evaluate_guard(expression, {"amount": 10}, {}) is False


@pytest.mark.parametrize(
    ("source", "shown"),
    [("amount", "500"), ("title", '"Laptop"'), ("vendor_id", "null"), ("tags", '["urgent", "it"]')],
)
def test_a_guard_that_is_not_true_or_false(source: str, shown: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate_guard(compile_expression(source), {**CONTEXT, "amount": 500}, None)
    assert str(caught.value) == f"guard '{source}' gave {shown}, not true/false"


# Pieces of CEL, so that random text is often almost valid and reaches evaluation.
_TOKENS = st.sampled_from(
    [
        *CONTEXT,
        *"()[]{}.,:+-*/%<>!?",
        *("<=", "==", "!=", "&&", "||", "in", "event", "country", "x"),
        *("0", "1", "2.5", "1e308", "1u", "9223372036854775807", "'s'", "b'x'", "true", "null"),
        *("size", "int", "double", "string", "type", "dyn", "has", "matches", "exists", "map"),
        *("timestamp", "duration", "'1s'", "'2020-01-01T00:00:00Z'", "getHours", "'('", "'\\q'"),
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.lists(_TOKENS, max_size=14).map(" ".join),
    )
)
def test_random_text_only_ever_raises_expression_error(source: str) -> None:
    try:
        expression = compile_expression(source)
        expression.evaluate(CONTEXT, {"x": 1})
    except ExpressionError:
        pass


def test_guard_problem_names_what_stops_the_engine_in_words() -> None:
    from approvals.machine.expressions import guard_problem

    fields = {"amount", "title"}
    assert guard_problem("amount < 1000 && event.urgent", fields=fields) is None
    assert guard_problem("[1, 2].exists(x, x == amount)", fields=fields) is None
    assert guard_problem("amout < 1000", fields=fields) == (
        "amout is not a field of the request (did you mean amount?); the fields are: amount, title"
    )
    assert "syntax error" in guard_problem("amount <", fields=fields)
    assert guard_problem("x", fields=set()) == (
        "x is not a field of the request; the fields are: none"
    )


def test_guard_problem_tries_the_guard_on_values_of_the_form_s_kinds() -> None:
    from approvals.machine.expressions import guard_problem

    fields = {"title", "amount", "revisions"}
    samples = {"title": "", "amount": 0.5, "revisions": 0}
    assert guard_problem("title < 1000", fields=fields, samples=samples) == (
        "tried with a value of each field's kind, it fails: cannot compare string and int with '<'"
    )
    assert guard_problem("amount", fields=fields, samples=samples) == (
        "tried with a value of each field's kind, it fails: guard 'amount' gave 0.5, not true/false"
    )
    # What only these values break, or event data the trial cannot know, is not blamed.
    assert guard_problem("amount / revisions > 1", fields=fields, samples=samples) is None
    assert guard_problem("title < event.limit", fields=fields, samples=samples) is None


def test_form_samples_are_values_of_each_field_s_kind() -> None:
    from approvals.machine.config import form_samples

    config = {
        "form": {
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "amount": {"type": "number"},
                "currency": {"type": "string", "enum": ["EUR", "USD"]},
                "revisions": {"type": "integer", "default": 0},
                "either": {"type": ["string", "number"]},
            },
        }
    }
    assert form_samples(config) == {"title": "", "amount": 0.5, "currency": "EUR", "revisions": 0}
