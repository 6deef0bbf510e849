"""What e-mail sends: one row per message, written with its notification in the transaction of
the change and sent after commit by the outbox's retry queue (services.py). Imported by
approvals.models, so these are approvals' models."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q

from approvals.models import Notification, NotificationKind, Task, WorkflowInstance


class EmailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    # Waiting for the digest it goes in (due at next_attempt_at), then in it.
    HELD = "held", "Held for a digest"
    DIGESTED = "digested", "Sent in a digest"


DIGEST_KIND = "digest"
KINDS = [*NotificationKind.choices, (DIGEST_KIND, "Digest")]


class OutgoingEmail(models.Model):
    """One e-mail to one person; its Message-ID is fixed when the row is written, so a message
    sent twice (a worker that died after the server accepted it) is one message to the reader."""

    kind = models.CharField(max_length=20, choices=KINDS)
    notification = models.OneToOneField(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="email"
    )
    recipient = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    to = models.EmailField(max_length=254, help_text="The address when the message was written.")
    instance = models.ForeignKey(
        WorkflowInstance, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL)
    message_id = models.CharField(max_length=200, unique=True, help_text="Without the <>.")
    subject = models.CharField(max_length=300, blank=True, help_text="As sent.")
    status = models.CharField(
        max_length=10, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    digest = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="items",
        help_text="The digest this notification went in.",
    )
    digest_key = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        unique=True,
        help_text="A digest's person and period: one digest each, however often beat runs.",
    )
    link_used_at = models.DateTimeField(
        null=True, blank=True, help_text="When one of its decision links decided the task."
    )

    class Meta:
        app_label = "approvals"
        ordering = ["-id"]
        verbose_name = "e-mail"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="email_due",
            ),
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="held"), name="email_held_due"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to} ({self.status})"
