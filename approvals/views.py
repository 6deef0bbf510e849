"""The reviewer and requester pages. Each view parses and authorises its input, calls one service
(or selector) and renders; refusals from the services become a 403 page or a message.

A task or request the user may not see is a 404 (its existence is not revealed); one they may
see but not act on is a 403 for the POST, with nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    JsonResponse,
    QueryDict,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts import sso
from accounts.people import choosable_people
from approvals import history, selectors
from approvals.artifacts.selectors import documents
from approvals.ask_pages import arguments_messages, ask_context, edited_arguments
from approvals.discussion.selectors import thread
from approvals.formatting import field_value, reader_time_zone
from approvals.forms import (
    BulkForm,
    DecisionForm,
    DelegateForm,
    InboxFilterForm,
    ReferenceForm,
    RequestFilterForm,
    request_form,
)
from approvals.machine.artifacts import form_rules
from approvals.machine.config import field_label, form_fields
from approvals.machine.statechart import APPROVE
from approvals.machine.words import decision_verb
from approvals.models import (
    DefinitionStatus,
    RetiredRequest,
    Task,
    TaskKind,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.permissions import can_view_instance, can_view_task, four_eyes_refusal
from approvals.request_schema import sentence
from approvals.services import signatures
from approvals.services.artifacts import Upload, instance_start_with_artifacts
from approvals.services.audit_exports import may_export_audit
from approvals.services.automated_steps import (
    failed_action_cancel,
    failed_action_retry,
    failed_action_skip,
    skip_choices,
)
from approvals.services.definitions import statechart_for
from approvals.services.errors import AlreadyDecided, Conflict, InvalidInput, NotAllowed
from approvals.services.instances import instance_withdraw
from approvals.services.retention import may_see_retention
from approvals.services.task_work import (
    describe_closed,
    task_claim,
    task_decide,
    task_decide_many,
    task_delegate,
    task_unclaim,
)

PAGE_SIZE = 25
# A refused decision's messages that belong next to a field of the decision form.
DECISION_FIELD_ERRORS = ("comment", "password", "code")
# The session key of the inbox's last URL, where a decision returns.
INBOX_URL = "signoff_inbox_url"


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return HttpResponseForbidden(
        render_to_string("approvals/refused.html", {"message": message}, request=request)
    )


def refusals_as_403(view: Any) -> Any:
    """A NotAllowed from the service is a 403 page naming the reason; nothing was written."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotAllowed as exc:
            return _forbidden(request, exc.message)

    return wrapper


def _visible_task(request: HttpRequest, task_id: int) -> Task:
    task = get_object_or_404(
        Task.objects.select_related(
            "instance__definition", "instance__requester", "assignee", "on_behalf_of"
        ),
        pk=task_id,
    )
    if not can_view_task(request.user, task):
        raise Http404("No such task.")
    return task


def _visible_instance(request: HttpRequest, instance_id: int) -> WorkflowInstance:
    instance = get_object_or_404(
        WorkflowInstance.objects.select_related("definition", "requester"), pk=instance_id
    )
    if not can_view_instance(request.user, instance):
        raise Http404("No such request.")
    return instance


# ----- inbox


@login_required
@require_safe
def inbox(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    form, tab, filters, columns, query = _inbox_state(request.user, request.GET, now)
    page = form.cleaned_data.get("page") or 1
    # A decision brings the reviewer back here: this tab, these filters, this page.
    back = f"{reverse('inbox')}?{query.urlencode()}"
    if request.session.get(INBOX_URL) != back:
        request.session[INBOX_URL] = back
    # One row more than a page tells whether there is a next page without counting the tab.
    start = (page - 1) * PAGE_SIZE
    rows = list(
        selectors.inbox_tasks(request.user, tab, filters, now)[start : start + PAGE_SIZE + 1]
    )
    context = {
        "form": form,
        "tab": tab,
        # The counts come in a second request (`inbox_counts`), so the rows never wait on them.
        "tab_list": [(key, label, None) for key, label in selectors.TABS.items()],
        "sorts": selectors.SORTS,
        "filters": filters,
        "rows": _rows(request.user, rows[:PAGE_SIZE], columns, now),
        "columns": columns,
        "column_sorts": [
            (f"{direction}col:{c.name}", f"{c.label} {arrow}")
            for c in columns
            for direction, arrow in (("", "↑"), ("-", "↓"))
        ],
        "page": page,
        "has_next": len(rows) > PAGE_SIZE,
        "workflows": WorkflowDefinition.objects.filter(status=DefinitionStatus.PUBLISHED)
        .order_by("title")
        .only("key", "title", "form_schema"),
        "bulk": tab in {"mine", "queue", "delegated", "overdue"},
        "steps": _step_options(filters),
        "requester_note": form.requester_note,
        "query": query.urlencode(),
    }
    template = "approvals/_inbox_update.html" if request.headers.get("HX-Request") else None
    return render(request, template or "approvals/inbox.html", context)


@login_required
@require_safe
def inbox_counts(request: HttpRequest) -> HttpResponse:
    """The tab bar with each tab's count under the inbox's filters (loaded after the rows)."""
    form = _inbox_form(request.GET)
    filters = form.filters()
    counts = selectors.inbox_counts(request.user, filters, timezone.now())
    return render(
        request,
        "approvals/_inbox_tabs.html",
        {
            "tab": form.cleaned_data.get("tab") or "mine",
            "filters": filters,
            "tab_list": [(key, label, counts[key]) for key, label in selectors.TABS.items()],
            "count_cap": selectors.COUNT_CAP,
        },
    )


def _step_options(filters: selectors.InboxFilters) -> list[tuple[str, str]]:
    """The Step filter's choices; a step from an older link that is not among them stays
    selectable, so that the filter on screen is the one applied."""
    steps = selectors.step_choices(filters.workflow)
    if filters.state and filters.state not in dict(steps):
        steps.append((filters.state, filters.state))
    return steps


def _inbox_form(query: QueryDict) -> InboxFilterForm:
    """The inbox's parameters; anything malformed falls back to the defaults."""
    form = InboxFilterForm(query)
    if not form.is_valid():
        form = InboxFilterForm({"tab": query.get("tab", "")})
        form.is_valid()
    return form


def _inbox_state(
    user: Any, query: QueryDict, now: Any
) -> tuple[InboxFilterForm, str, selectors.InboxFilters, list[selectors.Column], QueryDict]:
    """The inbox a query asks for: its form, tab (without one, the first tab that has work),
    filters, the chosen workflow's key columns, and the query with its tab written out."""
    form = _inbox_form(query)
    filters = form.filters()
    tab = form.cleaned_data.get("tab") or selectors.first_tab_with_work(user, filters, now)
    # One workflow's inbox shows its key fields as columns, and may be sorted by them.
    columns = selectors.workflow_columns(filters.workflow) if filters.workflow else []
    by_column = selectors.column_sort(filters.sort)
    if by_column and (tab == "done" or by_column[0] not in {c.name for c in columns}):
        filters = replace(filters, sort="due")
    query = query.copy()
    query["tab"] = tab
    return form, tab, filters, columns, query


def _inbox_url(request: HttpRequest) -> str:
    """The inbox as the user last saw it (tab, filters, page), else the inbox."""
    url = request.session.get(INBOX_URL, "")
    return url if isinstance(url, str) and url.startswith("/inbox/?") else reverse("inbox")


def _rows(
    user: Any, tasks: list[Task], columns: list[selectors.Column], now: Any
) -> list[dict[str, Any]]:
    """Each task with its step, its deadline badge, its key fields (the workflow's columns
    when the inbox shows one workflow, else its own workflow's as "label: value" pairs), and
    whom the user covers for where the task is theirs only by cover."""
    own: dict[int, list[selectors.Column]] = {}
    covering = selectors.covering_names(user, tasks, now)
    rows = []
    for task in tasks:
        instance = task.instance
        if columns:
            cells, fields = [(c, c.text(instance.context)) for c in columns], []
        else:
            if instance.definition_id not in own:
                own[instance.definition_id] = selectors.columns_of(instance.definition)
            cells = []
            fields = [
                (c.label, text)
                for c in own[instance.definition_id]
                if (text := c.text(instance.context))
            ]
        rows.append(
            {
                "task": task,
                "state": selectors.state_label(instance, task.state),
                "badge": selectors.due_badge(task, now),
                "cells": cells,
                "key_fields": fields,
                "covering": covering.get(task.pk, ""),
            }
        )
    return rows


@login_required
@require_POST
def inbox_bulk(request: HttpRequest) -> HttpResponse:
    """Decide several tasks at once; each in its own transaction, each reported."""
    form = BulkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose at least one task (at most 100).")
        return redirect(_back_to_inbox(request))
    results = task_decide_many(
        task_ids=form.cleaned_data["tasks"],
        event=form.cleaned_data["decision"],
        actor=request.user,
        now=timezone.now(),
    )
    done = sum(r.ok for r in results)
    return render(
        request,
        "approvals/bulk_result.html",
        {
            "results": results,
            "done": done,
            "failed": len(results) - done,
            "back": _back_to_inbox(request),
        },
    )


def _back_to_inbox(request: HttpRequest) -> str:
    back = request.POST.get("next", "")
    return back if back.startswith("/inbox/") else reverse("inbox")


# ----- task page


def _page_or_live_part(
    request: HttpRequest, page: str, part: str, context: dict[str, Any]
) -> HttpResponse:
    """The page, or with HX-Request only its state-dependent part: what static/js/task.js
    fetches and puts in place at every live event, so the whole part follows one truth."""
    template = part if request.headers.get("HX-Request") else page
    response = render(request, template, context)
    # One URL, two bodies: no cache may hand the part to a navigation, or the page to task.js.
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_safe
def task_detail(request: HttpRequest, task_id: int) -> HttpResponse:
    task = _visible_task(request, task_id)
    return _page_or_live_part(
        request, "approvals/task.html", "approvals/_task_page.html", _task_context(request, task)
    )


def _task_context(request: HttpRequest, task: Task, **forms: Any) -> dict[str, Any]:
    # The lines this builds in Python (who handled a step and when) read in the reader's zone.
    reader_time_zone(request)
    instance = task.instance
    now = timezone.now()
    may_act = selectors.may_act(request.user, task, now)
    chart = statechart_for(instance.definition)
    review = task.failed_action if task.kind == TaskKind.ACTION_REVIEW else None
    attempts = selectors.step_attempts(review) if review is not None else []
    context = {
        **_request_context(request, instance),
        "task": task,
        "state": selectors.state_label(instance, task.state),
        "badge": selectors.due_badge(task, now),
        "may_act": may_act,
        "four_eyes": four_eyes_refusal(request.user, task) if task.is_live and not may_act else "",
        "covering": selectors.covering_names(request.user, [task], now).get(task.pk, "")
        if task.is_live
        else "",
        "choices": (
            choices := selectors.decision_choices(task) if may_act and review is None else []
        ),
        "choice_events": [c.event for c in choices],
        "unavailable": selectors.unavailable_decisions(task) if may_act and review is None else [],
        "review": review,
        "review_attempts": attempts,
        "failed_attempts": sum(1 for a in attempts if a.error) or (review and review.attempts),
        "retry_outcome": selectors.retry_outcome(review) if review is not None else None,
        "skip_choices": skip_choices(review) if review is not None and may_act else [],
        "review_errors": forms.get("review_errors") or {},
        "decided": (decided := None if task.is_live or review else selectors.decision_of(task)),
        "decided_signature": signatures.describe(decided.signature)
        if decided is not None and decided.signature
        else "",
        "signature": _signature_asked(request, chart, task) if may_act and review is None else None,
        "closed_reason": "" if task.is_live else describe_closed(task),
        "settled_note": "" if task.is_live else _settled_note(task, review),
        "can_claim": may_act and task.assignee_id is None,
        "can_unclaim": task.is_live
        and task.assignee_id == request.user.pk
        and not task.for_requester
        and task.candidate_groups.exists(),
        **_what_came_before(task, chart.form),
        "progress": selectors.approval_progress(task) if task.is_live else None,
        "decision_form": forms.get("decision_form") or DecisionForm(),
        "delegate_form": forms.get("delegate_form") or DelegateForm(),
        "edit_form": forms.get("edit_form")
        or (
            request_form(chart.form, initial=instance.context)
            if may_act and task.for_requester
            else None
        ),
    }
    if "arguments_text" in forms:
        context.update(ask_context(instance, arguments_text=forms["arguments_text"]))
        context["arguments_errors"] = forms.get("arguments_errors") or []
    return context


def _signature_asked(request: HttpRequest, chart: Any, task: Task) -> dict[str, Any] | None:
    """For the one who may decide a step that asks for a signature: its meaning and how they
    re-authenticate (their password or a sign-in again at the identity provider, and a code)."""
    spec = chart.state(task.state).task
    if spec is None or not spec.signature:
        return None
    return {
        "meaning": spec.signature,
        "needs": signatures.needs(request.user),
        "signed_in_again": sso.fresh_sign_in(request),
        "reauth_url": f"{reverse('oidc_authentication_init')}?"
        + urlencode({"reauth": 1, "next": reverse("task", args=[task.pk])}),
    }


def _what_came_before(task: Task, form: dict[str, Any]) -> dict[str, Any]:
    """For the requester answering "changes requested": the reviewer's words, above the form.
    For the reviewer of a resubmission: each changed field, before and after."""
    before = selectors.decision_before(task) if task.is_live else None
    data = before.data if before is not None else {}
    if task.for_requester and data.get("decision") == "REQUEST_CHANGES":
        return {"changes_asked": before}
    changed = data.get("changed") if data.get("decision") == "RESUBMIT" else None
    if task.for_requester or not isinstance(changed, dict) or not changed:
        return {}
    context = task.instance.context
    rows = [
        (
            field_label(form, name),
            field_value(name, pair[0], form, context) if isinstance(pair, list) else None,
            field_value(name, pair[1], form, context) if isinstance(pair, list) else None,
        )
        for name, pair in changed.items()
    ]
    return {"resubmitted": {"by": before.actor or before.actor_name, "at": before.at, "rows": rows}}


def _settled_note(task: Task, review: Any) -> str:
    """One line for a person who had the task open while someone else settled it."""
    decided = None if review else selectors.decision_of(task)
    if decided is None:
        return sentence(describe_closed(task))
    behalf = f" on behalf of {decided.on_behalf_of}" if decided.on_behalf_of else ""
    return f"{decided.actor}{behalf} decided this task: {decision_verb(decided.event)}."


def _request_context(request: HttpRequest, instance: WorkflowInstance) -> dict[str, Any]:
    """What the request page and the task page both show of the request, as it is now."""
    reader_time_zone(request)
    return {
        "instance": instance,
        "current_steps": selectors.current_steps(instance),
        "steps_running": selectors.steps_in_progress(instance),
        "skipped_steps": selectors.skipped_steps(instance),
        "fields": _fields(statechart_for(instance.definition).form, instance.context),
        "live_tasks": _live_tasks(request, instance, timezone.now()),
        "step_progress": _step_progress(instance),
        "timeline": history.timeline(instance),
        "diagram": selectors.diagram(instance, reader=True),
        **ask_context(instance),
        **documents(request.user, instance, timezone.now()),
        "thread": thread(instance, request.user, timezone.now()),
        "may_ask_requester": instance.is_active and request.user.pk != instance.requester_id,
    }


def _step_progress(instance: WorkflowInstance) -> list[tuple[str, str]]:
    """(step, "Sam Silva approved; 1 of 2") for each live step that needs several approvals."""
    seen: dict[str, str] = {}
    for task in selectors.live_tasks(instance):
        if task.state not in seen and (progress := selectors.approval_progress(task)):
            seen[task.state] = progress.text
    return [(selectors.state_label(instance, state), text) for state, text in seen.items()]


def _live_tasks(request: HttpRequest, instance: WorkflowInstance, now: Any) -> list[Any]:
    """(task, who it waits on, whether the viewer may act on it) for each live task."""
    return [
        (t, selectors.waiting_on(t), selectors.may_act(request.user, t, now))
        for t in selectors.live_tasks(instance)
    ]


def _fields(schema: dict[str, Any], data: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """The request's form fields as (label, value as text, name), in the form's order. What
    automated steps returned is in the context too, under their state's name; the history
    tells it."""
    return [
        (field_label(schema, name), field_value(name, data.get(name), schema, data), name)
        for name in form_fields(schema)
        if name in data
    ]


def _task_action(view: Any) -> Any:
    """POST-only, login required, visible task (else 404), refusals as 403."""

    @login_required
    @require_POST
    @refusals_as_403
    @wraps(view)
    def wrapper(request: HttpRequest, task_id: int) -> HttpResponse:
        task = _visible_task(request, task_id)
        try:
            return view(request, task)
        except (AlreadyDecided, Conflict) as exc:
            messages.warning(request, sentence(exc.message))
            return redirect("task", task_id=task.pk)

    return wrapper


@_task_action
def task_claim_view(request: HttpRequest, task: Task) -> HttpResponse:
    task_claim(task_id=task.pk, actor=request.user, now=timezone.now())
    messages.success(request, "You claimed this task; it is in your inbox.")
    return redirect("task", task_id=task.pk)


@_task_action
def task_unclaim_view(request: HttpRequest, task: Task) -> HttpResponse:
    task_unclaim(task_id=task.pk, actor=request.user, now=timezone.now())
    messages.success(request, "The task is back in its roles' queue.")
    return redirect("task", task_id=task.pk)


@_task_action
def task_decide_view(request: HttpRequest, task: Task) -> HttpResponse:
    """Decide; then back to the inbox as it was, or with "Approve and open next" (`then=next`,
    which approves) on to the next task of that inbox."""
    data = request.POST
    then_next = _OpenNext.plan(request, task) if data.get("then") == "next" else None
    if then_next is not None:
        data = data.copy()
        data["decision"] = APPROVE
    form = DecisionForm(data)
    edit_form = None
    if not form.is_valid():
        return _task_errors(request, task, decision_form=form)
    edits = None
    if task.for_requester and form.cleaned_data["decision"] == "RESUBMIT":
        schema = statechart_for(task.instance.definition).form
        edit_form = request_form(schema, data=request.POST)
        if not edit_form.is_valid():
            return _task_errors(request, task, decision_form=form, edit_form=edit_form)
        edits = edit_form.context()
    signed_in_again = sso.fresh_sign_in(request)
    decision_data, arguments_problem = edited_arguments(request.POST, form.cleaned_data["decision"])
    if arguments_problem:
        return _task_errors(
            request,
            task,
            decision_form=form,
            arguments_text=request.POST.get("arguments", ""),
            arguments_errors=[arguments_problem],
        )
    try:
        result = task_decide(
            task_id=task.pk,
            event=form.cleaned_data["decision"],
            comment=form.cleaned_data["comment"],
            form=edits,
            data=decision_data,
            actor=request.user,
            now=timezone.now(),
            signing=form.signing(provider_at=signed_in_again),
        )
    except InvalidInput as exc:
        argument_errors = arguments_messages(exc.field_errors)
        if argument_errors:
            return _task_errors(
                request,
                task,
                decision_form=form,
                arguments_text=request.POST.get("arguments", ""),
                arguments_errors=argument_errors,
            )
        for field, errors in exc.field_errors.items():
            if edit_form is not None and field in edit_form.fields:
                edit_form.add_error(field, errors)
            else:
                form.add_error(field if field in DECISION_FIELD_ERRORS else None, errors)
        return _task_errors(request, task, decision_form=form, edit_form=edit_form)
    spec = statechart_for(task.instance.definition).state(task.state).task
    if signed_in_again is not None and spec is not None and spec.signature:
        sso.spend_fresh_sign_in(request)  # it signed this decision
    label = form.cleaned_data["decision"].replace("_", " ").lower()
    if result.moved:
        messages.success(request, f"Decided: {label}. The request moved on.")
    else:
        messages.success(request, f"Decided: {label}. Other approvals are still needed.")
    if task.for_requester:
        return redirect("request", instance_id=task.instance_id)
    if then_next is not None:
        return then_next.go(request, task)
    return redirect(_inbox_url(request))


@dataclass(frozen=True)
class _OpenNext:
    """ "Approve and open next": the inbox the task was opened from, and the rows listed after
    it there, read before the decision changes the list."""

    back: str
    tab: str
    filters: selectors.InboxFilters
    listed: list[int]

    @classmethod
    def plan(cls, request: HttpRequest, task: Task) -> _OpenNext:
        back = _inbox_url(request)
        now = timezone.now()
        form, tab, filters, _, _ = _inbox_state(request.user, QueryDict(urlsplit(back).query), now)
        start = ((form.cleaned_data.get("page") or 1) - 1) * PAGE_SIZE
        listed = selectors.rows_after(
            request.user, tab, filters, now, task=task, start=start, size=PAGE_SIZE
        )
        return cls(back, tab, filters, listed)

    def go(self, request: HttpRequest, task: Task) -> HttpResponse:
        following = selectors.next_task(
            request.user, self.tab, self.filters, timezone.now(), after=task, listed=self.listed
        )
        if following is not None:
            return redirect("task", task_id=following.pk)
        messages.info(request, "Nothing else waits in this tab.")
        return redirect(self.back)


def _task_errors(request: HttpRequest, task: Task, **forms: Any) -> HttpResponse:
    return render(request, "approvals/task.html", _task_context(request, task, **forms), status=400)


@_task_action
def task_delegate_view(request: HttpRequest, task: Task) -> HttpResponse:
    form = DelegateForm(request.POST)
    if form.is_valid():
        try:
            successor = task_delegate(
                task_id=task.pk,
                to_user_id=form.cleaned_data["to"].pk,
                comment=form.cleaned_data["comment"],
                actor=request.user,
                now=timezone.now(),
            )
        except InvalidInput as exc:
            for errors in exc.field_errors.values():
                form.add_error("to", errors)
        else:
            behalf = f" (covering for {successor.on_behalf_of})" if successor.on_behalf_of else ""
            messages.success(request, f"Delegated to {successor.assignee}{behalf}.")
            return redirect(_inbox_url(request))
    return _task_errors(request, task, delegate_form=form)


@_task_action
def task_retry_view(request: HttpRequest, task: Task) -> HttpResponse:
    """Manual review of a failed automated step: run it again."""
    failed_action_retry(
        task_id=task.pk,
        comment=request.POST.get("comment", "")[:500],
        actor=request.user,
        now=timezone.now(),
    )
    messages.success(request, "The step runs once more; this page shows how it went.")
    return redirect("task", task_id=task.pk)


@_task_action
def task_skip_view(request: HttpRequest, task: Task) -> HttpResponse:
    """Manual review: leave the failed step by one of its ways on."""
    try:
        failed_action_skip(
            task_id=task.pk,
            event=request.POST.get("event", ""),
            comment=request.POST.get("comment", "")[:500],
            actor=request.user,
            now=timezone.now(),
        )
    except InvalidInput as exc:
        return _task_errors(request, task, review_errors=exc.field_errors)
    messages.success(request, "The step was skipped; the request moved on.")
    return redirect("request", instance_id=task.instance_id)


@_task_action
def task_cancel_view(request: HttpRequest, task: Task) -> HttpResponse:
    """Manual review: the step cannot be done, so the request ends here."""
    try:
        failed_action_cancel(
            task_id=task.pk,
            reason=request.POST.get("reason", "")[:500],
            actor=request.user,
            now=timezone.now(),
        )
    except InvalidInput as exc:
        return _task_errors(request, task, review_errors=exc.field_errors)
    messages.success(request, "The request was cancelled.")
    return redirect("request", instance_id=task.instance_id)


@login_required
@require_safe
def user_search(request: HttpRequest) -> HttpResponse:
    """Up to ten active people matching a name, for the delegate box."""
    q = request.GET.get("q", "").strip()[:100]
    users = choosable_people().exclude(pk=request.user.pk)
    if q:
        for word in q.split()[:3]:
            users = users.filter(
                Q(username__icontains=word)
                | Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
            )
    found = users.order_by("first_name", "last_name", "username")[:10]
    return JsonResponse({"results": [{"username": u.username, "name": str(u)} for u in found]})


# ----- requests


@login_required
@require_safe
def request_list(request: HttpRequest) -> HttpResponse:
    form = RequestFilterForm(request.GET)
    if not form.is_valid():
        form = RequestFilterForm({})
        form.is_valid()
    q, status = form.cleaned_data["q"] or "", form.cleaned_data["status"] or ""
    page = form.cleaned_data["page"] or 1
    start = (page - 1) * PAGE_SIZE
    found = list(
        selectors.my_requests(request.user, q=q, status=status)[start : start + PAGE_SIZE + 1]
    )
    instances = found[:PAGE_SIZE]
    waiting = selectors.waiting_by_instance(instances)
    questions = selectors.open_questions_by_instance(instances)
    rows = [
        {
            "instance": instance,
            "state": selectors.state_label(instance, instance.state),
            "waiting": waiting.get(instance.pk, []),
            "questions": questions.get(instance.pk, 0),
        }
        for instance in instances
    ]
    context = {
        "form": form,
        "rows": rows,
        "filtered": bool(q or status),
        "statuses": selectors.REQUEST_STATUSES,
        "page": page,
        "has_next": len(found) > PAGE_SIZE,
    }
    template = "approvals/_requests_table.html" if request.headers.get("HX-Request") else None
    return render(request, template or "approvals/requests.html", context)


@login_required
@require_safe
def request_new(request: HttpRequest) -> HttpResponse:
    definitions = WorkflowDefinition.objects.filter(status=DefinitionStatus.PUBLISHED).order_by(
        "title"
    )
    return render(request, "approvals/request_new.html", {"definitions": definitions})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
@refusals_as_403
def request_start(request: HttpRequest, key: str) -> HttpResponse:
    definition = get_object_or_404(WorkflowDefinition, key=key, status=DefinitionStatus.PUBLISHED)
    schema = statechart_for(definition).form
    rules = form_rules(schema)
    artifact_errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = request_form(schema, data=request.POST)
        reference = ReferenceForm(request.POST)
        if form.is_valid() and reference.is_valid():
            uploads = [
                Upload(name=name, file=request.FILES[f"artifact_{name}"])
                for name in rules
                if f"artifact_{name}" in request.FILES
            ]
            try:
                instance = instance_start_with_artifacts(
                    definition_key=key,
                    uploads=uploads,
                    context=form.context(),
                    business_key=reference.cleaned_data["business_key"],
                    actor=request.user,
                    now=timezone.now(),
                )
            except InvalidInput as exc:
                errors = dict(exc.field_errors)
                for message in errors.pop("business_key", []):
                    reference.add_error("business_key", message)
                artifact_errors = {
                    k: errors.pop(k) for k in list(errors) if k.startswith("artifact_")
                }
                form.add_service_errors(errors)
            else:
                messages.success(request, f"Request “{instance.title}” submitted.")
                return redirect("request", instance_id=instance.pk)
        status = 400
    else:
        form, reference, status = request_form(schema), ReferenceForm(), 200
    return render(
        request,
        "approvals/request_form.html",
        {
            "definition": definition,
            "form": form,
            "reference_form": reference,
            "artifact_fields": [
                (rule, artifact_errors.get(f"artifact_{name}", [])) for name, rule in rules.items()
            ],
        },
        status=status,
    )


@login_required
@require_safe
def instance_detail(request: HttpRequest, instance_id: int) -> HttpResponse:
    try:
        instance = _visible_instance(request, instance_id)
    except Http404:
        return _retired_page(request, instance_id)
    context = {
        **_request_context(request, instance),
        "state": selectors.state_label(instance, instance.state),
        "can_withdraw": _may_withdraw(request, instance),
        "relatives": selectors.relatives(request.user, instance),
    }
    return _page_or_live_part(
        request, "approvals/instance.html", "approvals/_instance_page.html", context
    )


@login_required
@require_safe
def instance_diagram(request: HttpRequest, instance_id: int) -> HttpResponse:
    """The request's diagram alone, at its full size."""
    instance = _visible_instance(request, instance_id)
    return render(
        request,
        "approvals/diagram.html",
        {"instance": instance, "diagram": selectors.diagram(instance, reader=True)},
    )


def _retired_page(request: HttpRequest, instance_id: int) -> HttpResponse:
    """A request deleted at the end of its retention: 410 Gone with its tombstone to records
    managers and auditors; for everyone else the 404 of a request that never existed."""
    tombstone = RetiredRequest.objects.filter(pk=instance_id).first()
    if tombstone is None or not may_see_retention(request.user):
        raise Http404("No such request.")
    return render(
        request,
        "approvals/retired.html",
        {"tombstone": tombstone, "may_download": may_export_audit(request.user)},
        status=410,
    )


def _may_withdraw(request: HttpRequest, instance: WorkflowInstance) -> bool:
    return instance.is_active and instance.requester_id == request.user.pk


@login_required
@refusals_as_403
def instance_withdraw_view(request: HttpRequest, instance_id: int) -> HttpResponse:
    """GET asks the requester to confirm (from the request page or their own task alike);
    POST withdraws."""
    instance = _visible_instance(request, instance_id)
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405)
    if instance.requester_id != request.user.pk:
        raise NotAllowed("only the requester can withdraw a request")
    if request.method == "GET":
        if not instance.is_active:
            messages.warning(
                request, f"The request is already {instance.get_status_display().lower()}."
            )
            return redirect("request", instance_id=instance.pk)
        return render(request, "approvals/withdraw.html", {"instance": instance})
    try:
        instance_withdraw(
            instance_id=instance.pk,
            comment=request.POST.get("comment", "")[:5000],
            actor=request.user,
            now=timezone.now(),
        )
    except Conflict as exc:
        messages.warning(request, sentence(exc.message))
    else:
        messages.success(request, "Your request was withdrawn.")
    return redirect("request", instance_id=instance.pk)
