"""A person's own settings (never workflow state)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import (
    Delivery,
    NotificationPreference,
    NotificationSchedule,
    User,
    validate_time_zone,
)
from approvals.models import NotificationKind
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


@transaction.atomic
def user_set_notification_preferences(
    *,
    user_id: int,
    kinds: Mapping[str, Mapping[str, Any]],
    digest_time: time,
    quiet_from: time | None,
    quiet_until: time | None,
    quiet_days: Iterable[int],
    actor: Any,
) -> None:
    """A person's channels and delivery for each kind (`kinds`: kind -> email, slack, teams,
    delivery), when their daily digest goes, and their quiet hours and days."""
    if not (actor.is_authenticated and actor.is_active) or actor.pk != user_id:
        raise NotAllowed("you may only change your own notification settings")
    errors: dict[str, list[str]] = {}
    for kind, chosen in kinds.items():
        if kind not in NotificationKind.values:
            errors.setdefault("kinds", []).append(f"'{kind}' is not a kind of notification.")
        elif chosen.get("delivery") not in Delivery.values:
            errors.setdefault(f"{kind}-delivery", []).append(
                "Choose at once, an hourly digest or a daily digest."
            )
    if (quiet_from is None) != (quiet_until is None):
        errors.setdefault("quiet_until", []).append(
            "Give both ends of the quiet hours, or neither."
        )
    elif quiet_from is not None and quiet_from == quiet_until:
        errors.setdefault("quiet_until", []).append("The quiet hours must not start as they end.")
    days = sorted(set(quiet_days))
    if any(not 0 <= d <= 6 for d in days):
        errors.setdefault("quiet_days", []).append("Days are 0 (Monday) to 6 (Sunday).")
    elif len(days) == 7:
        errors.setdefault("quiet_days", []).append(
            "Leave at least one day that is not quiet, or nothing would ever reach you."
        )
    if errors:
        raise InvalidInput("these notification settings cannot be saved", errors)
    for kind, chosen in kinds.items():
        NotificationPreference.objects.update_or_create(
            user_id=user_id,
            kind=kind,
            defaults={
                "email": bool(chosen.get("email")),
                "slack": bool(chosen.get("slack")),
                "teams": bool(chosen.get("teams")),
                "delivery": chosen["delivery"],
            },
        )
    NotificationSchedule.objects.update_or_create(
        user_id=user_id,
        defaults={
            "digest_time": digest_time,
            "quiet_from": quiet_from,
            "quiet_until": quiet_until,
            "quiet_days": days,
        },
    )
