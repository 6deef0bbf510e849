"""Demo data for the engine: the shipped example definitions, and the operator's powers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from approvals.models import WorkflowDefinition
from approvals.services.definitions import definition_import, definition_parse

EXAMPLES_DIR = Path(__file__).resolve().parent / "workflows"
OPERATOR_PERMISSIONS = ("cancel_instance", "reassign_task", "send_event", "view_workflowinstance")


def example_files() -> list[Path]:
    return sorted([*EXAMPLES_DIR.glob("*.yaml"), *EXAMPLES_DIR.glob("*.json")])


def ensure_demo_workflows() -> list[WorkflowDefinition]:
    """Publish every shipped example (a no-op for those already published as they are)."""
    operator, _ = Group.objects.get_or_create(name="operator")
    operator.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="approvals", codename__in=OPERATOR_PERMISSIONS
        )
    )
    definitions = [
        definition_import(
            config=definition_parse(path.read_text(), filename=path.name),
            actor=None,
            publish=True,
            now=timezone.now(),
        )
        for path in example_files()
    ]
    ensure_demo_requests()
    return definitions


# (requester, workflow, business key, context, then decisions as (username, event, comment))
DEMO_REQUESTS: tuple[
    tuple[str, str, str, dict[str, Any], tuple[tuple[str, str, str], ...]], ...
] = (
    (
        "alice",
        "purchase-order",
        "PO-2026-0101",
        {
            "title": "Standing desks for the design team",
            "amount": 4200,
            "currency": "EUR",
            "justification": "Six desks; the team asked after the ergonomics review.",
            "vendor": "Deskly",
        },
        (),
    ),
    (
        "alice",
        "purchase-order",
        "PO-2026-0102",
        {
            "title": "New CI build server",
            "amount": 24000,
            "currency": "EUR",
            "justification": "Builds take 40 minutes on the old machine.",
            "vendor": "Rackhouse",
        },
        (("bob", "APPROVE", "Worth it; builds block everyone."),),
    ),
    (
        "alice",
        "purchase-order",
        "PO-2026-0103",
        {
            "title": "Conference tickets: DjangoCon Europe",
            "amount": 1800,
            "currency": "EUR",
            "justification": "Two tickets for the backend team.",
        },
        (("carol", "REQUEST_CHANGES", "Which two people? Add the names and the travel costs."),),
    ),
    (
        "bob",
        "purchase-order",
        "PO-2026-0104",
        {
            "title": "Team lunch after the release",
            "amount": 240,
            "currency": "EUR",
            "justification": "Twelve people, one restaurant.",
        },
        (),
    ),
    (
        "alice",
        "access-request",
        "",
        {
            "system": "github",
            "access_level": "write",
            "reason": "I am joining the platform team next week.",
            "until": "2027-06-30",
        },
        (),
    ),
    (
        "alice",
        "supplier-onboarding",
        "",
        # The bank account is a sensitive field: encrypted in the database, masked in e-mail.
        {"supplier": "Deskly", "country": "DE", "iban": "DE89370400440532013000"},
        (),
    ),
    (
        "bob",
        "purchase-order",
        "PO-2026-0105",
        {
            "title": "Replacement laptop charger",
            "amount": 60,
            "currency": "EUR",
            "justification": "Mine broke.",
        },
        (("erin", "APPROVE", ""),),
    ),
    (
        "bob",
        "access-request",
        "",
        {
            "system": "aws",
            "access_level": "admin",
            "reason": "On call for the billing service from next month.",
            "until": "2027-03-31",
        },
        (),
    ),
    (
        "carol",
        "access-request",
        "",
        {
            "system": "github",
            "access_level": "read",
            "reason": "Reviewing the platform team's pull requests.",
            "until": "2027-01-31",
        },
        (),
    ),
    (
        "dave",
        "order-fulfillment",
        "SO-88412",
        {"customer": "Brasserie Lumière", "items": 12, "address": "4 rue du Port, Nantes"},
        (),
    ),
)


def ensure_demo_requests() -> int:
    """A few requests in several states so the inbox has something to show; only into an
    empty database, so running the seed again changes nothing."""
    from approvals.models import WorkflowInstance
    from approvals.services.instances import instance_start
    from approvals.services.task_work import task_decide

    if WorkflowInstance.objects.exists():
        return 0
    users = {user.username: user for user in get_user_model().objects.all()}
    for requester, key, business_key, context, decisions in DEMO_REQUESTS:
        if requester not in users:
            continue
        instance = instance_start(
            definition_key=key,
            context=context,
            business_key=business_key,
            actor=users[requester],
            now=timezone.now(),
        )
        for username, event, comment in decisions:
            task = instance.tasks.filter(status__in=["open", "claimed"]).first()
            task_decide(
                task_id=task.pk,
                event=event,
                comment=comment,
                actor=users[username],
                now=timezone.now(),
            )
    return len(DEMO_REQUESTS)
