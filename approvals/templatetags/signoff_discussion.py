"""{% questions_for_you %}: the open questions reviewers asked the signed-in requester."""

from __future__ import annotations

from typing import Any

from django import template

from approvals.discussion.selectors import open_questions_for

register = template.Library()


@register.inclusion_tag("approvals/_questions_for_you.html", takes_context=True)
def questions_for_you(context: dict[str, Any]) -> dict[str, Any]:
    user = context["request"].user
    return {"questions": open_questions_for(user) if user.is_authenticated else []}
