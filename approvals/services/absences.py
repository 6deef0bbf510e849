"""Out-of-office periods: set and removed by their user (or an admin), one transaction each.
Who covers for whom, and the checks of a period, are `accounts.absences`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import transaction

from accounts.absences import absence_problems, local_day
from accounts.models import OutOfOffice, User
from approvals.services.errors import InvalidInput, NotAllowed


def _require_may_manage(actor: Any, user_id: int) -> None:
    if not (actor.is_authenticated and actor.is_active):
        raise NotAllowed("sign in to manage out-of-office")
    if actor.pk != user_id and not actor.has_perm("accounts.change_outofoffice"):
        raise NotAllowed("you may only manage your own out-of-office")


@transaction.atomic
def absence_create(
    *,
    user_id: int,
    substitute_id: int | None,
    starts_on: date | None,
    ends_on: date | None,
    note: str = "",
    actor: Any,
    now: datetime,
) -> OutOfOffice:
    _require_may_manage(actor, user_id)
    # Serialise absence changes: two people closing a loop at once must not both succeed.
    list(User.objects.select_for_update().filter(pk__in=[user_id, substitute_id or 0]))
    errors = absence_problems(
        user_id=user_id,
        substitute_id=substitute_id,
        starts_on=starts_on,
        ends_on=ends_on,
        today=local_day(now),
    )
    if errors:
        raise InvalidInput("the out-of-office period has errors", errors)
    return OutOfOffice.objects.create(
        user_id=user_id,
        substitute_id=substitute_id,
        starts_on=starts_on,
        ends_on=ends_on,
        note=note.strip()[:200],
    )


@transaction.atomic
def absence_delete(*, absence_id: int, actor: Any) -> None:
    absence = OutOfOffice.objects.filter(pk=absence_id).first()
    if absence is None:
        raise NotAllowed("no such out-of-office period")
    _require_may_manage(actor, absence.user_id)
    absence.delete()
