"""Posting and editing comments from the request and task pages (thin: one service each)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from approvals.models import Comment, WorkflowInstance
from approvals.permissions import can_view_instance
from approvals.request_schema import sentence
from approvals.services.discussion import comment_add, comment_edit
from approvals.services.errors import InvalidInput, NotAllowed
from approvals.views import refusals_as_403


def _visible_instance(request: HttpRequest, instance_id: int) -> WorkflowInstance:
    instance = get_object_or_404(WorkflowInstance, pk=instance_id)
    if not can_view_instance(request.user, instance):
        raise Http404("No such request.")
    return instance


def _back(request: HttpRequest, instance_id: int) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(f"{target}#discussion")
    return redirect(f"/requests/{instance_id}/#discussion")


def _refused(request: HttpRequest, exc: InvalidInput) -> None:
    details = [m for ms in exc.field_errors.values() for m in ms] or [sentence(exc.message)]
    messages.error(request, "Not posted: " + " ".join(details))


@login_required
@require_POST
@refusals_as_403
def comment_post(request: HttpRequest, instance_id: int) -> HttpResponse:
    instance = _visible_instance(request, instance_id)
    reply_to = request.POST.get("reply_to", "")
    try:
        comment_add(
            instance_id=instance.pk,
            body=request.POST.get("body", ""),
            reply_to=int(reply_to) if reply_to.isdigit() else None,
            question=request.POST.get("question") == "on",
            actor=request.user,
            now=timezone.now(),
        )
    except InvalidInput as exc:
        _refused(request, exc)
    else:
        messages.success(request, "Comment posted.")
    return _back(request, instance.pk)


@login_required
@require_POST
def comment_edit_view(request: HttpRequest, instance_id: int, comment_id: int) -> HttpResponse:
    instance = _visible_instance(request, instance_id)
    get_object_or_404(Comment, pk=comment_id, instance=instance)
    try:
        comment_edit(
            comment_id=comment_id,
            body=request.POST.get("body", ""),
            actor=request.user,
            now=timezone.now(),
        )
    except InvalidInput as exc:
        _refused(request, exc)
    except NotAllowed as exc:
        messages.error(request, "Not changed: " + sentence(exc.message))
    else:
        messages.success(request, "Comment changed.")
    return _back(request, instance.pk)
