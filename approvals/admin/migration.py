"""The admin's migration of running requests: on a definition version's page, pick the version
to move its active requests to and the mapping of states, see the plan per request (a dry run,
nothing written), then migrate. The same service calls as `manage.py migrate_instances`."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone

from approvals.admin.base import error_text
from approvals.models import Channel, DefinitionStatus, WorkflowDefinition
from approvals.services.errors import WorkflowError
from approvals.services.migration import (
    migration_plan,
    migration_prepare,
    migration_run,
    parse_mapping,
)

# Migrating changes running requests as well as reading definitions.
PERMISSIONS = ("approvals.change_workflowdefinition", "approvals.change_workflowinstance")


class MigrateForm(forms.Form):
    to_version = forms.TypedChoiceField(coerce=int, label="Move the active requests to")
    mapping = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="One old_state=new_state per line; a state kept by name needs none.",
    )
    only = forms.CharField(
        required=False, help_text="Only these request ids, separated by commas (empty: all)."
    )
    recompute_sla = forms.BooleanField(
        required=False,
        label="Recompute due dates",
        help_text="Kept tasks get the new version's SLA, counted from when theirs started.",
    )

    def __init__(self, *args: Any, source: WorkflowDefinition, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        targets = WorkflowDefinition.objects.filter(
            key=source.key, status=DefinitionStatus.PUBLISHED
        ).exclude(pk=source.pk)
        self.fields["to_version"].choices = [(d.version, str(d)) for d in targets]

    def clean_mapping(self) -> dict[str, str]:
        lines = [line for line in self.cleaned_data["mapping"].splitlines() if line.strip()]
        try:
            return parse_mapping(lines)
        except WorkflowError as exc:
            raise forms.ValidationError(error_text(exc)) from None

    def clean_only(self) -> list[int] | None:
        value = self.cleaned_data["only"].strip()
        if not value:
            return None
        try:
            return [int(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError("Give request ids separated by commas.") from None


def migrate_view(model_admin: Any, request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.has_perms(PERMISSIONS):
        raise PermissionDenied
    source = get_object_or_404(WorkflowDefinition, pk=pk)
    form = MigrateForm(request.POST or None, source=source)
    plans: list[Any] = []
    result = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            migration = migration_prepare(
                key=source.key,
                from_version=source.version,
                to_version=data["to_version"],
                mapping=data["mapping"],
                only=data["only"],
                recompute_sla=data["recompute_sla"],
            )
            if "migrate" in request.POST:
                result = migration_run(
                    migration, actor=request.user, now=timezone.now(), channel=Channel.ADMIN
                )
                messages.success(
                    request,
                    f"{len(result.migrated)} request(s) migrated from {migration.words}, "
                    f"{len(result.refused)} left as they are.",
                )
            else:
                plans = migration_plan(migration, now=timezone.now())
        except WorkflowError as exc:
            form.add_error(None, error_text(exc))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": source,
        "title": f"Migrate the requests of {source}",
        "form": form,
        "plans": plans,
        "dry_run": request.method == "POST" and not result and form.is_valid(),
        "result": result,
        "active": source.instances.filter(status="active").count(),
    }
    return TemplateResponse(request, "admin/approvals/workflowdefinition/migrate.html", context)
