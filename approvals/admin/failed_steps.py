"""Admin for automated steps that failed their last attempt: the operator retries the step, skips
it (continuing with an event of the operator's choice) or cancels the request."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from approvals.admin.base import CancelForm, ReadOnlyAdmin, error_text
from approvals.models import LIVE_TASK_STATUSES, FailedAction
from approvals.selectors import step_attempts
from approvals.services.automated_steps import (
    failed_action_cancel,
    failed_action_retry,
    failed_action_skip,
    skip_choices,
)
from approvals.services.errors import WorkflowError


class RetryForm(forms.Form):
    comment = forms.CharField(max_length=500, required=False)


class SkipForm(forms.Form):
    event = forms.ChoiceField(label="Continue with", choices=())
    comment = forms.CharField(max_length=500, required=False)

    def __init__(self, *args: Any, choices: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = {"onDone": "onDone (as if it had succeeded)"}
        self.fields["event"].choices = [(c, labels.get(c, c)) for c in choices]


class OpenFailureFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "open"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Waiting for an operator"), ("no", "Handled")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[FailedAction]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(task__status__in=LIVE_TASK_STATUSES)
        if self.value() == "no":
            return queryset.exclude(task__status__in=LIVE_TASK_STATUSES)
        return queryset


@admin.register(FailedAction)
class FailedActionAdmin(ReadOnlyAdmin):
    list_display = ("id", "instance", "state", "src", "attempts", "failed_at", "resolution")
    list_filter = (OpenFailureFilter, "src", "resolution")
    list_select_related = ("instance",)
    search_fields = ("instance__title", "error")
    change_form_template = "admin/approvals/failedaction/change_form.html"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        failure = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if failure is not None:
            context.update(
                open=failure.task.is_live,
                retry_form=RetryForm(),
                skip_form=SkipForm(choices=skip_choices(failure)),
                cancel_form=CancelForm(),
                attempts=step_attempts(failure),
            )
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                f"<int:pk>/{name}/",
                wrap(require_POST(getattr(self, f"{name}_view"))),
                name=f"approvals_failedaction_{name}",
            )
            for name in ("retry", "skip", "cancel")
        ] + super().get_urls()

    def _handle(self, request: HttpRequest, pk: int, call: Any, done: str) -> HttpResponse:
        failure = get_object_or_404(FailedAction, pk=pk)
        try:
            call(failure)
        except WorkflowError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, done)
        return HttpResponseRedirect(reverse("admin:approvals_failedaction_change", args=[pk]))

    def retry_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        form = RetryForm(request.POST)
        comment = form.cleaned_data["comment"] if form.is_valid() else ""
        return self._handle(
            request,
            pk,
            lambda f: failed_action_retry(
                task_id=f.task_id,
                actor=request.user,
                now=timezone.now(),
                comment=comment,
                channel="admin",
            ),
            "The step runs once more (one attempt); its outcome shows on the request.",
        )

    def skip_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def skip(failure: FailedAction) -> None:
            form = SkipForm(request.POST, choices=skip_choices(failure))
            if not form.is_valid():
                raise WorkflowError("choose how to continue")
            failed_action_skip(
                task_id=failure.task_id,
                event=form.cleaned_data["event"],
                actor=request.user,
                now=timezone.now(),
                comment=form.cleaned_data["comment"],
                channel="admin",
            )

        return self._handle(request, pk, skip, "The step was skipped.")

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        form = CancelForm(request.POST)
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        return self._handle(
            request,
            pk,
            lambda f: failed_action_cancel(
                task_id=f.task_id,
                actor=request.user,
                reason=reason,
                now=timezone.now(),
                channel="admin",
            ),
            "The request was cancelled.",
        )
