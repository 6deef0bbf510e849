"""Moments in one format, with the reader's time zone (`{{ task.due_at|when }}`), and
decisions in words (`{{ decision.event|decision_words }}`)."""

from __future__ import annotations

from datetime import date, datetime

from django import template

from approvals.formatting import day, moment
from approvals.machine.words import decision_verb

register = template.Library()


@register.filter
def when(value: datetime | None) -> str:
    """'3 Dec 2026, 14:36 CET' in the active (the reader's) time zone."""
    return moment(value) if isinstance(value, datetime) else ""


@register.filter
def on_day(value: date | None) -> str:
    """'3 Dec 2026'."""
    return day(value) if isinstance(value, date) else ""


@register.filter
def decision_words(event: str) -> str:
    """APPROVE -> 'approved', REQUEST_CHANGES -> 'asked for changes'."""
    return decision_verb(str(event or ""))


@register.filter
def duration(seconds: float | None) -> str:
    """5400 → '1h 30m' (approvals/charts.py)."""
    from approvals.charts import duration_text

    return duration_text(seconds)


@register.filter
def percent(ratio: float | None) -> str:
    return "\N{EN DASH}" if ratio is None else f"{ratio:.0%}"
