"""Slack delivery and Slack decisions.

Delivery: `slack_message_send` posts one stored SlackMessage (written with its notification in
the transaction of the change) and says when to try again: after Slack's `Retry-After` on 429,
with exponential backoff on other passing failures, never for a permanent error. The outcome,
and the last error, stay on the row (admin: Approvals > Slack messages). Nothing here runs
inside a workflow transaction, so a Slack outage never blocks or rolls back a transition.

Decisions: `slack_interaction_decide` records the interaction under Slack's own identity of the
click (unique), so a retried or replayed payload does nothing twice, maps the Slack member to
our user and calls `task_decide` with channel "slack": the same service and permission rules as
the web. Its answer updates the Slack message through the interaction's response_url.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.error import URLError

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from approvals import metrics
from approvals.integrations.slack.blocks import message_blocks, outcome_blocks
from approvals.integrations.slack.client import (
    enabled,
    miss_key,
    slack_id_for,
    user_for_slack_id,
    web_client,
)
from approvals.models import Channel, SlackInteraction, SlackMessage, SlackMessageStatus, Task
from approvals.outbox import retry
from approvals.outbox.dispatch import queue_after_commit
from approvals.services.errors import InvalidInput, WorkflowError
from approvals.services.task_work import task_decide

logger = logging.getLogger(__name__)

# A message left "sending" this long by a crashed worker is tried again.
STALE_SENDING = timedelta(minutes=5)
BACKOFF_BASE_SECONDS = 10
BACKOFF_MAX_SECONDS = 3600
DEFAULT_RETRY_AFTER = 30
# Errors that no retry can fix: record them and stop.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "user_not_found",
        "user_disabled",
        "invalid_blocks",
        "msg_too_long",
        "missing_scope",
        "cannot_dm_bot",
    }
)


BACKOFF = retry.Backoff(base=BACKOFF_BASE_SECONDS, factor=2, cap=BACKOFF_MAX_SECONDS)
SLACK_MESSAGES = retry.register(
    retry.RetryQueue(
        name="slack",
        model=SlackMessage,
        task="approvals.tasks.slack_send",
        # A message being sent whose lease ran out was left by a crashed worker.
        live=Q(status__in=[SlackMessageStatus.PENDING, SlackMessageStatus.SENDING]),
        due_field="next_attempt_at",
        lease=STALE_SENDING.total_seconds,
        on_claim=lambda now: {"status": SlackMessageStatus.SENDING, "claimed_at": now},
    )
)


def retry_after(exc: SlackApiError) -> int:
    headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER


def slack_message_send(*, message_id: int, now: datetime) -> float | None:
    """Post one message. Returns the seconds to wait before the next try, or None when there is
    nothing more to do (sent, failed for good, skipped, or another worker has it)."""
    if not SLACK_MESSAGES.claim(message_id, now=now):
        return None
    message = SlackMessage.objects.select_related(
        "recipient",
        "role__role",
        "task__instance__definition",
        "instance__definition",
        "instance__requester",
    ).get(pk=message_id)
    client = web_client()
    delay: float | None = None
    error = ""
    try:
        channel = _channel_for(message, client)
        if not channel:
            _finish(message, SlackMessageStatus.SKIPPED, error="no Slack account for this user")
            return None
        text, blocks = message_blocks(message)
        response = client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )
        message.channel_id = response.get("channel", channel)
        message.ts = response.get("ts", "")
        message.sent_at = now
        _finish(message, SlackMessageStatus.SENT, error="")
        return None
    except SlackApiError as exc:
        code = exc.response.get("error") or f"HTTP {exc.response.status_code}"
        error = f"Slack answered {code}"
        if exc.response.status_code == 429:
            delay = retry_after(exc)
            # Slack said when: a rate limit is not a failed attempt.
            SlackMessage.objects.filter(pk=message.pk).update(attempts=F("attempts") - 1)
            message.attempts -= 1
        elif code not in PERMANENT_ERRORS:
            delay = BACKOFF.seconds(message.attempts)
    except (SlackClientError, URLError, OSError, ValueError) as exc:
        error = f"could not reach Slack: {exc}"
        delay = BACKOFF.seconds(message.attempts)
    if delay is None or message.attempts >= settings.SLACK_MAX_ATTEMPTS:
        _finish(message, SlackMessageStatus.FAILED, error=error)
        logger.warning("Slack message %s failed for good: %s", message.pk, error)
        return None
    SLACK_MESSAGES.retry_later(
        message.pk, now=now, delay=delay, status=SlackMessageStatus.PENDING, last_error=error[:2000]
    )
    return delay


def _channel_for(message: SlackMessage, client: Any) -> str | None:
    if message.role_id is not None:
        role = getattr(message.role, "role", None)
        return role.slack_channel if role and role.slack_channel else None
    return slack_id_for(message.recipient, client)


def _finish(message: SlackMessage, status: str, *, error: str) -> None:
    message.status = status
    message.last_error = error[:2000]
    message.save(update_fields=["status", "last_error", "channel_id", "ts", "sent_at"])
    if status == SlackMessageStatus.FAILED:
        metrics.delivery_failed("slack")


# ----- decisions from Slack


def slack_interaction_decide(
    *,
    key: str,
    slack_user_id: str,
    task_id: int | None,
    event: str,
    comment: str = "",
    response_url: str = "",
    original_blocks: list[dict[str, Any]] | None = None,
    now: datetime,
) -> SlackInteraction | None:
    """Decide a task for the Slack member who pressed a button. None when this interaction was
    already received (Slack's retry or a replay): nothing is done again."""
    known_task = task_id is not None and Task.objects.filter(pk=task_id).exists()
    try:
        with transaction.atomic():
            interaction = SlackInteraction.objects.create(
                key=key[:200],
                slack_user_id=slack_user_id[:32],
                task_id=task_id if known_task else None,
                event=event[:100],
                response_url=response_url[:500],
                received_at=now,
            )
    except IntegrityError:
        return None
    user = user_for_slack_id(slack_user_id, web_client(timeout=2))
    interaction.user = user
    if user is None:
        interaction.outcome = "refused"
        interaction.detail = (
            "Your Slack account is not linked to a Signoff user: ask an admin to set your Slack "
            "member id, or use the same e-mail address in both."
        )
    elif not known_task:
        interaction.outcome = "refused"
        interaction.detail = "No such task."
    else:
        try:
            result = task_decide(
                task_id=task_id,
                event=event,
                actor=user,
                now=now,
                comment=comment,
                channel=Channel.SLACK,
            )
        except InvalidInput as exc:
            interaction.outcome = "refused"
            details = [m for messages in exc.field_errors.values() for m in messages]
            interaction.detail = " ".join([exc.message.capitalize() + ".", *details])
        except WorkflowError as exc:
            interaction.outcome = "refused"
            interaction.detail = exc.message[:1].upper() + exc.message[1:] + "."
        else:
            interaction.outcome = "done"
            from approvals.integrations.slack.blocks import event_label

            interaction.detail = (
                f"{event_label(event)} by {user} at {now:%Y-%m-%d %H:%M} UTC, from Slack."
                + ("" if result.moved else " Other approvals are still needed.")
            )
    interaction.answered_at = now
    interaction.save(update_fields=["user", "outcome", "detail", "answered_at"])
    if interaction.response_url:
        queue_after_commit(
            "approvals.tasks.slack_respond", [(interaction.pk, original_blocks or [])]
        )
    return interaction


def slack_interaction_answer(*, interaction_id: int, blocks: list[dict[str, Any]] | None) -> bool:
    """Show the outcome in the Slack message the button was in (via its response_url)."""
    interaction = SlackInteraction.objects.filter(pk=interaction_id).first()
    if interaction is None or not interaction.response_url:
        return True
    ok = interaction.outcome == "done"
    if ok:
        body: dict[str, Any] = {
            "replace_original": True,
            "text": interaction.detail,
            "blocks": outcome_blocks(blocks, text=interaction.detail, ok=True),
        }
    else:
        # A refusal leaves the buttons where they are and tells only the one who pressed.
        body = {"replace_original": False, "response_type": "ephemeral", "text": interaction.detail}
    try:
        response = WebhookClient(interaction.response_url, timeout=10).send_dict(body)
    except (URLError, OSError) as exc:
        logger.warning("response_url for interaction %s failed: %s", interaction.pk, exc)
        return False
    return response.status_code < 500 and response.status_code != 429


def slack_message_retry(*, ids: list[int], now: datetime) -> int:
    """An admin sends failed messages again (after fixing a token, a channel...)."""
    changed = list(
        SlackMessage.objects.filter(pk__in=ids, status=SlackMessageStatus.FAILED).values_list(
            "pk", flat=True
        )
    )
    SlackMessage.objects.filter(pk__in=changed).update(
        status=SlackMessageStatus.PENDING, attempts=0, next_attempt_at=now
    )
    queue_after_commit(SLACK_MESSAGES.task, [(message_id,) for message_id in changed])
    return len(changed)


def slack_messages_refresh(*, instance_id: int, now: datetime) -> float | None:
    """Update the sent messages of a request's closed tasks: content without buttons, and who
    decided (or why the task closed). Returns seconds to wait after a 429, else None."""
    from approvals.services.task_work import describe_closed

    pending = SlackMessage.objects.filter(
        instance_id=instance_id, closed_shown_at__isnull=True, ts__gt=""
    ).select_related("task__instance__definition", "instance__definition", "instance__requester")
    client = web_client()
    for message in pending:
        if message.task is None or message.task.is_live:
            continue
        note = describe_closed(message.task)
        text, blocks = message_blocks(message)
        blocks = outcome_blocks(blocks, text=note[:1].upper() + note[1:], ok=True)
        try:
            client.chat_update(channel=message.channel_id, ts=message.ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                return retry_after(exc)
            logger.warning("chat.update of %s failed: %s", message.pk, exc.response.get("error"))
        except (SlackClientError, URLError, OSError) as exc:
            logger.warning("chat.update of %s failed: %s", message.pk, exc)
            return BACKOFF.seconds(1)
        SlackMessage.objects.filter(pk=message.pk).update(closed_shown_at=now)
    return None


def slack_identity_link(*, actor: Any) -> str:
    """Link the actor to the Slack member with their e-mail (users.lookupByEmail); their Slack
    member id is never typed in, so nobody can claim someone else's. Returns the id.

    Slack is asked before the transaction: no row is locked while it answers."""
    if not enabled():
        raise InvalidInput("Slack is not configured", {"slack": ["Slack is not set up here."]})
    if not actor.email:
        raise InvalidInput(
            "no e-mail to match", {"slack": ["Your account has no e-mail address to match."]}
        )
    try:
        response = web_client(timeout=5).users_lookupByEmail(email=actor.email)
        slack_id = (response.get("user") or {}).get("id") or ""
    except SlackApiError as exc:
        if exc.response.get("error") != "users_not_found":
            raise InvalidInput(
                "Slack refused the lookup",
                {
                    "slack": [
                        f"Slack answered {exc.response.get('error') or 'an error'}; try later."
                    ]
                },
            ) from None
        slack_id = ""
    except SlackClientError:
        raise InvalidInput(
            "Slack cannot be reached", {"slack": ["Slack cannot be reached; try later."]}
        ) from None
    if not slack_id:
        raise InvalidInput(
            "no Slack member has that e-mail",
            {"slack": [f"No Slack member has the e-mail {actor.email}."]},
        )
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=actor.pk)
        if User.objects.filter(slack_user_id=slack_id).exclude(pk=user.pk).exists():
            raise InvalidInput(
                "linked to someone else",
                {"slack": ["That Slack member is linked to another user."]},
            )
        user.slack_user_id = slack_id
        user.save(update_fields=["slack_user_id"])
    cache.delete(miss_key(actor.email))
    return slack_id


def slack_identity_unlink(*, actor: Any) -> None:
    get_user_model().objects.filter(pk=actor.pk).update(slack_user_id="")
