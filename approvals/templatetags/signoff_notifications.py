from __future__ import annotations

from typing import Any

from django import template

from approvals.models import Notification
from approvals.notify.facts import unread_count

register = template.Library()


@register.simple_tag(takes_context=True)
def notification_bell(context: dict[str, Any]) -> dict[str, int]:
    """Unread count and the newest id (where the live connection starts from) for the bell."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"unread": 0, "last_id": 0}
    mine = Notification.objects.filter(recipient=user)
    return {
        "unread": unread_count(user),
        "last_id": mine.order_by("-pk").values_list("pk", flat=True).first() or 0,
    }
