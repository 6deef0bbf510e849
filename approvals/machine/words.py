"""A definition's parts in plain words, for the people who follow a request (not its author).

The diagram's reader mode, the history and the task page's refusals say a transition's
condition with the transition's own `description` where it has one ("the amount is 10,000 or
more"); without it, `guard_words` reads a simple guard (comparisons of a form field with a
number, a text or a boolean, joined by `&&`), and anything else gets a neutral phrase rather
than the expression. Pure Python, no Django.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from approvals.machine.durations import DurationError, parse_duration

__all__ = [
    "GuardWords",
    "condition_sentence",
    "condition_short",
    "decision_verb",
    "duration_words",
    "enum_options",
    "enum_title",
    "event_label",
    "field_phrase",
    "format_number",
    "guard_words",
    "refusal",
    "role_label",
    "roles_phrase",
    "timedelta_words",
    "with_article",
]

# What a transition whose guard cannot be read safely says about it.
NEUTRAL_SHORT = "in some cases"
NEUTRAL_SENTENCE = "its condition held"

_COMPARISON = re.compile(
    r"""\s*(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s*
    (?P<op><=|>=|==|!=|<|>)\s*
    (?P<value>-?\d+(?:\.\d+)?|"[^"\\]*"|'[^'\\]*'|true|false)\s*""",
    re.VERBOSE,
)
_BARE = re.compile(r"\s*(?P<not>!)?\s*(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s*")
# Reserved words of the expression language are never a field.
_KEYWORDS = frozenset({"true", "false", "null", "in", "event"})

# op: (short form, sentence form) around a value
_PHRASES = {
    ">=": ("{v} or more", "is {v} or more"),
    ">": ("more than {v}", "is more than {v}"),
    "<=": ("{v} or less", "is {v} or less"),
    "<": ("under {v}", "is under {v}"),
    "==": ("{v}", "is {v}"),
    "!=": ("not {v}", "is not {v}"),
}


@dataclass(frozen=True)
class GuardWords:
    short: str  # for an arrow's label: "10,000 or more"
    sentence: str  # for a line of history: "the amount is 10,000 or more"


def format_number(value: Any) -> str:
    """10000 -> '10,000'; 1234.5 -> '1,234.5'; anything else as text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def field_phrase(name: str, form: Mapping[str, Any] | None = None) -> str:
    """How a sentence names a form field: its schema title when it reads as a noun ('the
    total amount'), else its name in words ('the amount')."""
    prop = _property(form, name)
    title = prop.get("title") if isinstance(prop.get("title"), str) else ""
    if title and len(title) <= 40 and not re.search(r"[?!:(]", title):
        words = title.strip()
    else:
        words = name.replace("_", " ").strip()
    if words[:1].isupper() and not words[1:2].isupper():
        words = words[:1].lower() + words[1:]
    return f"the {words}"


def guard_words(guard: str, form: Mapping[str, Any] | None = None) -> GuardWords | None:
    """A simple guard in words, or None when it cannot be said safely."""
    said = [_one(part, form) for part in guard.split("&&")]
    words = [s for s in said if s is not None]
    if len(words) != len(said):
        return None
    if len(words) == 1:
        return words[0]
    sentence = " and ".join(w.sentence for w in words)
    return GuardWords(short=sentence, sentence=sentence)


def _one(part: str, form: Mapping[str, Any] | None) -> GuardWords | None:
    match = _COMPARISON.fullmatch(part)
    if match is not None:
        field, op, raw = match["field"], match["op"], match["value"]
        if field in _KEYWORDS:
            return None
        if raw in ("true", "false"):
            if op not in ("==", "!="):
                return None
            return _flag(field, form, (raw == "true") == (op == "=="))
        value = _value_words(raw, _property(form, field))
        short, sentence = _PHRASES[op]
        if not raw[0].isdigit() and raw[0] != "-" and op not in ("==", "!="):
            return None  # ordering texts is not something to say in words
        return GuardWords(
            short=short.format(v=value),
            sentence=f"{field_phrase(field, form)} {sentence.format(v=value)}",
        )
    match = _BARE.fullmatch(part)
    if match is not None and match["field"] not in _KEYWORDS:
        return _flag(match["field"], form, not match["not"])
    return None


def _flag(field: str, form: Mapping[str, Any] | None, on: bool) -> GuardWords:
    phrase = field_phrase(field, form)
    return GuardWords(
        short=f"{phrase[4:]}: {'yes' if on else 'no'}",
        sentence=f"{phrase} is {'yes' if on else 'no'}",
    )


def _value_words(raw: str, prop: Mapping[str, Any]) -> str:
    if raw[0] in "\"'":
        text = raw[1:-1]
        return enum_title(prop, text)
    number = float(raw) if "." in raw else int(raw)
    return format_number(number)


def enum_options(prop: Mapping[str, Any]) -> list[tuple[Any, str]] | None:
    """A schema's fixed values with their titles: `enum` (titled by `x-enumNames`), or a
    `oneOf` whose every option is a `const` (titled by its `title`); None for neither."""
    if isinstance(prop.get("enum"), list):
        return [(value, enum_title(prop, value)) for value in prop["enum"]]
    options = prop.get("oneOf")
    if (
        isinstance(options, list)
        and options
        and all(isinstance(o, Mapping) and "const" in o for o in options)
    ):
        return [(o["const"], str(o.get("title") or o["const"])) for o in options]
    return None


def enum_title(prop: Mapping[str, Any], value: Any) -> str:
    """The title a schema gives an enum value (`oneOf` of `const` + `title`, or
    `x-enumNames` beside `enum`), else the value as text."""
    for option in prop.get("oneOf") or prop.get("anyOf") or ():
        if isinstance(option, Mapping) and option.get("const") == value and option.get("title"):
            return str(option["title"])
    names, values = prop.get("x-enumNames"), prop.get("enum")
    if isinstance(names, list) and isinstance(values, list) and value in values:
        index = values.index(value)
        if index < len(names) and isinstance(names[index], str):
            return names[index]
    return format_number(value) if isinstance(value, int | float) else str(value)


def _property(form: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    properties = (form or {}).get("properties") or {}
    prop = properties.get(name) if isinstance(properties, Mapping) else None
    return prop if isinstance(prop, Mapping) else {}


def condition_sentence(
    description: str, guard: str | None, form: Mapping[str, Any] | None = None
) -> str:
    """Why a guarded transition was taken (or is refused), as the end of a sentence: the
    transition's description, the guard read in words, or a neutral phrase; '' unguarded."""
    if description:
        return description.strip().rstrip(".")
    if not guard:
        return ""
    words = guard_words(guard, form)
    return words.sentence if words is not None else NEUTRAL_SENTENCE


def condition_short(
    description: str, guard: str | None, form: Mapping[str, Any] | None = None
) -> str:
    """The same, short enough for an arrow's label."""
    if description:
        return description.strip().rstrip(".")
    if not guard:
        return ""
    words = guard_words(guard, form)
    return words.short if words is not None else NEUTRAL_SHORT


def refusal(event: str, conditions: list[tuple[str, str | None]], form: Mapping[str, Any]) -> str:
    """Why a decision is not possible now, from its transitions' (description, guard):
    "Approve is not possible now: only when the amount is 10,000 or more"."""
    said = [condition_sentence(d, g, form) for d, g in conditions if d or g]
    readable = list(dict.fromkeys(s for s in said if s != NEUTRAL_SENTENCE))
    if not readable:
        return f"{event_label(event)} is not possible now: its condition does not hold"
    return f"{event_label(event)} is not possible now: only when {' or when '.join(readable)}"


def event_label(event: str) -> str:
    """APPROVE -> 'Approve', REQUEST_CHANGES -> 'Request changes'."""
    words = event.replace("_", " ").replace(".", " ").strip().lower()
    return words[:1].upper() + words[1:] if words else event


def role_label(role: str) -> str:
    words = role.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else role


# Role names that name a person take an article ("a manager"); the others name a team
# ("finance", "security").
_PERSON_ENDINGS = ("er", "or", "ist", "ant", "ent", "ee", "ian")


def with_article(role: str) -> str:
    words = role_label(role).lower()
    if not words.endswith(_PERSON_ENDINGS):
        return words
    return f"{'an' if words[:1] in 'aeiou' else 'a'} {words}"


def roles_phrase(roles: Iterable[str]) -> str:
    """['manager'] -> 'a manager'; ['manager', 'director'] -> 'a manager or a director'."""
    return " or ".join(with_article(r) for r in roles)


# What a person's decision is called in a sentence ("Bob Baker approved").
DECISION_VERBS = {
    "APPROVE": "approved",
    "REJECT": "rejected",
    "REQUEST_CHANGES": "asked for changes",
    "RESUBMIT": "resubmitted the request",
    "WITHDRAW": "withdrew the request",
    # An operator's answers to a failed automated step.
    "retried": "retried the failed automated step",
    "skipped": "skipped the failed automated step",
    "cancelled": "cancelled the request at the failed automated step",
}


def decision_verb(decision: str) -> str:
    """'approved', 'asked for changes', or for an event of the definition's own, 'answered
    “Picked”' (never the event's name as written)."""
    return DECISION_VERBS.get(decision) or f"answered “{event_label(decision)}”"


_UNITS = (("day", 86_400), ("hour", 3600), ("minute", 60), ("second", 1))


def duration_words(value: Any) -> str:
    """P30D -> '30 days', PT1H30M -> '1 hour 30 minutes', 5000 (ms) -> '5 seconds'."""
    try:
        delta = parse_duration(value)
    except DurationError:
        return str(value)
    return timedelta_words(delta)


def timedelta_words(delta: timedelta) -> str:
    total = int(delta.total_seconds())
    if total <= 0:
        return "less than a second"
    parts = []
    for unit, size in _UNITS:
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{format_number(amount)} {unit}{'' if amount == 1 else 's'}")
        if len(parts) == 2:
            break
    return " ".join(parts)
