"""Admin for instances and tasks: read-only, with an instance's timeline and diagram; operators
cancel a request and reassign its open tasks through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.forms import PersonInput, UserField
from approvals import selectors
from approvals.admin.base import CancelForm, ReadOnlyAdmin, error_text
from approvals.models import LIVE_TASK_STATUSES, Task, WorkflowInstance
from approvals.services.errors import WorkflowError
from approvals.services.instances import instance_cancel
from approvals.services.task_work import task_reassign


class ReassignForm(forms.Form):
    """Whom a task can go to, found by name like every person box: people who can be chosen,
    and who may act on it (never the requester where the step forbids them to decide their
    own request). Left empty, the task goes back to its roles' queue."""

    to = UserField(
        required=False,
        max_length=150,
        widget=PersonInput({"placeholder": "A name, or empty: back to the roles' queue"}),
    )

    def __init__(self, *args: Any, task: Task, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.task = task

    def clean_to(self) -> Any:
        person = self.cleaned_data["to"]
        task = self.task
        if (
            person is not None
            and task.forbid_requester
            and not task.for_requester
            and person.pk == task.instance.requester_id
        ):
            raise forms.ValidationError("Choose someone who may act on this task.")
        return person


@admin.register(WorkflowInstance)
class WorkflowInstanceAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "definition", "state", "status", "requester", "created_at")
    list_filter = ("status", "definition__key", "legal_hold")
    search_fields = ("title", "business_key", "requester__username")
    list_select_related = ("definition", "requester")
    change_form_template = "admin/approvals/workflowinstance/change_form.html"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        instance = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if instance is not None:
            context.update(
                timeline=instance.audit_events.select_related("actor", "task").order_by("seq"),
                live_tasks=[
                    (t, ReassignForm(prefix=f"t{t.pk}", task=t))
                    for t in selectors.live_tasks(instance)
                ],
                cancel_form=CancelForm(),
                diagram=selectors.diagram(instance),
                steps_running=selectors.steps_in_progress(instance),
            )
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/cancel/",
                wrap(require_POST(self.cancel_view)),
                name="approvals_instance_cancel",
            ),
            path(
                "<int:pk>/tasks/<int:task_id>/reassign/",
                wrap(require_POST(self.reassign_view)),
                name="approvals_task_reassign",
            ),
            *super().get_urls(),
        ]

    def _back(self, pk: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:approvals_workflowinstance_change", args=[pk]))

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        form = CancelForm(request.POST)
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        try:
            instance_cancel(instance_id=pk, actor=request.user, reason=reason, now=timezone.now())
        except WorkflowError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, "The request was cancelled.")
        return self._back(pk)

    def reassign_view(self, request: HttpRequest, pk: int, task_id: int) -> HttpResponse:
        task = Task.objects.select_related("instance").filter(pk=task_id, instance_id=pk).first()
        if task is None:
            messages.error(request, "No such task on this request.")
            return self._back(pk)
        form = ReassignForm(request.POST, prefix=f"t{task_id}", task=task)
        if not form.is_valid():
            messages.error(request, " ".join(form.errors["to"]))
            return self._back(pk)
        to = form.cleaned_data["to"]
        try:
            task_reassign(
                task_id=task_id,
                to_user_id=to.pk if to else None,
                actor=request.user,
                now=timezone.now(),
            )
        except WorkflowError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, f"Task reassigned to {to or 'its roles queue'}.")
        return self._back(pk)


class OverdueFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "deadline"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("breached", "Breached (open and past due)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        if self.value() == "breached":
            return queryset.filter(status__in=LIVE_TASK_STATUSES, due_at__lt=timezone.now())
        return queryset


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "instance",
        "state",
        "status",
        "assignee",
        "due_at",
        "escalation_level",
        "breached_at",
    )
    list_filter = (OverdueFilter, "status", "kind")
    list_select_related = ("instance", "assignee")
