"""A person's own settings (never workflow state)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User, validate_time_zone
from approvals.services.errors import InvalidInput, NotAllowed


@transaction.atomic
def user_set_time_zone(*, user_id: int, time_zone: str, actor: Any) -> User:
    """The time zone dates are shown to this person in ('' for the site's)."""
    if not (actor.is_authenticated and actor.is_active) or actor.pk != user_id:
        raise NotAllowed("you may only change your own time zone")
    time_zone = (time_zone or "").strip()
    try:
        validate_time_zone(time_zone)
    except ValidationError as exc:
        raise InvalidInput("not a time zone", {"time_zone": list(exc.messages)}) from None
    user = User.objects.select_for_update().get(pk=user_id)
    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])
    return user
