"""What the task and request pages show of an ask (services.asks): who asked, the proposed
action as a table and as raw JSON, the reviewer's context as Markdown rendered safely."""

from __future__ import annotations

import json
from typing import Any

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

from approvals.models import Ask, WorkflowInstance

# What Markdown may become: text structure, links and code; never scripts, styles, images
# (a tracking pixel) or attributes beyond a link's address.
ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "b", "i", "code", "pre", "blockquote",
    "ul", "ol", "li", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
# Markdown's headings sit under the page's own h1 and h2.
_HEADING_SHIFT = {"h1": "h3", "h2": "h4"}


def render_markdown(text: str) -> SafeString:
    """Markdown as HTML that nh3 (Rust's ammonia) cleaned: raw HTML in the text is escaped
    or dropped, links get rel=noopener noreferrer."""
    html = markdown.markdown(text, extensions=["tables", "fenced_code"], output_format="html")
    for old, new in _HEADING_SHIFT.items():
        html = html.replace(f"<{old}>", f"<{new}>").replace(f"</{old}>", f"</{new}>")
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)


def argument_rows(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """The arguments as (place, value) rows: nested objects flattened to `a.b`, lists and
    scalars written as JSON."""
    if isinstance(value, dict) and value:
        rows: list[tuple[str, str]] = []
        for key, item in value.items():
            rows += argument_rows(item, f"{prefix}.{key}" if prefix else str(key))
        return rows
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return [(prefix or "(arguments)", text)]


def ask_of(instance: WorkflowInstance) -> Ask | None:
    try:
        return instance.ask
    except Ask.DoesNotExist:
        return None


def ask_context(instance: WorkflowInstance, *, arguments_text: str | None = None) -> dict[str, Any]:
    """The template's `ask`, or nothing for a request that no program asked."""
    ask = ask_of(instance)
    if ask is None:
        return {}
    return {
        "ask": ask,
        "ask_rows": argument_rows(ask.arguments) if ask.action_name else [],
        "ask_json": json.dumps(ask.arguments, indent=2, ensure_ascii=False),
        "ask_schema_json": json.dumps(ask.schema, indent=2, ensure_ascii=False)
        if ask.schema is not None
        else "",
        "ask_context_html": render_markdown(ask.context) if ask.context else "",
        "ask_arguments_text": arguments_text
        if arguments_text is not None
        else json.dumps(ask.arguments, indent=2, ensure_ascii=False),
    }


def edited_arguments(post: Any, decision: str) -> tuple[dict[str, Any] | None, str]:
    """The decision's data from the task page's JSON editor: the edited arguments for
    APPROVE_WITH_CHANGES (checked against the schema by the service), else no data. The
    second value is what is wrong with the text when it is not a JSON object."""
    if decision != "APPROVE_WITH_CHANGES":
        return None, ""
    text = post.get("arguments", "")
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"The arguments are not valid JSON: {exc}."
    if not isinstance(value, dict):
        return None, "The arguments must be a JSON object ({...})."
    return {"arguments": value}, ""


def arguments_messages(field_errors: dict[str, list[str]]) -> list[str]:
    """The service's refusals of the edited arguments, each naming its place."""
    messages = []
    for field, errors in field_errors.items():
        if field == "data.arguments" or field.startswith("data.arguments."):
            place = field.removeprefix("data.arguments").lstrip(".") or "arguments"
            messages += [f"{place}: {error}" for error in errors]
    return messages
