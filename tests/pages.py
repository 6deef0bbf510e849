"""Every page of the site, as the people who can see it: what the Content-Security-Policy tests
walk, with a header check (tests/workflow_app/test_csp.py) and in a real browser
(tests/browser/test_csp.py)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import User
from approvals.models import Task, WorkflowInstance
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish, review_flow
from tests.factories import GroupFactory, UserFactory


@dataclass
class Site:
    requester: User
    reviewer: User
    admin: User
    instance: WorkflowInstance
    task: Task


def site_with_a_request() -> Site:
    """The review flow published and one request waiting on the reviewer."""
    definition = publish(review_flow())
    requester = UserFactory(username="rita", first_name="Rita", last_name="Requester")
    reviewer = UserFactory(
        username="rob",
        first_name="Rob",
        last_name="Reviewer",
        groups=[GroupFactory(name="manager")],
    )
    admin_user = UserFactory(
        username="ada", first_name="Ada", last_name="Admin", is_staff=True, is_superuser=True
    )
    instance = instance_start(
        definition_key=definition.key,
        context={"title": "Laptop", "amount": 1200},
        actor=requester,
        now=NOW,
    )
    return Site(requester, reviewer, admin_user, instance, instance.tasks.get())


ANONYMOUS_PAGES = ["/accounts/login/", "/admin/login/", "/api/docs/"]


def reviewer_pages(site: Site) -> list[str]:
    return [
        *(f"/inbox/?tab={tab}" for tab in ("mine", "queue", "delegated", "overdue", "done")),
        f"/tasks/{site.task.pk}/",
        f"/requests/{site.instance.pk}/",
        "/requests/",
        "/requests/new/",
        f"/requests/new/{site.instance.definition.key}/",
        "/notifications/",
        "/accounts/profile/",
        "/accounts/password_change/",
        "/accounts/api-tokens/",
    ]


def admin_pages(site: Site) -> list[str]:
    """The admin's index, every registered model's list and add form (where adding is allowed),
    and the change forms that draw something of their own (diagram, reassign, user widgets)."""
    request = RequestFactory().get("/admin/")
    request.user = site.admin
    pages = ["/admin/", reverse("admin:approvals_definition_import")]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        if model_admin.has_add_permission(request):
            pages.append(reverse("admin:{}_{}_add".format(*info)))
    for obj in (site.instance, site.instance.definition, site.task, site.reviewer):
        info = (obj._meta.app_label, obj._meta.model_name)
        pages.append(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
    return pages
