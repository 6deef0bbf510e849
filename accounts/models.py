"""People and roles. Roles are Django groups; `Role` adds what a group lacks."""

from __future__ import annotations

from datetime import time
from functools import cache
from zoneinfo import available_timezones

from django.contrib.auth.models import AbstractUser, Group
from django.core.exceptions import ValidationError
from django.db import models


@cache
def time_zones() -> list[str]:
    """The IANA time zones a person may choose, sorted."""
    return sorted(available_timezones())


def validate_time_zone(value: str) -> None:
    if value and value not in time_zones():
        raise ValidationError(f"'{value}' is not a time zone (for example Europe/Paris).")


class User(AbstractUser):
    slack_user_id = models.CharField(
        max_length=32, blank=True, help_text="Slack member id (U…); matched by e-mail if empty."
    )
    teams_webhook_url = models.URLField(
        max_length=500,
        blank=True,
        # In the database too, as time_zone: rows written without the field read as none.
        default="",
        db_default="",
        verbose_name="Teams webhook URL",
        help_text="A Teams (Workflows) webhook that posts to this person's own chat; optional.",
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        # A default in the database too: rows written without the field (older code, a
        # migration's historical model) read as the site's zone.
        default="",
        db_default="",
        validators=[validate_time_zone],
        help_text="The IANA time zone dates are shown in (empty: the site's TIME_ZONE).",
    )
    # The org chart: steps with `assignee: manager_of_requester` go to this person.
    manager = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports",
        help_text="Who this person reports to; steps that go to the requester's manager use it.",
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    def clean(self) -> None:
        super().clean()
        # Up the chain from the chosen manager, this person must not come back.
        if self.manager_id is not None and self.manager_id == self.pk:
            raise ValidationError({"manager": "Nobody is their own manager."})
        seen, above = {self.pk}, self.manager
        while above is not None:
            if above.pk in seen:
                raise ValidationError(
                    {"manager": f"{self.manager} reports to this person, directly or not."}
                )
            seen.add(above.pk)
            above = above.manager

    @property
    def display_name(self) -> str:
        return str(self)


class Role(models.Model):
    """A role is a group of users; this row describes what the role is for."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="role")
    description = models.TextField(blank=True)
    slack_channel = models.CharField(
        max_length=32,
        blank=True,
        help_text="Slack channel id (C…) that gets this role's new tasks instead of each member.",
    )
    teams_webhook_url = models.URLField(
        max_length=500,
        blank=True,
        # In the database too, as time_zone: rows written without the field read as none.
        default="",
        db_default="",
        verbose_name="Teams webhook URL",
        help_text="A Teams channel's webhook that gets this role's new tasks as cards.",
    )

    def __str__(self) -> str:
        return self.group.name


class OutOfOffice(models.Model):
    """While it lasts, work that would go to `user` goes to `substitute` instead."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="absences")
    substitute = models.ForeignKey(User, on_delete=models.CASCADE, related_name="substitutions")
    starts_on = models.DateField()
    ends_on = models.DateField(help_text="Last day away (inclusive).")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "out-of-office period"
        ordering = ["starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")),
                name="absence_ends_after_start",
            ),
            models.CheckConstraint(
                condition=~models.Q(substitute=models.F("user")),
                name="absence_substitute_not_self",
            ),
        ]
        indexes = [models.Index(fields=["user", "ends_on"], name="absence_user_ends")]

    def __str__(self) -> str:
        return f"{self.user} away {self.starts_on} to {self.ends_on}, covered by {self.substitute}"


# ----- Notification preferences. The kinds are approvals' (NotificationKind);
# accounts imports nothing of approvals, so `kind` is checked where preferences are written.


class Delivery(models.TextChoices):
    IMMEDIATE = "immediate", "At once"
    HOURLY = "hourly", "In an hourly digest"
    DAILY = "daily", "In a daily digest"


class NotificationPreference(models.Model):
    """How one kind of notification reaches one person, or, without a user, everyone who chose
    nothing for it (the organisation's default, set in the admin). In-app is always on."""

    user = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_preferences",
        help_text="Empty: the organisation's default for this kind.",
    )
    kind = models.CharField(max_length=20)
    email = models.BooleanField(default=True, verbose_name="e-mail")
    slack = models.BooleanField(default=True)
    teams = models.BooleanField(default=True)
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.IMMEDIATE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="preference_user_kind"),
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(user__isnull=True), name="preference_default"
            ),
        ]

    def __str__(self) -> str:
        who = self.user or "everyone"
        return f"{self.kind} for {who}: {self.get_delivery_display().lower()}"


class NotificationSchedule(models.Model):
    """When a person's digests go, and their quiet hours and days, in their own time zone."""

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, related_name="notification_schedule"
    )
    digest_time = models.TimeField(
        default=time(8, 0), help_text="When a daily digest goes (hourly ones go on the hour)."
    )
    quiet_from = models.TimeField(null=True, blank=True)
    quiet_until = models.TimeField(
        null=True, blank=True, help_text="Before quiet_from: the quiet hours cross midnight."
    )
    quiet_days = models.JSONField(
        default=list, blank=True, help_text="Whole quiet days, 0 = Monday … 6 = Sunday."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quiet_from__isnull=True, quiet_until__isnull=True)
                | models.Q(quiet_from__isnull=False, quiet_until__isnull=False),
                name="schedule_quiet_hours_both_or_neither",
            ),
        ]

    def __str__(self) -> str:
        return f"schedule of {self.user}"


# ----- Single sign-on (accounts/sso.py): who a person is at the identity provider, which of
# the provider's groups give which role, and what each sign-in changed.


class ExternalIdentity(models.Model):
    """A person's account at an identity provider: its issuer and subject, which never change
    (an e-mail address may, and may be given to someone else)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="external_identities")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "identity-provider account"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="identity_issuer_subject")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class ProviderGroupRole(models.Model):
    """Members of the provider's group `provider_group` have `role`; a role named here is
    managed by the provider: given and taken away at each sign-in."""

    provider_group = models.CharField(
        max_length=255,
        help_text="The group's name as the provider sends it, e.g. Finance-Approvers.",
    )
    role = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="provider_groups")

    class Meta:
        verbose_name = "group → role mapping"
        ordering = ["provider_group", "role__name"]
        constraints = [
            models.UniqueConstraint(fields=["provider_group", "role"], name="mapping_group_role")
        ]

    def __str__(self) -> str:
        return f"{self.provider_group} → {self.role.name}"


class KeptRole(models.Model):
    """A role membership given here that sign-in leaves alone, even when the role is managed by
    the provider and the person is not in its group there."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="kept_roles")
    role = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="kept_memberships")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "role not managed by the identity provider"
        verbose_name_plural = "roles not managed by the identity provider"
        constraints = [models.UniqueConstraint(fields=["user", "role"], name="kept_user_role")]

    def __str__(self) -> str:
        return f"{self.role.name} of {self.user}, kept"


class RoleChange(models.Model):
    """Append-only: roles a sign-in with the identity provider gave or took away."""

    # The record outlives the account: the username is kept beside it.
    user = models.ForeignKey(
        User, null=True, on_delete=models.SET_NULL, related_name="role_changes"
    )
    username = models.CharField(max_length=150)
    at = models.DateTimeField()
    issuer = models.CharField(max_length=255)
    added = models.JSONField(default=list)
    removed = models.JSONField(default=list)

    class Meta:
        verbose_name = "role change from the identity provider"
        verbose_name_plural = "role changes from the identity provider"
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["user", "at"], name="rolechange_user_at")]

    def __str__(self) -> str:
        changes = [f"+{name}" for name in self.added]
        changes += [f"\N{MINUS SIGN}{name}" for name in self.removed]
        return f"roles from identity provider: {' '.join(changes)}"
