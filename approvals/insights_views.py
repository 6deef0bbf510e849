"""The insights pages: /insights/, /insights/<workflow key>/ and the requests waiting
in a state. Thin: parse the period, call the selectors of approvals/insights.py, draw the charts,
render; `?download=<table>` answers the table under a chart as CSV instead.

Only users with `approvals.view_insights` see any of it; everyone else gets a 403 page.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import wraps
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from approvals import insights
from approvals.charts import bar_chart, duration_text, number_text
from approvals.formatting import reader_time_zone
from approvals.heatmap import heat_svg
from approvals.insights import Period, PeriodError, Scope
from approvals.models import WorkflowDefinition
from approvals.services.definitions import definition_config

PERMISSION = "approvals.view_insights"


def may_view_insights(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.has_perm(PERMISSION))


def insights_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @login_required
    @require_safe
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not may_view_insights(request.user):
            from approvals.views import _forbidden

            return _forbidden(request, "Only process owners may see the insights.")
        reader_time_zone(request)
        return view(request, *args, **kwargs)

    return wrapper


class PeriodForm(forms.Form):
    days = forms.TypedChoiceField(
        choices=[(d, f"Last {d} days") for d in insights.PERIODS],
        coerce=int,
        required=False,
        empty_value=None,
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    version = forms.IntegerField(required=False, min_value=1)

    def period(self, now: datetime) -> Period:
        data = self.cleaned_data
        if data.get("since") or data.get("until"):
            try:
                return Period.from_dates(data.get("since"), data.get("until"), now)
            except PeriodError as exc:
                for name, messages in exc.errors.items():
                    for message in messages:
                        self.add_error(name, message)
                raise
        return Period.last_days(data.get("days") or insights.DEFAULT_DAYS, now)


@dataclass
class Table:
    name: str
    title: str
    headers: Sequence[str]
    rows: list[list[Any]]  # raw values: what the CSV holds
    shown: list[list[str]]  # as the page writes them


def _table(
    name: str, title: str, headers: Sequence[str], rows: list[list[Any]], kinds: str
) -> Table:
    """`kinds`: one letter per column: t text, n number, d duration in seconds, r ratio."""
    shown = []
    for row in rows:
        cells = []
        for kind, value in zip(kinds, row, strict=True):
            if kind == "d":
                cells.append(duration_text(value))
            elif kind == "n":
                cells.append(number_text(value))
            elif kind == "r":
                cells.append("\N{EN DASH}" if value is None else f"{value:.0%}")
            else:
                cells.append(str(value))
        shown.append(cells)
    return Table(name, title, headers, rows, shown)


def _csv(table: Table, slug: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="insights-{slug}-{table.name}.csv"'
    writer = csv.writer(response)
    writer.writerow(table.headers)
    for row in table.rows:
        writer.writerow(["" if v is None else _csv_cell(v) for v in row])
    return response


def _csv_cell(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        # A cell a spreadsheet would run as a formula is written as text.
        return "'" + value
    return value


def _parse(request: HttpRequest, now: datetime) -> tuple[PeriodForm, Period | None]:
    form = PeriodForm(request.GET)
    if not form.is_valid():
        return form, None
    try:
        return form, form.period(now)
    except PeriodError:
        return form, None


def _respond(
    request: HttpRequest, template: str, context: dict[str, Any], tables: list[Table], slug: str
) -> HttpResponse:
    wanted = request.GET.get("download")
    if wanted is not None:
        table = next((t for t in tables if t.name == wanted), None)
        if table is None:
            raise Http404("No such table.")
        return _csv(table, slug)
    query = request.GET.copy()
    query.pop("download", None)
    context["tables"] = {t.name: t for t in tables}
    context["query"] = query.urlencode()
    return render(request, template, context)


def _overview_row(label: str, o: insights.Overview) -> list[Any]:
    return [
        label,
        o.started,
        o.completed,
        o.rejected,
        o.withdrawn,
        o.cancelled,
        o.failed,
        o.open,
        o.overdue,
        o.lead_time_s["p50"],
        o.lead_time_s["p90"],
        o.lead_time_s["max"],
        o.within_sla_ratio,
    ]


OVERVIEW_HEADERS = (
    "workflow",
    "started",
    "completed",
    "rejected",
    "withdrawn",
    "cancelled",
    "failed",
    "open",
    "overdue",
    "lead_time_p50_s",
    "lead_time_p90_s",
    "lead_time_max_s",
    "within_sla_ratio",
)


def _throughput(o: insights.Overview) -> Table:
    return _table(
        "throughput",
        "Requests ended per week",
        ("week_starting", "ended"),
        [[week, n] for week, n in o.throughput],
        "tn",
    )


def _workload_tables(workload: insights.Workload) -> list[Table]:
    return [
        _table(
            "roles",
            "Open tasks per role",
            ("role", "open", "overdue"),
            [[r["role"], r["open"], r["overdue"]] for r in workload.by_role],
            "tnn",
        ),
        _table(
            "people",
            "Open tasks per person",
            ("person", "open", "overdue"),
            [[r["person"], r["open"], r["overdue"]] for r in workload.by_person],
            "tnn",
        ),
        _table(
            "decisions",
            "Decisions per person per week",
            ("person", *(w.isoformat() for w in workload.weeks), "total"),
            [[r["person"], *r["weeks"], r["total"]] for r in workload.decisions],
            "t" + "n" * (len(workload.weeks) + 1),
        ),
        _table(
            "covering",
            "Covering for absent colleagues",
            ("person", "for", "decided", "holding_now"),
            [[r["person"], r["for"], r["decided"], r["holding"]] for r in workload.covering],
            "ttnn",
        ),
    ]


def _weekly_chart(table: Table) -> Any:
    return bar_chart(table.title, [(str(row[0]), [row[1]]) for row in table.rows], fmt=number_text)


def _role_chart(table: Table) -> Any:
    return bar_chart(
        table.title,
        [(row[0], [row[1], row[2]]) for row in table.rows],
        series=("open", "overdue"),
    )


@insights_required
def insights_index(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    form, period = _parse(request, now)
    context: dict[str, Any] = {"form": form, "workflows": insights.workflow_keys()}
    if period is None:
        return render(request, "approvals/insights/index.html", context, status=400)
    per_workflow = insights.insights_overview_by_workflow(period=period, now=now)
    total = insights.insights_overview_total([o for _, o in per_workflow], period=period, now=now)
    workflows = _table(
        "workflows",
        "Requests per workflow",
        OVERVIEW_HEADERS,
        [_overview_row(key, o) for key, o in per_workflow] + [_overview_row("all", total)],
        "tnnnnnnnndddr",
    )
    throughput = _throughput(total)
    workload = _workload_tables(insights.insights_workload(scope=Scope(period), now=now))
    context.update(
        period=period,
        total=total,
        charts={
            "workflows": bar_chart(
                "Lead time per workflow (p50, p90)",
                [(row[0], [row[9], row[10]]) for row in workflows.rows[:-1]],
                series=("p50", "p90"),
                fmt=duration_text,
            ),
            "throughput": _weekly_chart(throughput),
            "roles": _role_chart(workload[0]),
        },
    )
    return _respond(
        request, "approvals/insights/index.html", context, [workflows, throughput, *workload], "all"
    )


def _workflow(key: str) -> WorkflowDefinition:
    definition = (
        WorkflowDefinition.objects.filter(key=key).exclude(status="draft").order_by("-version")
    ).first() or WorkflowDefinition.objects.filter(key=key).order_by("-version").first()
    if definition is None:
        raise Http404("No such workflow.")
    return definition


@insights_required
def insights_workflow(request: HttpRequest, key: str) -> HttpResponse:
    definition = _workflow(key)
    now = timezone.now()
    form, period = _parse(request, now)
    versions = insights.versions_of(key)
    context: dict[str, Any] = {"form": form, "definition": definition, "versions": versions}
    if period is not None and form.cleaned_data.get("version") not in (None, *versions):
        form.add_error("version", f"Choose one of: {', '.join(map(str, versions))}.")
        period = None
    if period is None:
        return render(request, "approvals/insights/workflow.html", context, status=400)
    version = form.cleaned_data.get("version")
    scope = Scope(period, key, version)
    if version is not None:
        definition = WorkflowDefinition.objects.get(key=key, version=version)
    overview = insights.insights_overview(scope=scope, now=now)
    steps = insights.insights_steps(scope=scope, now=now)
    counts = insights.insights_transitions(scope=scope)
    summary = _table(
        "overview", "Overview", OVERVIEW_HEADERS, [_overview_row(key, overview)], "tnnnnnnnndddr"
    )
    throughput = _throughput(overview)
    steps_table = _table(
        "steps",
        "Per step",
        (
            "state",
            "visits",
            "tasks",
            "wait_p50_s",
            "wait_p90_s",
            "decide_p50_s",
            "decide_p90_s",
            "time_in_state_p50_s",
            "breaches",
            "reminders",
            "escalations",
            "reworks",
            "outcomes",
        ),
        [
            [
                s.state,
                s.visits,
                s.tasks,
                s.wait_p50_s,
                s.wait_p90_s,
                s.decide_p50_s,
                s.decide_p90_s,
                s.time_in_state_p50_s,
                s.breaches,
                s.reminders,
                s.escalations,
                s.reworks,
                " ".join(f"{event}={n}" for event, n in s.outcomes.items()),
            ]
            for s in steps
        ],
        "tnndddddnnnnt",
    )
    transitions = _table(
        "transitions",
        "Transitions taken",
        ("from", "to", "count"),
        [[a, b, n] for (a, b), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))],
        "ttn",
    )
    workload = _workload_tables(insights.insights_workload(scope=scope, now=now))
    waiting_url = reverse("insights_waiting", args=[key])
    heat, legend = heat_svg(
        definition_config(definition),
        times={s.state: s.time_in_state_p50_s for s in steps}
        | {path: None for path in _task_states(definition) if path not in {s.state for s in steps}},
        counts=counts,
        link=lambda path: f"{waiting_url}?state={path}",
    )
    context.update(
        period=period,
        version=version,
        overview=overview,
        heat=heat,
        legend=legend,
        charts={
            "throughput": _weekly_chart(throughput),
            "steps": bar_chart(
                "Per step: waiting to be claimed and deciding (p50)",
                [(row[0], [row[3], row[5]]) for row in steps_table.rows],
                series=("waiting (p50)", "deciding (p50)"),
                fmt=duration_text,
            ),
            "roles": _role_chart(workload[0]),
        },
    )
    return _respond(
        request,
        "approvals/insights/workflow.html",
        context,
        [summary, throughput, steps_table, transitions, *workload],
        key,
    )


def _task_states(definition: WorkflowDefinition) -> list[str]:
    return list(definition.states.filter(task__isnull=False).values_list("path", flat=True))


@insights_required
def insights_waiting_view(request: HttpRequest, key: str) -> HttpResponse:
    definition = _workflow(key)
    state = request.GET.get("state", "")
    known = set(WorkflowDefinition.objects.filter(key=key).values_list("states__path", flat=True))
    if state not in known:
        raise Http404("No such step.")
    waiting = insights.insights_waiting(workflow=key, state=state)
    rows = [[w["id"], w["reference"], w["title"], w["waiting_since"], w["due_at"]] for w in waiting]
    table = Table(
        "waiting",
        "Waiting",
        ("request", "reference", "title", "waiting_since", "due_at"),
        rows,
        [],
    )
    return _respond(
        request,
        "approvals/insights/waiting.html",
        {"definition": definition, "state": state, "waiting": waiting, "now": timezone.now()},
        [table],
        f"{key}-waiting",
    )
