"""The request the e-mail tests send about, and sending what is due as a worker would."""

from __future__ import annotations

from datetime import UTC, datetime

from approvals.integrations.email.models import EmailStatus, OutgoingEmail
from approvals.integrations.email.services import email_messages_send
from tests.approvals.flows import review_flow

# A Wednesday: a two-day SLA is due on Friday 4 December.
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def desk_flow() -> dict:
    flow = review_flow(sla="P2D")
    flow["form"]["properties"]["currency"] = {"type": "string", "enum": ["EUR", "USD"]}
    return flow


def send_all(now: datetime = NOW) -> dict[int, float | None]:
    ids = list(
        OutgoingEmail.objects.filter(status=EmailStatus.PENDING).values_list("pk", flat=True)
    )
    return email_messages_send(ids=ids, now=now)
