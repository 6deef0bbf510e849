"""The notifications page: what I was told, newest first, with mark read / mark all read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from approvals.models import Notification
from approvals.notify.facts import unread_count
from approvals.notify.grouping import groups
from approvals.notify.push import notification_path
from approvals.notify.services import notifications_mark_read

PAGE_SIZE = 30


@require_safe
@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    only_unread = request.GET.get("show") == "unread"
    query = Notification.objects.filter(recipient=request.user).select_related("actor")
    if only_unread:
        query = query.filter(read_at__isnull=True)
    page = Paginator(query.order_by("-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    for item in page:
        item.url = notification_path(item)
    return render(
        request,
        "notifications/list.html",
        {
            "page": page,
            "groups": groups(page),
            "only_unread": only_unread,
            "unread": unread_count(request.user),
        },
    )


def _answer(request: HttpRequest) -> HttpResponse:
    """JSON for the page's script (fetch), a redirect back for a plain form."""
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"unread": unread_count(request.user)})
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = "notifications"
    return redirect(back)


@require_POST
@login_required
def notification_mark_read(request: HttpRequest) -> HttpResponse:
    """POST ids=1&ids=2 (or all=1). Ids that are not the user's are ignored."""
    if request.POST.get("all"):
        ids = None
    else:
        try:
            ids = [int(i) for i in request.POST.getlist("ids")]
        except ValueError:
            return JsonResponse({"error": "ids must be numbers"}, status=400)
        if not ids:
            return JsonResponse({"error": "give ids or all=1"}, status=400)
    notifications_mark_read(actor=request.user, ids=ids, now=timezone.now())
    return _answer(request)


@require_POST
@login_required
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one read and go where it points (a POST: following a link never changes state)."""
    item = get_object_or_404(Notification, pk=pk, recipient=request.user)
    notifications_mark_read(actor=request.user, ids=[item.pk], now=timezone.now())
    return redirect(notification_path(item))
