"""People and roles. Roles are Django groups; `Role` adds what a group lacks."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, Group
from django.db import models


class User(AbstractUser):
    slack_user_id = models.CharField(
        max_length=32, blank=True, help_text="Slack member id (U…); matched by e-mail if empty."
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @property
    def display_name(self) -> str:
        return str(self)


class Role(models.Model):
    """A role is a group of users; this row describes what the role is for."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="role")
    description = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.group.name
