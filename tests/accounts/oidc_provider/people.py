"""Sign-in at the provider with the people of control.json."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User

from tests.accounts.oidc_provider import control


class ControlFileBackend(ModelBackend):
    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kw: Any
    ) -> User | None:
        found = control.person(username or "")
        if found is None or found["password"] != password:
            return None
        user, _ = User.objects.get_or_create(username=username)
        return user
