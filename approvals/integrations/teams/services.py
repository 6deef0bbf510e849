"""Teams delivery, through the outbox's one retry implementation.

`teams_message_send` posts one stored card to its webhook (a role's channel, or the person's
own) with the one HTTP client of outgoing calls (approvals/integrations/http.py: no redirect
followed, only public addresses unless ALLOW_PRIVATE_WEBHOOK_TARGETS). HTTP 429 waits for
Teams' Retry-After and does not count as an attempt; 5xx and network errors back off; other
4xx (a deleted webhook answers 404 or 410, a malformed card 400) fail at once, for the admin
to read and send again. A task that closes gets a follow-up card on each card sent for it.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q

from approvals.integrations.http import TargetRefused, webhook_opener
from approvals.integrations.teams.cards import card, envelope
from approvals.integrations.teams.models import CLOSED_KIND, TeamsMessage, TeamsStatus
from approvals.models import NotificationKind
from approvals.outbox import retry
from approvals.outbox.dispatch import queue_after_commit

logger = logging.getLogger(__name__)

SEND_TASK = "approvals.tasks.teams_send"
LEASE = timedelta(minutes=5)
BACKOFF = retry.Backoff(base=10, factor=2, cap=3600, jitter=True)
DEFAULT_RETRY_AFTER = 30
MAX_RETRY_AFTER = 3600

TEAMS_MESSAGES = retry.register(
    retry.RetryQueue(
        name="teams",
        model=TeamsMessage,
        task=SEND_TASK,
        live=Q(status__in=[TeamsStatus.PENDING, TeamsStatus.SENDING]),
        due_field="next_attempt_at",
        lease=LEASE.total_seconds,
        on_claim=lambda now: {"status": TeamsStatus.SENDING, "claimed_at": now},
    )
)


ACTING_KINDS = frozenset(
    {
        NotificationKind.TASK_NEW,
        NotificationKind.TASK_DELEGATED,
        NotificationKind.REMINDER,
        NotificationKind.ESCALATION,
    }
)


def task_kind(message: TeamsMessage) -> bool:
    return message.kind in ACTING_KINDS


def webhook_for(message: TeamsMessage) -> str:
    if message.role_id is not None:
        role = getattr(message.role, "role", None)
        return role.teams_webhook_url if role else ""
    return message.recipient.teams_webhook_url if message.recipient else ""


def retry_after(headers: object) -> float:
    value = getattr(headers, "get", lambda _: None)("Retry-After")
    try:
        return float(min(max(1, int(value)), MAX_RETRY_AFTER))
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER


def teams_message_send(*, message_id: int, now: datetime) -> float | None:
    """Post one card. Returns the seconds before the next try, or None when there is nothing
    more to do (sent, failed for good, skipped, or another worker has it)."""
    if not TEAMS_MESSAGES.claim(message_id, now=now):
        return None
    message = TeamsMessage.objects.select_related(
        "recipient",
        "role__role",
        "task__instance__definition",
        "instance__definition",
        "instance__requester",
        "follows",
    ).get(pk=message_id)
    task = message.task
    if message.kind != CLOSED_KIND and task is not None and not task.is_live and task_kind(message):
        # Its task closed before the card could go: a card asking to act would be stale.
        _finish(message, TeamsStatus.SKIPPED, error="the task closed before the card was sent")
        return None
    url = webhook_for(message)
    if not url:
        _finish(message, TeamsStatus.SKIPPED, error="no Teams webhook for this person or role")
        return None
    body = json.dumps(envelope(card(message))).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    opener = webhook_opener(allow_private=settings.ALLOW_PRIVATE_WEBHOOK_TARGETS)
    delay: float | None = None
    try:
        with opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            response.read(1024)
        message.sent_at = now
        _finish(message, TeamsStatus.SENT, error="")
        return None
    except urllib.error.HTTPError as exc:
        error = f"Teams answered HTTP {exc.code} {exc.reason}"
        if exc.code == 429:
            delay = retry_after(exc.headers)
            # Teams said when: a rate limit is not a failed attempt.
            TeamsMessage.objects.filter(pk=message.pk).update(attempts=F("attempts") - 1)
            message.attempts -= 1
        elif exc.code >= 500:
            delay = BACKOFF.seconds(message.attempts)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TargetRefused):
            # Not an outage: no retry makes a private address public.
            error = f"refused: {reason}"
        else:
            error = f"could not reach Teams: {reason}"
            delay = BACKOFF.seconds(message.attempts)
    if delay is None or message.attempts >= settings.TEAMS_MAX_ATTEMPTS:
        _finish(message, TeamsStatus.FAILED, error=error)
        logger.warning("Teams message %s failed for good: %s", message.pk, error)
        return None
    TEAMS_MESSAGES.retry_later(
        message.pk, now=now, delay=delay, status=TeamsStatus.PENDING, last_error=error[:2000]
    )
    return delay


def _finish(message: TeamsMessage, status: str, *, error: str) -> None:
    message.status = status
    message.last_error = error[:2000]
    message.save(update_fields=["status", "last_error", "sent_at"])


def teams_message_retry(*, ids: list[int], now: datetime) -> int:
    """An admin sends failed cards again (after fixing a webhook)."""
    changed = list(
        TeamsMessage.objects.filter(pk__in=ids, status=TeamsStatus.FAILED).values_list(
            "pk", flat=True
        )
    )
    TeamsMessage.objects.filter(pk__in=changed).update(
        status=TeamsStatus.PENDING, attempts=0, next_attempt_at=now, last_error=""
    )
    queue_after_commit(SEND_TASK, [(pk,) for pk in changed])
    return len(changed)
