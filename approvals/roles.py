"""Roles (Django groups) by name and by id, cached per process: opening a task names its roles,
and telling people about it names them again, without a lookup query each time."""

from __future__ import annotations

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
