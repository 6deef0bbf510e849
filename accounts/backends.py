"""Password sign-in, which LOCAL_LOGIN=false turns off for everyone but the break-glass user."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


def password_allowed(username: str | None) -> bool:
    """Whether this username may sign in with a password at all."""
    if settings.LOCAL_LOGIN:
        return True
    return bool(settings.BREAK_GLASS_USER) and username == settings.BREAK_GLASS_USER


class LocalPasswordBackend(ModelBackend):
    """Django's ModelBackend (passwords and permissions). With LOCAL_LOGIN=false, a password
    signs in only BREAK_GLASS_USER, and only while that account is a superuser."""

    def authenticate(
        self,
        request: Any,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get(self._username_field())
        if not password_allowed(username):
            return None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and not settings.LOCAL_LOGIN and not user.is_superuser:
            return None
        return user

    def get_user(self, user_id: Any) -> Any:
        # Sessions signed in with a password before LOCAL_LOGIN=false end with it.
        user = super().get_user(user_id)
        kept = user is None or settings.LOCAL_LOGIN
        if not kept and (not password_allowed(user.get_username()) or not user.is_superuser):
            return None
        return user

    def _username_field(self) -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD
