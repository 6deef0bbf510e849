"""Celery tasks: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals.services.heartbeat import heartbeat_record


@shared_task(name="approvals.tasks.record_heartbeat")
def record_heartbeat(source: str = "beat") -> None:
    heartbeat_record(source=source, now=timezone.now())


# ----- Slack (issue 5): delivery with retries, answers to button presses


@shared_task(name="approvals.tasks.slack_send", bind=True, max_retries=None)
def slack_send(self, message_id: int) -> None:
    from approvals.services.slack import slack_message_send

    delay = slack_message_send(message_id=message_id, now=timezone.now())
    if delay is not None:
        # Slack's Retry-After, or the backoff; the sweep below catches it if this is lost.
        raise self.retry(countdown=delay)


@shared_task(name="approvals.tasks.slack_send_many")
def slack_send_many(message_ids: list[int]) -> None:
    for message_id in message_ids:
        slack_send.delay(message_id)


@shared_task(name="approvals.tasks.slack_sweep")
def slack_sweep() -> None:
    """Messages whose task was lost (broker restart, a worker killed mid-send) go again."""
    from approvals.services.slack import slack_due

    for message_id in slack_due(now=timezone.now()):
        slack_send.delay(message_id)


@shared_task(name="approvals.tasks.slack_respond", bind=True, max_retries=5)
def slack_respond(self, interaction_id: int, blocks: list | None = None) -> None:
    from approvals.services.slack import slack_interaction_answer

    if not slack_interaction_answer(interaction_id=interaction_id, blocks=blocks):
        raise self.retry(countdown=2 ** (self.request.retries + 1))


@shared_task(name="approvals.tasks.slack_refresh", bind=True, max_retries=5)
def slack_refresh(self, instance_id: int) -> None:
    """A request's tasks closed: their Slack messages lose the buttons that no longer apply."""
    from approvals.services.slack import slack_messages_refresh

    delay = slack_messages_refresh(instance_id=instance_id, now=timezone.now())
    if delay is not None:
        raise self.retry(countdown=delay)


# ----- SLA sweep and automated steps (issue 6)


@shared_task(name="approvals.tasks.sla_sweep", ignore_result=True)
def sla_sweep() -> dict[str, int]:
    """Beat sends this every SLA_SWEEP_SECONDS; concurrent sweeps are safe (SKIP LOCKED)."""
    from approvals.services.sla import sla_sweep as sweep

    return sweep(now=timezone.now()).as_dict()


@shared_task(
    name="approvals.tasks.run_action",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_action(message_id: int) -> str:
    """One attempt of an automated step. A worker killed mid-step gets the message again
    (acks_late); the step's outbox row decides whether anything is still to do."""
    from approvals.services.actions import action_execute

    return action_execute(message_id=message_id)


# ----- outgoing webhooks and API housekeeping (issue 7)


@shared_task(name="approvals.tasks.deliver_webhook")
def deliver_webhook(delivery_id: int, attempt: int) -> None:
    from approvals.services.webhooks import webhook_attempt

    webhook_attempt(delivery_id=delivery_id, attempt=attempt, now=timezone.now())


@shared_task(name="approvals.tasks.sweep_webhooks")
def sweep_webhooks() -> int:
    """Beat: hand out deliveries whose next attempt is due (retries, lost dispatches)."""
    from approvals.services.webhooks import dispatch, webhook_due

    due = webhook_due(now=timezone.now())
    dispatch(due)
    return len(due)


@shared_task(name="approvals.tasks.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    from approvals.api.idempotency import purge_expired

    return purge_expired(now=timezone.now())
