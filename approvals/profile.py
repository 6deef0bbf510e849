"""The profile page: who I am, my roles, my out-of-office periods, my Slack link, the
authenticator app I sign decisions with."""

from __future__ import annotations

import textwrap
from base64 import b32encode
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.absences import local_day
from accounts.forms import AbsenceForm, TimeZoneForm
from accounts.models import OutOfOffice
from approvals.integrations.slack.client import enabled as slack_enabled
from approvals.services import signatures
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
        **_signing_code_context(request.user),
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


def _signing_code_context(user: Any) -> dict[str, Any]:
    pending = signatures.pending_code_setup(user)
    return {
        "signing_code": signatures.has_code(user),
        "signing_code_setup": {
            "key": " ".join(textwrap.wrap(b32encode(pending.bin_key).decode(), 4)),
            "url": pending.config_url,
        }
        if pending is not None
        else None,
    }


@login_required
@require_POST
def signing_code_view(request: HttpRequest) -> HttpResponse:
    """POST step=start | confirm (code) | remove (password): the authenticator app whose code
    signing asks for, beside the password."""
    step = request.POST.get("step", "")
    try:
        if step == "start":
            signatures.code_setup_start(user=request.user)
            messages.success(request, "Add the key below to your authenticator app.")
        elif step == "confirm":
            signatures.code_setup_confirm(user=request.user, code=request.POST.get("code", ""))
            messages.success(request, "Your app is set up: signing asks for its code from now on.")
        elif step == "remove":
            signatures.code_remove(user=request.user, password=request.POST.get("password", ""))
            messages.success(request, "Removed: signing asks only for your password.")
        else:
            return HttpResponse("Unknown step: start, confirm or remove.", status=400)
    except InvalidInput as exc:
        messages.error(request, f"{exc.message[:1].upper()}{exc.message[1:]}.")
    return redirect(f"{reverse('profile')}#signing-code")
