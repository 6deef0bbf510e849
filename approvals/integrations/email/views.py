"""The page a decision link in an e-mail opens. GET only shows it (a mail scanner or a link
prefetcher that follows the link changes nothing); its one POST button decides, through the
same service and permissions as the task page. The link is the recipient's: signed out, they
sign in first; signed in as someone else, they are refused."""

from __future__ import annotations

import base64
import hmac
import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from approvals.formatting import reader_time_zone
from approvals.integrations.email import replies
from approvals.integrations.email.links import BadLink, ExpiredLink, LinkClaim, read_token
from approvals.integrations.email.models import OutgoingEmail
from approvals.integrations.email.render import fields, task_events
from approvals.integrations.email.services import comment_from_reply, email_link_decide
from approvals.machine.words import event_label
from approvals.models import Task
from approvals.permissions import can_view_task, task_refusal
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.task_work import EVENTS_NEEDING_COMMENT, MAX_COMMENT, describe_closed

TEMPLATE = "email/decide.html"


class LinkDecisionForm(forms.Form):
    comment = forms.CharField(
        required=False,
        max_length=MAX_COMMENT,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Comment (the requester sees it)",
    )


def _problem(
    request: HttpRequest, status: int, text: str, task: Task | None = None
) -> HttpResponse:
    return render(request, TEMPLATE, {"problem": text, "task": task}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def email_decide(request: HttpRequest, token: str) -> HttpResponse:
    reader_time_zone(request)
    now = timezone.now()
    try:
        claim = read_token(token, now=now)
    except BadLink:
        return _problem(request, 404, "This link is not valid: it may have been cut or changed.")
    except ExpiredLink:
        return _problem(request, 410, "This link has expired. Open the task in Signoff to decide.")
    if claim.user_id != request.user.pk:
        # Whose it is and what it is about stay untold.
        return _problem(
            request,
            403,
            "This link was sent to someone else. Sign in as them, or open your own inbox.",
        )
    email = (
        OutgoingEmail.objects.filter(
            pk=claim.email_id, recipient_id=claim.user_id, task_id=claim.task_id
        )
        .select_related("task__instance__definition", "task__instance__requester")
        .first()
    )
    task = email.task if email is not None else None
    if task is None or not can_view_task(request.user, task):
        return _problem(
            request, 404, "This link is not valid any more: its task is not yours to see."
        )
    if email.link_used_at is not None:
        return _closed(request, task, "This link was already used")
    if not task.is_live:
        return _closed(request, task, "This task is closed")
    if claim.event not in task_events(task):
        return _problem(request, 404, "This link is not valid for this step.", task)
    refusal = task_refusal(request.user, task, task.instance)
    if refusal:
        return _problem(request, 403, f"You cannot decide this task: {refusal}.", task)
    form = LinkDecisionForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            outcome = _decide(request, claim, task, form)
            if outcome is not None:
                return outcome
    return render(
        request,
        TEMPLATE,
        {
            "task": task,
            "instance": task.instance,
            "fields": fields(task.instance),
            "event": claim.event,
            "label": event_label(claim.event),
            "needs_comment": claim.event in EVENTS_NEEDING_COMMENT,
            "form": form,
        },
        status=status,
    )


def _decide(
    request: HttpRequest, claim: LinkClaim, task: Task, form: LinkDecisionForm
) -> HttpResponse | None:
    """The decision, or None with the form's errors."""
    try:
        result = email_link_decide(
            claim=claim,
            actor=request.user,
            comment=form.cleaned_data["comment"],
            now=timezone.now(),
        )
    except InvalidInput as exc:
        for field, errors in exc.field_errors.items():
            form.add_error("comment" if field == "comment" else None, errors)
        if not exc.field_errors:
            form.add_error(None, exc.message[:1].upper() + exc.message[1:] + ".")
        return None
    except NotAllowed as exc:
        return _problem(request, 403, f"You cannot decide this task: {exc.message}.", task)
    except Conflict as exc:
        task.refresh_from_db()
        return _closed(request, task, exc.message[:1].upper() + exc.message[1:])
    label = event_label(claim.event)
    more = "The request moved on." if result.moved else "Other approvals are still needed."
    messages.success(request, f"Decided: {label}. {more}")
    return redirect("request", instance_id=task.instance_id)


def _closed(request: HttpRequest, task: Task, why: str) -> HttpResponse:
    closed = describe_closed(task) if not task.is_live else ""
    text = f"{why}: {closed}." if closed else f"{why}."
    return _problem(request, 409, text, task)


@csrf_exempt
@require_POST
def email_inbound(request: HttpRequest) -> HttpResponse:
    """The mail provider's inbound webhook (Postmark's JSON), HTTP Basic with
    INBOUND_EMAIL_SECRET as the password: a reply becomes a comment. 404 while it is unset;
    403 for what must not be retried (not our address, not its person, not allowed)."""
    if not replies.enabled():
        raise Http404("replies by e-mail are off")
    if not _inbound_authorized(request):
        response = JsonResponse({"detail": "wrong or missing credentials"}, status=401)
        response["WWW-Authenticate"] = 'Basic realm="signoff-inbound"'
        return response
    try:
        payload = json.loads(request.body)
    except ValueError:
        return JsonResponse({"detail": "the body is not JSON"}, status=400)
    try:
        comment = comment_from_reply(reply=replies.Reply.from_postmark(payload), now=timezone.now())
    except InvalidInput as exc:
        return JsonResponse({"detail": exc.message, "errors": exc.field_errors}, status=400)
    except NotAllowed as exc:
        return JsonResponse({"detail": exc.message}, status=403)
    return JsonResponse({"comment": comment.pk, "instance": comment.instance_id})


def _inbound_authorized(request: HttpRequest) -> bool:
    kind, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "basic":
        return False
    try:
        _, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(password.encode(), settings.INBOUND_EMAIL_SECRET.encode())
