"""Durations: ISO 8601 without years or months, or XState's whole milliseconds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.machine import DurationError, format_duration, parse_duration
from approvals.machine.durations import duration_from_parts, duration_parts


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("P1D", timedelta(days=1)),
        ("PT2S", timedelta(seconds=2)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT0,25S", timedelta(milliseconds=250)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P2W", timedelta(weeks=2)),
        ("P1DT2H3M4.5S", timedelta(days=1, hours=2, minutes=3, seconds=4.5)),
        ("p1d", timedelta(days=1)),
        (" P1D ", timedelta(days=1)),
        (5000, timedelta(seconds=5)),
        ("5000", timedelta(seconds=5)),
        (1, timedelta(milliseconds=1)),
    ],
)
def test_parse(value: str | int, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("P1M", "P1M is ambiguous"),
        ("P1M", "use days"),
        ("P1Y", "P1Y is ambiguous"),
        ("P1Y2D", "is ambiguous"),
        ("P0D", "P0D is zero"),
        ("PT0S", "is zero"),
        ("PT0.0000001S", "is zero"),  # below a microsecond rounds to nothing
        ("-P1D", "-P1D is negative"),
        (0, "0 milliseconds: durations must be longer than zero"),
        ("0", "durations must be longer than zero"),
        (-5, "durations must be longer than zero"),
        ("-5", "durations must be longer than zero"),
        ("P", "is not a duration"),
        ("PT", "is not a duration"),
        ("P1DT", "is not a duration"),
        ("1D", "is not a duration"),
        ("2 days", "is not a duration"),
        ("1.5", "is not a duration"),
        ("", "is not a duration"),
        ("P1.5D", "only the seconds may have a fraction"),
        ("PT1.5H", "only the seconds may have a fraction"),
        ("P99999999999D", "is too long"),
        (10**20, "is too long"),
        (True, "got bool"),
        (1.5, "got float"),
        (None, "got NoneType"),
    ],
)
def test_errors(value: object, message: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(value)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_duration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_duration("P1M")


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(days=1), "P1D"),
        (timedelta(days=1, hours=12), "P1DT12H"),
        (timedelta(weeks=2), "P14D"),
        (timedelta(seconds=2), "PT2S"),
        (timedelta(milliseconds=500), "PT0.5S"),
        (timedelta(hours=1, minutes=30, seconds=5, microseconds=250), "PT1H30M5.00025S"),
        (timedelta(0), "PT0S"),
        (timedelta(days=-1), "-P1D"),
    ],
)
def test_format(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


@pytest.mark.parametrize("value", ["P1D", "PT2S", "P1DT12H", "PT0.5S", "P2W", "5000", 90061001])
def test_format_parses_back(value: str | int) -> None:
    td = parse_duration(value)
    assert parse_duration(format_duration(td)) == td


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("P2D", (2, "days")),
        ("PT4H", (4, "hours")),
        ("PT30M", (30, "minutes")),
        ("pt90m", (90, "minutes")),
        ("P1DT12H", None),  # two units: kept as written (under a calendar P1D is not PT24H)
        ("PT0.5S", None),
        ("5000", None),
        ("P0D", None),
    ],
)
def test_duration_parts(value: str, parts: tuple[int, str] | None) -> None:
    assert duration_parts(value) == parts


def test_duration_from_parts_writes_what_the_engine_reads() -> None:
    assert duration_from_parts(2, "days") == "P2D"
    assert duration_from_parts(4, "hours") == "PT4H"
    assert duration_from_parts(15, "minutes") == "PT15M"
    for amount, unit, message in (
        (0, "days", "at least 1"),
        (-1, "hours", "at least 1"),
        (True, "days", "whole number"),
        (2, "months", "unknown unit"),
    ):
        with pytest.raises(DurationError, match=message):
            duration_from_parts(amount, unit)
