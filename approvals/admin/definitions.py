"""Admin for workflow definitions: edited as inlines (drafts only), validated, drawn, published,
imported and exported."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from approvals.admin.base import DEFINITION_JSON, error_text
from approvals.machine.durations import DurationError, parse_duration
from approvals.machine.expressions import ExpressionError, check_expression
from approvals.machine.loader import dump_document
from approvals.models import StateDefinition, TransitionDefinition, Trigger, WorkflowDefinition
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
                check_expression(data["guard"])
            except ExpressionError as exc:
                self.add_error("guard", str(exc))
        assign = data.get("assign") or {}
        if not isinstance(assign, dict):
            self.add_error("assign", 'Expected an object such as {"field": "expression"}.')
        else:
            for name, expression in assign.items():
                try:
                    check_expression(str(expression))
                except ExpressionError as exc:
                    self.add_error("assign", f"{name}: {exc}")
        return data


class DraftOnlyInline(admin.TabularInline):
    extra = 0
    formfield_overrides = DEFINITION_JSON

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
        fields = (
            "key",
            "title",
            "description",
            "initial",
            "form_schema",
            "inbox_columns",
            "settings",
        )

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        draft = WorkflowDefinition.objects.filter(key=key, status="draft").first()
        if self.instance.pk is None and draft is not None:
            raise forms.ValidationError(f"{draft} already exists: edit it instead.")
        return key


@admin.register(WorkflowDefinition)
class WorkflowDefinitionAdmin(admin.ModelAdmin):
    form = DefinitionForm
    formfield_overrides = DEFINITION_JSON
    list_display = ("key", "version", "name", "status", "published_at")
    list_filter = ("status",)
    search_fields = ("key", "title")
    inlines = [StateInline, TransitionInline]
    change_form_template = "admin/approvals/workflowdefinition/change_form.html"
    change_list_template = "admin/approvals/workflowdefinition/change_list.html"

    @admin.display(description="Name", ordering="title")
    def name(self, obj: WorkflowDefinition) -> str:
        return obj.name

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Published and retired versions are history: instances point at them.
        editable = obj is None or obj.is_editable
        return editable and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        base = ("version", "status", "published_at", "created_by", "created_at")
        if obj is not None and not obj.is_editable:
            return (
                *base,
                "key",
                "title",
                "description",
                "initial",
                "form_schema",
                "inbox_columns",
                "settings",
            )
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
            messages.error(request, error_text(exc))
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
