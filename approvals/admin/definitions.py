"""Admin for workflow definitions: edited as inlines (drafts only), validated, drawn, published,
imported and exported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from approvals.admin.base import DEFINITION_JSON, error_text
from approvals.admin.definition_fields import DurationField, GuardInput, OptionalJSONField
from approvals.admin.migration import migrate_view
from approvals.machine.config import context_fields, form_samples, task_rule
from approvals.machine.diff import definition_diff, mark_diagram
from approvals.machine.durations import DurationError, parse_duration, parse_period
from approvals.machine.expressions import ExpressionError, check_expression, guard_problem
from approvals.machine.loader import DefinitionError, dump_document, load_document
from approvals.machine.schedules import cron_problem, tz_problem
from approvals.machine.validation import TASK_KEYS
from approvals.machine.warnings import publish_warnings
from approvals.models import (
    DefinitionStatus,
    Schedule,
    StateDefinition,
    TransitionDefinition,
    Trigger,
    WorkflowDefinition,
)
from approvals.services.definitions import (
    RETENTION,
    SCENARIOS,
    definition_config,
    definition_import,
    definition_new_version,
    definition_parse,
    definition_problems,
    definition_publish,
    definition_retire,
    definition_scenarios,
    publish_problems,
)
from approvals.services.errors import WorkflowError


class TransitionForm(forms.ModelForm):
    """An arrow: from which step, on what, to which step (chosen from the definition's), with
    its guard checked as it is typed and the guard's meaning in words beside it. What can be
    checked on one row is checked here; the whole machine is validated after saving."""

    # Set per page by TransitionInline.get_formset: the definition and its steps' paths.
    definition: WorkflowDefinition | None = None
    state_paths: tuple[str, ...] = ()

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
            "description",
            "assign",
        )
        widgets = {
            "position": forms.NumberInput(attrs={"class": "position-input"}),
            "event": forms.TextInput(attrs={"size": 14}),
            "delay": forms.TextInput(attrs={"size": 7}),
            "description": forms.TextInput(attrs={"size": 22, "maxlength": 500}),
            "assign": forms.Textarea(attrs={"rows": 1, "cols": 18}),
        }
        labels = {"description": "Guard in words", "target": "Goes to", "source": "From"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        definition, paths = self.definition, list(self.state_paths)
        if paths:
            self.fields["source"].widget = forms.Select(
                choices=_choices(paths, self.instance.source)
            )
            names = sorted({p.rpartition(".")[2] for p in paths})
            self.fields["target"].widget = forms.Select(
                choices=[("", "(stays in its step)"), *_choices(names, self.instance.target)]
            )
        check_url = (
            reverse("admin:approvals_definition_check_guard", args=[definition.pk])
            if definition is not None
            else None
        )
        self.fields["guard"].widget = GuardInput(check_url=check_url)

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


class DraftOnlyInline(admin.options.InlineModelAdmin):
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


RULES = (
    ("any", "any: the first approval decides"),
    ("all", "all: one approval from each listed role"),
    ("quorum", "quorum: N people must approve"),
    ("everyone", "everyone: every member of the roles must approve"),
)


class StateForm(forms.ModelForm):
    """A step, with its task as fields: roles from the installation's, a rule, durations with
    a unit, reminders and escalation levels in order. JSON of a shape the engine cannot read is
    refused before it reaches the rows."""

    # Set per page by StateInline.get_formset: the definition and the installation's roles.
    definition: WorkflowDefinition | None = None
    role_names: tuple[str, ...] = ()
    # How many reminders and escalation levels a row offers: one more than any step has.
    slots = 2

    task_roles = forms.MultipleChoiceField(
        label="Roles",
        required=False,
        help_text="Who may decide (hold Ctrl or ⌘ to choose several).",
    )
    task_requester = forms.BooleanField(
        label="For the requester only", required=False, help_text="The requester decides."
    )
    task_rule = forms.ChoiceField(label="Rule", choices=RULES, initial="any", required=False)
    task_quorum = forms.IntegerField(
        label="Quorum N", min_value=1, required=False, help_text="With the quorum rule."
    )
    task_forbid_requester = forms.BooleanField(
        label="Forbid the requester",
        required=False,
        initial=True,
        help_text="The requester may not decide their own request, even holding a role.",
    )
    task_label = forms.CharField(label="Inbox label", required=False, max_length=200)

    class Meta:
        model = StateDefinition
        fields = (
            "position",
            "path",
            "type",
            "initial",
            "description",
            "entry",
            "exit",
            "invoke",
            "meta",
            "on_complete_start",
        )
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        field_classes = {"invoke": OptionalJSONField, "on_complete_start": OptionalJSONField}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        task = self.instance.task if isinstance(self.instance.task, dict) else {}
        business = bool(((self.definition and self.definition.settings) or {}).get("calendar"))
        listed = [*_names(task.get("roles")), *_names(task.get("escalate_to"))]
        roles = sorted({*self.role_names, *listed})
        self.fields["task_roles"].choices = [(r, r) for r in roles]
        self.fields["task_sla"] = DurationField(
            label="SLA", business=business, help_text="Overdue after this long."
        )
        reminders = [v for v in task.get("remind") or [] if isinstance(v, str | int)]
        self.reminder_names = [f"task_remind_{n}" for n in range(self.slots)]
        for n, name in enumerate(self.reminder_names):
            self.fields[name] = DurationField(
                label=f"Reminder {n + 1}", business=business, help_text="After the task opens."
            )
        levels = _names(task.get("escalate_to"))
        self.escalation_names = [f"task_escalate_{n}" for n in range(self.slots)]
        for n, name in enumerate(self.escalation_names):
            self.fields[name] = forms.ChoiceField(
                label=f"Escalation level {n + 1}",
                choices=[("", "—"), *((r, r) for r in roles)],
                required=False,
                help_text="When the SLA runs out" if n == 0 else "At the next breach",
            )
        for name in ("entry", "exit", "invoke", "meta"):
            self.fields[name].widget.attrs.update({"rows": 2, "cols": 30})
        if task:
            rule = task_rule(task)[0]
            written = task.get("rule")
            self.initial.update(
                {
                    "task_roles": _names(task.get("roles")),
                    "task_requester": task.get("requester") is True,
                    "task_rule": rule,
                    "task_quorum": written.get("quorum") if rule == "quorum" else None,
                    "task_sla": task.get("sla"),
                    "task_forbid_requester": task.get("forbid_requester", True) is not False,
                    "task_label": task.get("label", ""),
                    **dict(zip(self.reminder_names, reminders, strict=False)),
                    **dict(zip(self.escalation_names, levels, strict=False)),
                }
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("invoke") is not None and not isinstance(data["invoke"], dict):
            self.add_error("invoke", "Expected an object, or empty.")
        if data.get("meta") is not None and not isinstance(data["meta"], dict):
            self.add_error("meta", "Expected an object.")
        for name in ("entry", "exit"):
            names = data.get(name) or []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                self.add_error(name, 'Expected a list of action names, e.g. ["notify"].')
        if data.get("task_rule") == "quorum" and not data.get("task_quorum"):
            self.add_error("task_quorum", "The quorum rule needs N, the number of approvals.")
        self.instance.task = self._task(data)
        return data

    def _task(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """meta.task from the fields; None when the step asks nobody."""
        before = self.instance.task if isinstance(self.instance.task, dict) else {}
        if not (data.get("task_roles") or data.get("task_requester")):
            return None
        # Every task key of the format has a field here; any other is kept, for validation to
        # name.
        task = {k: v for k, v in before.items() if k not in TASK_KEYS}
        if data.get("task_roles"):
            task["roles"] = list(data["task_roles"])
        if data.get("task_requester"):
            task["requester"] = True
        rule = data.get("task_rule") or "any"
        if rule == "quorum":
            task["rule"] = {"quorum": data.get("task_quorum")}
        elif "rule" in before and task_rule(before)[0] == rule:
            task["rule"] = before["rule"]  # as it was written: everyone or {everyone: true}
        elif rule != "any" or "rule" in before:
            task["rule"] = rule
        if data.get("task_sla"):
            task["sla"] = data["task_sla"]
        remind = [data[n] for n in self.reminder_names if data.get(n)]
        if remind:
            task["remind"] = remind
        escalate = [data[n] for n in self.escalation_names if data.get(n)]
        if escalate:
            task["escalate_to"] = escalate
        forbid = bool(data.get("task_forbid_requester"))
        if not forbid and not data.get("task_requester"):
            task["forbid_requester"] = False
        elif "forbid_requester" in before and not data.get("task_requester"):
            task["forbid_requester"] = True
        if data.get("task_label"):
            task["label"] = data["task_label"]
        return {key: task[key] for key in [*TASK_KEYS, *task] if key in task}


def _choices(known: list[str], current: str) -> list[tuple[str, str]]:
    """Select options of the known names, and the row's own value even when it is not one of
    them (validation names it; the row shows what it holds)."""
    names = [current, *known] if current and current not in known else known
    return [(name, name) for name in names]


def _names(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


class _DefinitionInline(DraftOnlyInline):
    """Hands the definition being edited, and what its rows choose from, to each row's form
    (read once per page, not once per row)."""

    def form_attrs(self, obj: WorkflowDefinition | None) -> dict[str, Any]:
        return {"definition": obj}

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = type(self.form.__name__, (self.form,), self.form_attrs(obj))
        # The rows' own columns; the fields made in the form's __init__ are its own.
        kwargs.update(form=form, fields=self.form.Meta.fields)
        return super().get_formset(request, obj, **kwargs)


def _slots(obj: WorkflowDefinition | None) -> int:
    longest = 0
    for task in obj.states.values_list("task", flat=True) if obj is not None else ():
        if isinstance(task, dict):
            for key in ("remind", "escalate_to"):
                longest = max(longest, len(task.get(key) or []))
    return max(2, longest + 1)


class StateInline(_DefinitionInline, admin.StackedInline):
    model = StateDefinition
    form = StateForm

    def form_attrs(self, obj: WorkflowDefinition | None) -> dict[str, Any]:
        roles = tuple(Group.objects.order_by("name").values_list("name", flat=True))
        return {**super().form_attrs(obj), "role_names": roles, "slots": _slots(obj)}

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        slots = range(_slots(obj))
        task_fields: tuple[Any, ...] = (
            ("task_roles", "task_requester", "task_forbid_requester"),
            ("task_rule", "task_quorum", "task_label"),
            "task_sla",
            tuple(f"task_remind_{n}" for n in slots),
            tuple(f"task_escalate_{n}" for n in slots),
        )
        if not self._editable(obj):
            task_fields = ("task_summary",)
        return (
            (None, {"fields": (("path", "type", "position"), "description", "initial")}),
            (
                "Task",
                {"fields": task_fields, "description": "Who decides in this step, and by when."},
            ),
            (
                "Actions and other keys",
                {"fields": (("entry", "exit"), ("invoke", "meta"), "on_complete_start")},
            ),
        )

    @admin.display(description="Task")
    def task_summary(self, obj: StateDefinition) -> str:
        """A published step's task, read: the fields are for drafts."""
        task = obj.task if isinstance(obj.task, dict) else None
        if task is None:
            return "No task: nobody decides here."
        who = "the requester" if task.get("requester") else ", ".join(_names(task.get("roles")))
        rule, quorum = task_rule(task)
        parts = [
            f"Decided by {who or 'nobody'}",
            f"rule {f'quorum {quorum}' if rule == 'quorum' else rule}",
        ]
        if task.get("sla"):
            parts.append(f"SLA {task['sla']}")
        if task.get("remind"):
            parts.append("reminders " + ", ".join(str(r) for r in task["remind"]))
        if task.get("escalate_to"):
            parts.append("escalates to " + " then ".join(_names(task["escalate_to"])))
        if task.get("forbid_requester") is False:
            parts.append("the requester may decide")
        return "; ".join(parts) + "."


class TransitionInline(_DefinitionInline, admin.TabularInline):
    model = TransitionDefinition
    form = TransitionForm
    fields = TransitionForm.Meta.fields
    template = "admin/approvals/workflowdefinition/transition_rows.html"

    def form_attrs(self, obj: WorkflowDefinition | None) -> dict[str, Any]:
        paths = tuple(obj.states.values_list("path", flat=True)) if obj is not None else ()
        return {**super().form_attrs(obj), "state_paths": paths}


class ScheduleForm(forms.ModelForm):
    """A schedule's cron and time zone are refused here, with the same words as in a file."""

    class Meta:
        model = Schedule
        fields = ["name", "cron", "tz", "context", "catch_up", "run_as", "position"]

    def clean_cron(self) -> str:
        cron = str(self.cleaned_data["cron"]).strip()
        problem = cron_problem(cron)
        if problem:
            raise forms.ValidationError(problem)
        return cron

    def clean_tz(self) -> str:
        tz = str(self.cleaned_data["tz"]).strip()
        problem = tz_problem(tz)
        if problem:
            raise forms.ValidationError(problem)
        return tz


class ScheduleInline(DraftOnlyInline, admin.TabularInline):
    """The file's `schedule` entries: beat starts a request at each tick once published."""

    model = Schedule
    form = ScheduleForm


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
    """The definition's own fields, its retention period and its scenarios as the YAML of the
    file's `scenarios` key (both kept with the settings; docs/definition-format.md)."""

    retention = forms.CharField(
        required=False,
        max_length=20,
        help_text=(
            "How long a finished request is kept, from its end, as an ISO 8601 period "
            "(<code>P7Y</code>, <code>P18M</code>, <code>P90D</code>). Then it is archived "
            "into a signed bundle and deleted, unless under legal hold. Empty: kept forever."
        ),
    )

    scenarios = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 16, "cols": 90, "class": "vLargeTextField"}),
        help_text=(
            "The definition's tests, as in a file: <code>scenarios:</code> then a list of "
            "<code>{name, context, steps, expect}</code>. They run when the page is saved; "
            "publishing is refused while one fails."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = dict(self.instance.settings or {})
        scenarios = stored.pop(SCENARIOS, None)
        retention = stored.pop(RETENTION, None)
        if "settings" in self.fields:
            self.initial["settings"] = stored
        if scenarios:
            self.initial["scenarios"] = dump_document({SCENARIOS: scenarios}, fmt="yaml")
        if retention:
            self.initial["retention"] = retention

    def clean_retention(self) -> str:
        text = (self.cleaned_data.get("retention") or "").strip().upper()
        if text:
            try:
                parse_period(text)
            except DurationError as exc:
                raise forms.ValidationError(str(exc)) from None
        return text

    def clean_scenarios(self) -> list[Any]:
        text = self.cleaned_data.get("scenarios") or ""
        if not text.strip():
            return []
        try:
            document = load_document(text, filename="scenarios")
        except DefinitionError as exc:
            raise forms.ValidationError(str(exc)) from None
        if set(document) != {SCENARIOS} or not isinstance(document[SCENARIOS], list):
            raise forms.ValidationError(
                "Write the scenarios as in a file: a line 'scenarios:' and a list under it."
            )
        # Their shapes are checked with the whole definition once it is saved.
        return list(document[SCENARIOS])

    def clean_settings(self) -> Any:
        settings = self.cleaned_data.get("settings")
        if isinstance(settings, dict) and SCENARIOS in settings:
            raise forms.ValidationError(
                "Scenarios go in the Scenarios field below, not in the settings."
            )
        if isinstance(settings, dict) and RETENTION in settings:
            raise forms.ValidationError(
                "The retention period goes in the Retention field, not in the settings."
            )
        return settings

    def save(self, commit: bool = True) -> WorkflowDefinition:
        definition: WorkflowDefinition = super().save(commit=False)
        settings = dict(self.cleaned_data.get("settings") or {})
        if self.cleaned_data.get("scenarios"):
            settings[SCENARIOS] = self.cleaned_data["scenarios"]
        if self.cleaned_data.get("retention"):
            settings[RETENTION] = self.cleaned_data["retention"]
        definition.settings = settings
        if commit:
            definition.save()
            self.save_m2m()
        return definition

    class Meta:
        model = WorkflowDefinition
        fields = (
            "key",
            "title",
            "description",
            "initial",
            "form_schema",
            "inbox_columns",
            "segregation",
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
    inlines = [StateInline, TransitionInline, ScheduleInline]
    change_form_template = "admin/approvals/workflowdefinition/change_form.html"
    change_list_template = "admin/approvals/workflowdefinition/change_list.html"

    @admin.display(description="Retention")
    def retention_period(self, obj: WorkflowDefinition) -> str:
        return (obj.settings or {}).get(RETENTION) or "kept forever"

    @admin.display(description="Scenarios")
    def scenarios_file(self, obj: WorkflowDefinition) -> str:
        scenarios = (obj.settings or {}).get(SCENARIOS)
        return dump_document({SCENARIOS: scenarios}, fmt="yaml") if scenarios else "-"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if obj is not None and not obj.is_editable:
            # Read only: the stored scenarios and retention are shown by scenarios_file and
            # retention_period instead.
            fields = [f for f in fields if f not in ("scenarios", "retention")]
        return fields

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
                "segregation",
                "settings",
                "retention_period",
                "scenarios_file",
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
        config = definition_config(form.instance)
        problems = definition_problems(config)
        for problem in problems[:20]:
            messages.warning(request, problem)
        if problems:
            messages.warning(request, f"{len(problems)} problem(s): fix them before publishing.")
            return
        failing = [r for r in definition_scenarios(config) if not r.passed]
        for result in failing[:20]:
            messages.warning(request, f"Scenario {result.name} fails: {result.difference}")

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
            # The scenarios run in memory, once the definition is valid.
            results = [] if context["problems"] else definition_scenarios(config)
            context["scenarios"] = results
            context["scenarios_fail"] = any(not r.passed for r in results)
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="approvals_definition_import"),
            path("<int:pk>/publish/", wrap(self.publish_view), name="approvals_definition_publish"),
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
            path("<int:pk>/migrate/", wrap(self.migrate_view), name="approvals_definition_migrate"),
            path(
                "<int:pk>/diff/",
                wrap(require_GET(self.diff_view)),
                name="approvals_definition_diff",
            ),
            path(
                "<int:pk>/check-guard/",
                wrap(require_GET(self.check_guard_view)),
                name="approvals_definition_check_guard",
            ),
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
        """Asks first, like Django's delete confirmation: the problems that stop publishing,
        the warnings to read (decisions a guard can block), then Publish or Back. Only the
        confirmation's POST publishes."""
        self._require(request, "change")
        definition = get_object_or_404(WorkflowDefinition, pk=pk)
        if request.method == "POST" and request.POST.get("post") == "yes":

            def publish() -> WorkflowDefinition:
                return definition_publish(definition_id=pk, actor=request.user, now=timezone.now())

            return self._run(request, pk, publish, "{} published.")
        if definition.status != DefinitionStatus.DRAFT:
            messages.error(request, f"{definition} is not a draft; only drafts can be published")
            return self._back(pk)
        config = definition_config(definition)
        problems = publish_problems(config)
        published = WorkflowDefinition.objects.filter(
            key=definition.key, status=DefinitionStatus.PUBLISHED
        ).first()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": definition,
            "title": f"Publish {definition}?",
            "problems": problems,
            "warnings": [] if problems else publish_warnings(config),
            "published": published,
            "changes": definition_diff(definition_config(published), config).changes
            if published is not None
            else [],
        }
        return TemplateResponse(
            request, "admin/approvals/workflowdefinition/publish_confirmation.html", context
        )

    def new_version_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def new_version() -> WorkflowDefinition:
            return definition_new_version(definition_id=pk, actor=request.user)

        return self._run(request, pk, new_version, "{} created: edit it, then publish.")

    def retire_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def retire() -> WorkflowDefinition:
            return definition_retire(definition_id=pk, actor=request.user)

        return self._run(request, pk, retire, "{} retired.")

    def migrate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return migrate_view(self, request, pk)

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

    def diff_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """What this version changes against another of the same workflow (`?against=N`,
        by default the published version for a draft, else the version before it): a list,
        and both diagrams with what was removed, added and changed coloured."""
        self._require(request, "view")
        definition = get_object_or_404(WorkflowDefinition, pk=pk)
        others = list(
            WorkflowDefinition.objects.filter(key=definition.key)
            .exclude(pk=definition.pk)
            .order_by("version")
        )
        against = _version_to_compare(definition, others, request.GET.get("against"))
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": definition,
            "others": others,
            "against": against,
            "title": f"What {definition} changes",
        }
        if against is not None:
            before, after = definition_config(against), definition_config(definition)
            changes = definition_diff(before, after)
            context["changes"] = changes.changes
            context["before"] = _diagram(before, changes.states, changes.edges)
            context["after"] = _diagram(after, changes.states, changes.edges)
        return TemplateResponse(request, "admin/approvals/workflowdefinition/diff.html", context)

    def check_guard_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        """The live check of a guard as it is typed: read by the engine's parser, within its
        budget, against the definition's fields. Reads only, so a GET."""
        self._require(request, "view")
        definition = get_object_or_404(WorkflowDefinition, pk=pk)
        source = request.GET.get("guard", "")
        if not source.strip():
            return JsonResponse({"ok": True, "message": "No guard: the arrow is always taken."})
        config = definition_config(definition)
        problem = guard_problem(source, fields=context_fields(config), samples=form_samples(config))
        if problem:
            return JsonResponse({"ok": False, "message": f"{problem[:1].upper()}{problem[1:]}."})
        return JsonResponse({"ok": True, "message": "✔ The engine can read this guard."})

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


def _diagram(
    config: dict[str, Any],
    states: Mapping[str, str] | None = None,
    edges: Mapping[tuple[str, str], str] | None = None,
) -> str:
    """A definition's diagram, with the changes of a comparison marked on it; empty while a
    draft is too broken to draw."""
    from approvals.machine.diagram import render_svg

    try:
        svg = render_svg(config)
        if states is not None or edges is not None:
            svg = mark_diagram(svg, states or {}, edges or {})
        return mark_safe(svg)
    except Exception:
        return ""


def _version_to_compare(
    definition: WorkflowDefinition, others: list[WorkflowDefinition], asked: str | None
) -> WorkflowDefinition | None:
    if asked and asked.isdigit():
        return next((d for d in others if d.version == int(asked)), None)
    if definition.status == DefinitionStatus.DRAFT:
        published = [d for d in others if d.status == DefinitionStatus.PUBLISHED]
        if published:
            return published[0]
    earlier = [d for d in others if d.version < definition.version]
    return earlier[-1] if earlier else (others[-1] if others else None)
