"""A definition's parts in plain words: simple guards read, anything else neutral."""

from __future__ import annotations

import pytest

from approvals.machine import words

FORM = {
    "properties": {
        "amount": {"type": "number", "title": "Total amount"},
        "title": {"type": "string", "title": "What are you buying?"},
        "currency": {
            "type": "string",
            "oneOf": [{"const": "EUR", "title": "Euro"}, {"const": "USD", "title": "US dollar"}],
        },
        "level": {"type": "string", "enum": ["r", "w"], "x-enumNames": ["Read", "Write"]},
        "urgent": {"type": "boolean"},
    }
}


@pytest.mark.parametrize(
    ("guard", "short", "sentence"),
    [
        ("amount >= 10000", "10,000 or more", "the total amount is 10,000 or more"),
        ("amount < 1000", "under 1,000", "the total amount is under 1,000"),
        ("amount > 2.5", "more than 2.5", "the total amount is more than 2.5"),
        ("amount <= 50", "50 or less", "the total amount is 50 or less"),
        ("currency == 'EUR'", "Euro", "the currency is Euro"),
        ('level != "w"', "not Write", "the level is not Write"),
        ("urgent", "urgent: yes", "the urgent is yes"),
        ("!urgent", "urgent: no", "the urgent is no"),
        ("urgent == false", "urgent: no", "the urgent is no"),
        ("title == 'x'", "x", "the title is x"),  # a question is no name for a field
    ],
)
def test_simple_guards_in_words(guard: str, short: str, sentence: str) -> None:
    said = words.guard_words(guard, FORM)
    assert said == words.GuardWords(short=short, sentence=sentence)


def test_guards_joined_by_and() -> None:
    said = words.guard_words("amount >= 1000 && currency == 'USD'", FORM)
    assert said is not None
    assert said.sentence == "the total amount is 1,000 or more and the currency is US dollar"


@pytest.mark.parametrize(
    "guard",
    [
        "size(items) > 2",
        "event.ok",
        "amount >= 1000 || urgent",
        "title > 'b'",
        "urgent > true",
        "amount * 2 > 10",
        "true",
        "a == 'x && y'",
    ],
)
def test_anything_else_is_not_read(guard: str) -> None:
    assert words.guard_words(guard, FORM) is None
    assert words.condition_sentence("", guard, FORM) == words.NEUTRAL_SENTENCE
    assert words.condition_short("", guard, FORM) == words.NEUTRAL_SHORT


def test_a_description_wins_over_the_guard() -> None:
    said = words.condition_sentence("the amount is 10,000 or more.", "amount >= 10000", FORM)
    assert said == "the amount is 10,000 or more"
    assert words.condition_sentence("", None, FORM) == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [("P30D", "30 days"), ("P1D", "1 day"), ("PT1H30M", "1 hour 30 minutes"), (5000, "5 seconds")],
)
def test_durations_in_words(value, expected) -> None:
    assert words.duration_words(value) == expected


def test_labels_and_numbers() -> None:
    assert words.event_label("REQUEST_CHANGES") == "Request changes"
    assert words.role_label("manager") == "Manager"
    assert words.format_number(1234567.5) == "1,234,567.5"
    assert words.format_number(10000.0) == "10,000"
    assert words.enum_title(FORM["properties"]["currency"], "GBP") == "GBP"
