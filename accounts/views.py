"""Sign-in pages and the profile page (roles, out-of-office)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.absences import absence_create, absence_delete, local_day
from accounts.demo import DEMO_PASSWORD, USERS
from accounts.forms import AbsenceForm
from accounts.models import OutOfOffice
from approvals.integrations.slack.client import enabled as slack_enabled
from approvals.integrations.slack.services import slack_identity_link, slack_identity_unlink
from approvals.services.errors import InvalidInput, NotAllowed


class LoginView(auth_views.LoginView):
    """Django's login; in development it also names the demo accounts."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # Demo passwords exist only when DEBUG is on (accounts.demo), so the hint does too.
        if settings.DEBUG:
            context["demo_usernames"] = [user.username for user in USERS]
            context["demo_password"] = DEMO_PASSWORD
        return context


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("inbox")


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """Who I am, my roles, and my out-of-office periods (POST adds one)."""
    form = AbsenceForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                absence = absence_create(
                    user_id=request.user.pk,
                    substitute_id=form.cleaned_data["substitute"].pk,
                    starts_on=form.cleaned_data["starts_on"],
                    ends_on=form.cleaned_data["ends_on"],
                    note=form.cleaned_data["note"],
                    actor=request.user,
                    now=timezone.now(),
                )
            except InvalidInput as exc:
                for field, errors in exc.field_errors.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"Saved: {absence}.")
                return redirect("profile")
        status = 400
    today = local_day(timezone.now())
    context = {
        "roles": request.user.groups.select_related("role").order_by("name"),
        "absences": OutOfOffice.objects.filter(
            user=request.user, ends_on__gte=today
        ).select_related("substitute"),
        "covering": OutOfOffice.objects.filter(
            substitute=request.user, ends_on__gte=today
        ).select_related("user"),
        "today": today,
        "absence_form": form,
        "slack_enabled": slack_enabled(),
    }
    return render(request, "accounts/profile.html", context, status=status)


@login_required
@require_POST
def slack_link_view(request: HttpRequest) -> HttpResponse:
    """Link (by e-mail, through Slack's API) or unlink the user's Slack identity."""
    if request.POST.get("action") == "unlink":
        slack_identity_unlink(actor=request.user)
        messages.success(request, "Slack unlinked: Signoff sends you nothing there.")
        return redirect("profile")
    try:
        slack_id = slack_identity_link(actor=request.user)
    except InvalidInput as exc:
        for errors in exc.field_errors.values():
            for error in errors:
                messages.error(request, error)
    else:
        messages.success(request, f"Linked to Slack member {slack_id}.")
    return redirect("profile")


@login_required
@require_POST
def absence_delete_view(request: HttpRequest, absence_id: int) -> HttpResponse:
    try:
        absence_delete(absence_id=absence_id, actor=request.user)
    except NotAllowed:
        # Someone else's period is as good as missing: its existence is not revealed.
        return HttpResponse("No such out-of-office period.", status=404)
    messages.success(request, "Out-of-office period removed.")
    return redirect("profile")
