"""A definition problem or warning on a page: its *names* in italics, everything else escaped."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_NAME = re.compile(r"\*([^*\s](?:[^*]*[^*\s])?)\*")


@register.filter
def problem(text: str) -> SafeString:
    # Escaped first, so the only markup is the <em> put in here.
    return mark_safe(_NAME.sub(r"<em>\1</em>", escape(text)))
