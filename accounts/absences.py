"""Out-of-office: who covers for whom, and on which days.

While an absence lasts, work that would go to the absent user goes to their substitute (a
delegation or reassignment to them lands with the substitute), and the substitute may act on
the tasks offered to the absent user's roles and on the tasks already assigned to them; the
audit says "on behalf of". Chains are followed (A away → B, B away → C: C covers both); a
cycle on a shared day is refused when the absence is set.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from accounts.models import OutOfOffice, User
from accounts.people import choosable_people

# Longer chains than this are refused at creation; resolution stops here too.
MAX_CHAIN = 10


def local_day(now: datetime) -> date:
    return timezone.localtime(now).date()


def absence_problems(
    *,
    user_id: int,
    substitute_id: int | None,
    starts_on: date | None,
    ends_on: date | None,
    today: date,
    exclude_id: int | None = None,
) -> dict[str, list[str]]:
    """What is wrong with an absence, per field; empty when it may be saved."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    substitute = choosable_people().filter(pk=substitute_id).first()
    if substitute is None:
        add("substitute", "Choose an active user.")
    elif substitute.pk == user_id:
        add("substitute", "Choose someone other than yourself.")
    if starts_on is None:
        add("starts_on", "Enter the first day away.")
    if ends_on is None:
        add("ends_on", "Enter the last day away.")
    if errors:
        return errors
    assert starts_on is not None and ends_on is not None and substitute is not None
    if ends_on < starts_on:
        add("ends_on", "The last day cannot be before the first.")
        return errors
    if ends_on < today:
        add("ends_on", "This period is already over.")
        return errors
    overlapping = (
        OutOfOffice.objects.filter(user_id=user_id, starts_on__lte=ends_on, ends_on__gte=starts_on)
        .exclude(pk=exclude_id)
        .first()
    )
    if overlapping is not None:
        add(
            "starts_on",
            f"Overlaps the absence from {overlapping.starts_on} to {overlapping.ends_on}.",
        )
        return errors
    cycle = _cycle_through(user_id, substitute, starts_on, ends_on, exclude_id)
    if cycle:
        add(
            "substitute",
            "That would make a loop: " + " → ".join(str(u) for u in cycle) + ".",
        )
    return errors


def _cycle_through(
    user_id: int, substitute: User, starts_on: date, ends_on: date, exclude_id: int | None
) -> list[User] | None:
    """The chain substitute → ... → user on some shared day, if the new absence closes one."""
    # Each path narrows the days it holds on; a loop needs every link on one common day.
    paths: list[tuple[list[User], date, date]] = [([substitute], starts_on, ends_on)]
    for _ in range(MAX_CHAIN):
        next_paths = []
        for chain, first, last in paths:
            links = (
                OutOfOffice.objects.filter(user=chain[-1], starts_on__lte=last, ends_on__gte=first)
                .exclude(pk=exclude_id)
                .select_related("substitute")
            )
            for link in links:
                if link.substitute_id == user_id:
                    return [User.objects.get(pk=user_id), *chain, link.substitute]
                if link.substitute in chain:
                    continue
                next_paths.append(
                    (
                        [*chain, link.substitute],
                        max(first, link.starts_on),
                        min(last, link.ends_on),
                    )
                )
        if not next_paths:
            return None
        paths = next_paths
    return None


def _active_links(day: date) -> Q:
    return Q(starts_on__lte=day, ends_on__gte=day)


def resolve_assignee(user_id: int, day: date) -> tuple[int, int | None]:
    """Who gets work meant for `user_id` on `day`: (assignee, absent user or None)."""
    current = user_id
    for _ in range(MAX_CHAIN):
        substitute = (
            OutOfOffice.objects.filter(_active_links(day), user_id=current)
            .values_list("substitute_id", flat=True)
            .first()
        )
        if substitute is None or substitute == user_id:
            break
        current = substitute
    return current, (user_id if current != user_id else None)


def covered_user_ids(user: Any, day: date) -> set[int]:
    """The users `user` covers for today, through chains; cached on the user for the request."""
    cache = getattr(user, "_signoff_covered", None)
    if cache is not None and cache[0] == day:
        return cache[1]
    covered: set[int] = set()
    frontier = {user.pk}
    for _ in range(MAX_CHAIN):
        found = (
            set(
                OutOfOffice.objects.filter(
                    _active_links(day), substitute_id__in=frontier
                ).values_list("user_id", flat=True)
            )
            - covered
            - {user.pk}
        )
        if not found:
            break
        covered |= found
        frontier = found
    user._signoff_covered = (day, covered)
    return covered
