"""Roles (Django groups) by name and by id, and their members, cached per process: opening a
task names its roles, and telling people about it names them and their members again, without
a lookup query each time."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from approvals.caching import ProcessCache


def _load() -> tuple[dict[str, int], dict[int, str]]:
    by_name = dict(Group.objects.values_list("name", "pk"))
    return by_name, {pk: name for name, pk in by_name.items()}


_roles = ProcessCache(_load, models=[Group])


def role_ids_by_name(names: set[str]) -> dict[str, int]:
    by_name, _ = _roles.get()
    if not names <= by_name.keys():
        # A role created in another process since the cache was filled.
        _roles.forget()
        by_name, _ = _roles.get()
    return {name: by_name[name] for name in names if name in by_name}


def role_names(ids: set[int]) -> dict[int, str]:
    _, by_id = _roles.get()
    if not ids <= by_id.keys():
        _roles.forget()
        _, by_id = _roles.get()
    return {pk: by_id[pk] for pk in ids if pk in by_id}


def _load_members() -> dict[int, frozenset[int]]:
    return {}


# The active members of each role, filled role by role as asked; emptied when anyone's roles
# or account change here, and at the latest after `seconds` for changes made elsewhere.
_members = ProcessCache(
    _load_members,
    models=[Group, get_user_model()],
    m2m=[get_user_model().groups.through],
    seconds=30.0,
)


def role_members(ids: set[int]) -> dict[int, frozenset[int]]:
    """The active users in each of these roles."""
    known = _members.get()
    missing = ids - known.keys()
    if missing:
        found: dict[int, set[int]] = {pk: set() for pk in missing}
        for user_id, group_id in (
            get_user_model()
            .groups.through.objects.filter(group_id__in=missing, user__is_active=True)
            .values_list("user_id", "group_id")
        ):
            found[group_id].add(user_id)
        known.update((pk, frozenset(users)) for pk, users in found.items())
    return {pk: known[pk] for pk in ids}
