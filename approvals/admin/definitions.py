"""Admin: definitions edited as inlines (drafts only), validated, drawn, published, imported and
exported; instances read-only with their timeline, cancelled and reassigned through services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from approvals import selectors
from approvals.admin.base import ReadOnlyAdmin
from approvals.machine.durations import DurationError, parse_duration
from approvals.machine.expressions import ExpressionError, compile_expression
from approvals.machine.loader import dump_document
from approvals.models import (
    LIVE_TASK_STATUSES,
    AuditEvent,
    FailedAction,
    OutboxMessage,
    StateDefinition,
    Task,
    TransitionDefinition,
    Trigger,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.services.automated_steps import (
    failed_action_cancel,
    failed_action_retry,
    failed_action_skip,
    skip_choices,
)
from approvals.services.definitions import (
    definition_config,
    definition_import,
    definition_new_version,
    definition_parse,
    definition_problems,
    definition_publish,
    definition_retire,
)
from approvals.services.errors import WorkflowError
from approvals.services.instances import instance_cancel
from approvals.services.task_work import task_reassign


def _error_text(exc: WorkflowError) -> str:
    details = [m for ms in getattr(exc, "field_errors", {}).values() for m in ms]
    return "; ".join([exc.message, *details]) if details else exc.message


class TransitionForm(forms.ModelForm):
    """Checks what can be checked on one row; the whole machine is validated after saving."""

    class Meta:
        model = TransitionDefinition
        fields = (
            "position",
            "source",
            "trigger",
            "event",
            "delay",
            "target",
            "guard",
            "assign",
            "description",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        trigger = data.get("trigger")
        if trigger == Trigger.ON and not data.get("event"):
            self.add_error("event", "An 'on' transition needs an event name.")
        if trigger == Trigger.AFTER:
            try:
                parse_duration(data.get("delay") or "")
            except DurationError as exc:
                self.add_error("delay", str(exc))
        if data.get("guard"):
            try:
                compile_expression(data["guard"])
            except ExpressionError as exc:
                self.add_error("guard", str(exc))
        assign = data.get("assign") or {}
        if not isinstance(assign, dict):
            self.add_error("assign", 'Expected an object such as {"field": "expression"}.')
        else:
            for name, expression in assign.items():
                try:
                    compile_expression(str(expression))
                except ExpressionError as exc:
                    self.add_error("assign", f"{name}: {exc}")
        return data


class DraftOnlyInline(admin.TabularInline):
    extra = 0

    def _editable(self, obj: WorkflowDefinition | None) -> bool:
        return obj is None or obj.is_editable

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


class StateForm(forms.ModelForm):
    """Refuses JSON of a shape the engine cannot read, before it reaches the rows."""

    class Meta:
        model = StateDefinition
        fields = (
            "position",
            "path",
            "type",
            "initial",
            "task",
            "entry",
            "exit",
            "invoke",
            "meta",
            "description",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("task", "invoke"):
            if data.get(name) is not None and not isinstance(data[name], dict):
                self.add_error(name, "Expected an object, or empty.")
        if data.get("meta") is not None and not isinstance(data["meta"], dict):
            self.add_error("meta", "Expected an object.")
        for name in ("entry", "exit"):
            names = data.get(name) or []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                self.add_error(name, 'Expected a list of action names, e.g. ["notify"].')
        return data


class StateInline(DraftOnlyInline):
    model = StateDefinition
    form = StateForm
    fields = StateForm.Meta.fields


class TransitionInline(DraftOnlyInline):
    model = TransitionDefinition
    form = TransitionForm
    fields = TransitionForm.Meta.fields


class ImportForm(forms.Form):
    file = forms.FileField(required=False, help_text="A .yaml or .json machine config.")
    text = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 16}), help_text="…or paste it here."
    )
    publish = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("file")
        if upload:
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
            data["filename"] = upload.name
        if not data.get("text"):
            raise forms.ValidationError("Choose a file or paste a definition.")
        return data


class DefinitionForm(forms.ModelForm):
    class Meta:
        model = WorkflowDefinition
        fields = ("key", "title", "description", "initial", "form_schema", "settings")

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        draft = WorkflowDefinition.objects.filter(key=key, status="draft").first()
        if self.instance.pk is None and draft is not None:
            raise forms.ValidationError(f"{draft} already exists: edit it instead.")
        return key


@admin.register(WorkflowDefinition)
class WorkflowDefinitionAdmin(admin.ModelAdmin):
    form = DefinitionForm
    list_display = ("key", "version", "title", "status", "published_at")
    list_filter = ("status",)
    search_fields = ("key", "title")
    inlines = [StateInline, TransitionInline]
    change_form_template = "admin/approvals/workflowdefinition/change_form.html"
    change_list_template = "admin/approvals/workflowdefinition/change_list.html"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Published and retired versions are history: instances point at them.
        editable = obj is None or obj.is_editable
        return editable and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        base = ("version", "status", "published_at", "created_by", "created_at")
        if obj is not None and not obj.is_editable:
            return (*base, "key", "title", "description", "initial", "form_schema", "settings")
        if obj is not None:
            return (*base, "key")
        return base

    def save_model(
        self, request: HttpRequest, obj: WorkflowDefinition, form: Any, change: bool
    ) -> None:
        if not change:
            last = WorkflowDefinition.objects.filter(key=obj.key).order_by("-version").first()
            obj.version = (last.version + 1) if last else 1
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        problems = definition_problems(definition_config(form.instance))
        for problem in problems[:20]:
            messages.warning(request, problem)
        if problems:
            messages.warning(request, f"{len(problems)} problem(s): fix them before publishing.")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        definition = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if definition is not None:
            config = definition_config(definition)
            context["problems"] = definition_problems(config)
            context["diagram"] = _diagram(config)
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="approvals_definition_import"),
            path(
                "<int:pk>/publish/",
                wrap(require_POST(self.publish_view)),
                name="approvals_definition_publish",
            ),
            path(
                "<int:pk>/new-version/",
                wrap(require_POST(self.new_version_view)),
                name="approvals_definition_new_version",
            ),
            path(
                "<int:pk>/retire/",
                wrap(require_POST(self.retire_view)),
                name="approvals_definition_retire",
            ),
            path("<int:pk>/export/", wrap(self.export_view), name="approvals_definition_export"),
            *super().get_urls(),
        ]

    def _require(self, request: HttpRequest, perm: str) -> None:
        if not request.user.has_perm(f"approvals.{perm}_workflowdefinition"):
            raise PermissionDenied

    def _back(self, pk: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:approvals_workflowdefinition_change", args=[pk]))

    def _run(self, request: HttpRequest, pk: int, action: Any, done: str) -> HttpResponse:
        self._require(request, "change")
        get_object_or_404(WorkflowDefinition, pk=pk)
        try:
            result = action()
        except WorkflowError as exc:
            messages.error(request, _error_text(exc))
            return self._back(pk)
        messages.success(request, done.format(result))
        return self._back(result.pk)

    def publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def publish() -> WorkflowDefinition:
            return definition_publish(definition_id=pk, actor=request.user, now=timezone.now())

        return self._run(request, pk, publish, "{} published.")

    def new_version_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def new_version() -> WorkflowDefinition:
            return definition_new_version(definition_id=pk, actor=request.user)

        return self._run(request, pk, new_version, "{} created: edit it, then publish.")

    def retire_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def retire() -> WorkflowDefinition:
            return definition_retire(definition_id=pk, actor=request.user)

        return self._run(request, pk, retire, "{} retired.")

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(request, "view")
        definition = get_object_or_404(WorkflowDefinition, pk=pk)
        fmt = "json" if request.GET.get("format") == "json" else "yaml"
        body = dump_document(definition_config(definition), fmt=fmt)
        response = HttpResponse(
            body, content_type="application/json" if fmt == "json" else "application/yaml"
        )
        filename = f"{definition.key}-v{definition.version}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def import_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, "add")
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                config = definition_parse(data["text"], filename=data.get("filename", "pasted"))
                definition = definition_import(
                    config=config, actor=request.user, publish=data["publish"], now=timezone.now()
                )
            except WorkflowError as exc:
                for ms in getattr(exc, "field_errors", {}).values():
                    for message in ms:
                        form.add_error(None, message)
                if not getattr(exc, "field_errors", None):
                    form.add_error(None, exc.message)
            else:
                messages.success(request, f"Imported {definition}.")
                return self._back(definition.pk)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": "Import a workflow definition",
        }
        return TemplateResponse(request, "admin/approvals/workflowdefinition/import.html", context)


def _diagram(config: dict[str, Any]) -> str:
    """A definition's diagram; empty while a draft is too broken to draw."""
    from approvals.machine.diagram import render_svg

    try:
        return mark_safe(render_svg(config))
    except Exception:
        return ""


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=500)


class ReassignForm(forms.Form):
    to = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
        empty_label="— back to the roles' queue —",
    )


@admin.register(WorkflowInstance)
class WorkflowInstanceAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "definition", "state", "status", "requester", "created_at")
    list_filter = ("status", "definition__key")
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
                    (t, ReassignForm(prefix=f"t{t.pk}")) for t in selectors.live_tasks(instance)
                ],
                cancel_form=CancelForm(),
                diagram=selectors.diagram(instance),
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
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, "The request was cancelled.")
        return self._back(pk)

    def reassign_view(self, request: HttpRequest, pk: int, task_id: int) -> HttpResponse:
        if not Task.objects.filter(pk=task_id, instance_id=pk).exists():
            messages.error(request, "No such task on this request.")
            return self._back(pk)
        form = ReassignForm(request.POST, prefix=f"t{task_id}")
        if not form.is_valid():
            messages.error(request, "Choose an active user.")
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
            messages.error(request, _error_text(exc))
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


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "instance",
        "seq",
        "at",
        "event",
        "actor_name",
        "channel",
        "from_state",
        "to_state",
    )
    list_filter = ("channel", "event")
    search_fields = ("instance__title",)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "topic", "instance", "status", "attempts", "created_at", "last_error")
    list_filter = ("status", "topic")


# ----- failed automated steps (issue 6): the operator retries, skips or cancels


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
            messages.error(request, _error_text(exc))
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
            "The step will run again.",
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
