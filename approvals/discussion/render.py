"""Comments are Markdown, rendered with `markdown` and then sanitised with `nh3` (ammonia):
only the tags and attributes below survive, links get rel="noopener noreferrer nofollow", and
raw HTML typed in a comment is left as text, so it is shown, never run."""

from __future__ import annotations

import re

import markdown
import nh3

TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "a", "h1", "h2", "h3", "h4", "hr", "table", "thead", "tbody", "tr", "th", "td", "del",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}
# @username as Django's usernames allow (letters, digits, @.+-_), not inside an address.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.+-]*\w)")


def _markdown() -> markdown.Markdown:
    md = markdown.Markdown(extensions=["fenced_code", "tables", "sane_lists"])
    # No raw HTML: typed tags stay text (escaped by the serializer), in code spans too.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


def render(body: str) -> str:
    """Safe HTML for a comment's Markdown."""
    rendered = _markdown().convert(body)
    return nh3.clean(
        rendered,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


def mentioned(body: str) -> list[str]:
    """The usernames `@mentioned` in a comment, in order, each once."""
    seen: dict[str, None] = {}
    for match in MENTION.finditer(body):
        seen.setdefault(match.group(1), None)
    return list(seen)
