"""The profile page: who I am, my roles, my out-of-office periods, my Slack link."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.absences import local_day
from accounts.forms import AbsenceForm, TimeZoneForm
from accounts.models import OutOfOffice
from approvals.integrations.slack.client import enabled as slack_enabled
from approvals.services.absences import absence_create, absence_delete
from approvals.services.errors import InvalidInput, NotAllowed
from approvals.services.preferences import user_set_time_zone


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
        "time_zone_form": TimeZoneForm(
            initial={"time_zone": request.user.time_zone}, site_zone=settings.TIME_ZONE
        ),
        "slack_enabled": slack_enabled(),
    }
    return render(request, "accounts/profile.html", context, status=status)


@login_required
@require_POST
def time_zone_view(request: HttpRequest) -> HttpResponse:
    """POST time_zone: the zone my dates are shown in ('' for the site's)."""
    form = TimeZoneForm(request.POST, site_zone=settings.TIME_ZONE)
    if not form.is_valid():
        messages.error(request, "Choose a time zone from the list.")
        return redirect("profile")
    try:
        user = user_set_time_zone(
            user_id=request.user.pk, time_zone=form.cleaned_data["time_zone"], actor=request.user
        )
    except InvalidInput as exc:
        messages.error(request, " ".join(exc.field_errors.get("time_zone", [exc.message])))
        return redirect("profile")
    messages.success(request, f"Dates are now shown in {user.time_zone or settings.TIME_ZONE}.")
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
