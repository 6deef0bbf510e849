"""A definition's `title` as a template of its requests' titles.

`title: "{system} · {access_level} · {requester}"` names each request from its start form's
fields (`{requester}` is the requester's full name). A template names the requests, not the
workflow: where the definition itself is named (the list of workflows, the new-request page,
the admin), it is called by its `id` in words ("access-request" → "Access request"). A title
without placeholders is plain text, and the workflow's name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from approvals.machine.config import form_fields
from approvals.machine.words import enum_options, enum_title

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
REQUESTER = "requester"
# Between placeholders: the middle dot, |, comma, /, colon, en and em dashes, hyphen.
SEPARATOR = "[\u00b7|,/:\u2013\u2014-]"
# A request title longer than this is cut (WorkflowInstance.title's length).
MAX_RENDERED = 200


def placeholders(template: str) -> list[str]:
    """The names in a template's placeholders, in order, each once."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def stray_brace(template: str) -> bool:
    """Whether a brace is left once the placeholders are taken out (`{amount`, `{1}`...)."""
    rest = PLACEHOLDER.sub("", template)
    return "{" in rest or "}" in rest


def readable_title(template: str, key: str) -> str:
    """The definition's own name: its title, or for a title template its id in words."""
    if not placeholders(template):
        return template
    words = re.sub(r"[-_]+", " ", key).strip()
    return words[:1].upper() + words[1:] if words else template


def _text(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return str(value)


def render_title(
    template: str,
    context: Mapping[str, Any],
    requester: str,
    form: Mapping[str, Any] | None = None,
) -> str:
    """A request's title from the template; an empty field leaves its place empty, and the
    separators around it go too ("{system} · {note}" with no note is just the system). A
    field with fixed values reads as its value's title from the `form` ("GitHub", not
    "github")."""
    if not placeholders(template):
        return template
    fields = form_fields(form or {})

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == REQUESTER:
            text = requester
        elif isinstance(fields.get(name), Mapping) and enum_options(fields[name]) is not None:
            raw = context.get(name)
            text = "" if raw in (None, "") else enum_title(fields[name], raw)
        else:
            text = _text(context.get(name))
        # A marker that cannot be typed, so that empty parts are found once all are in.
        return text.replace("\x00", "") or "\x00"

    text = PLACEHOLDER.sub(value, template)
    # Drop each empty field with the separator before it (or after it, at the start).
    text = re.sub(rf"\s*{SEPARATOR}\s*\x00", "", text)
    text = re.sub(rf"\x00\s*{SEPARATOR}\s*", "", text)
    text = " ".join(text.replace("\x00", "").split())
    if len(text) > MAX_RENDERED:
        text = text[: MAX_RENDERED - 1].rstrip() + "…"
    return text
