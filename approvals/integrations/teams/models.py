"""What Teams sends: one Adaptive Card message per row, to a role's channel webhook or a
person's own webhook, written with its notification and posted after commit through the
outbox's retry queue (services.py). Imported by approvals.models, so these are approvals'."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

from approvals.models import Notification, NotificationKind, Task, WorkflowInstance


class TeamsStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


# A card that says how a task the first card was about closed ("Approved by Bob Baker").
CLOSED_KIND = "closed"
KINDS = [*NotificationKind.choices, (CLOSED_KIND, "Task closed")]


class TeamsMessage(models.Model):
    kind = models.CharField(max_length=20, choices=KINDS)
    notification = models.OneToOneField(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="teams"
    )
    recipient = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    role = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL)
    follows = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="follow_ups",
        help_text="The card whose task closed, for a follow-up card.",
    )
    text = models.CharField(max_length=300)
    status = models.CharField(
        max_length=10, choices=TeamsStatus.choices, default=TeamsStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    closed_shown_at = models.DateTimeField(
        null=True, blank=True, help_text="When a follow-up card for its closed task was written."
    )

    class Meta:
        app_label = "approvals"
        ordering = ["-id"]
        verbose_name = "Teams message"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="teams_due",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(recipient__isnull=False) | Q(role__isnull=False),
                name="teams_message_has_target",
            ),
            # One follow-up per card, however often its task's closing is seen.
            models.UniqueConstraint(
                fields=["follows"], condition=Q(follows__isnull=False), name="teams_one_follow_up"
            ),
        ]

    def __str__(self) -> str:
        target = f"role {self.role_id}" if self.role_id else f"user {self.recipient_id}"
        return f"{self.get_kind_display()} to {target} ({self.status})"
