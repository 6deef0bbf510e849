"""The notification settings page on the profile: per kind, the channels and at once or in a
digest; when the daily digest goes; quiet hours and days (in the person's time zone)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import Delivery, NotificationPreference, NotificationSchedule
from approvals.integrations.slack.client import enabled as slack_enabled
from approvals.models import NotificationKind
from approvals.notify.preferences import Choice, organisation_default
from approvals.services.errors import InvalidInput
from approvals.services.preferences import user_set_notification_preferences

DAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]
CHANNELS = ("email", "slack", "teams")
CHANNEL_NAMES = {"email": "e-mail", "slack": "Slack", "teams": "Teams"}


def channels_shown(user: Any) -> list[str]:
    """E-mail, Slack where this server is linked to it, Teams where the person has a webhook."""
    shown = ["email"] if settings.EMAIL_NOTIFICATIONS else []
    if slack_enabled():
        shown.append("slack")
    if settings.TEAMS_ENABLED and user.teams_webhook_url:
        shown.append("teams")
    return shown


class PreferencesForm(forms.Form):
    digest_time = forms.TimeField(label="Daily digest at", widget=forms.TimeInput(format="%H:%M"))
    quiet_from = forms.TimeField(
        label="Quiet from", required=False, widget=forms.TimeInput(format="%H:%M")
    )
    quiet_until = forms.TimeField(
        label="until", required=False, widget=forms.TimeInput(format="%H:%M")
    )
    quiet_days = forms.TypedMultipleChoiceField(
        label="Quiet all day on",
        choices=DAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, channels: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channels = channels
        for kind in NotificationKind:
            for channel in channels:
                self.fields[f"{kind.value}-{channel}"] = forms.BooleanField(
                    required=False, label=f"{kind.label}: {CHANNEL_NAMES[channel]}"
                )
            self.fields[f"{kind.value}-delivery"] = forms.ChoiceField(
                choices=Delivery.choices, label=f"{kind.label}: when"
            )

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "label": kind.label,
                "channels": [self[f"{kind.value}-{c}"] for c in self.channels],
                "delivery": self[f"{kind.value}-delivery"],
            }
            for kind in NotificationKind
        ]

    def kinds(self, current: dict[str, Choice]) -> dict[str, dict[str, Any]]:
        """What was chosen per kind; a channel not on the page keeps its value."""
        data = self.cleaned_data
        return {
            kind.value: {
                **{c: getattr(current[kind.value], c) for c in CHANNELS},
                **{c: data[f"{kind.value}-{c}"] for c in self.channels},
                "delivery": data[f"{kind.value}-delivery"],
            }
            for kind in NotificationKind
        }


def _current(user: Any) -> tuple[dict[str, Choice], NotificationSchedule]:
    own = {row.kind: row for row in NotificationPreference.objects.filter(user=user)}
    current = {
        kind.value: (
            Choice(
                email=own[kind.value].email,
                slack=own[kind.value].slack,
                teams=own[kind.value].teams,
                delivery=own[kind.value].delivery,
            )
            if kind.value in own
            else organisation_default(kind.value)
        )
        for kind in NotificationKind
    }
    schedule = NotificationSchedule.objects.filter(user=user).first() or NotificationSchedule()
    return current, schedule


def _initial(current: dict[str, Choice], schedule: NotificationSchedule) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "digest_time": schedule.digest_time,
        "quiet_from": schedule.quiet_from,
        "quiet_until": schedule.quiet_until,
        "quiet_days": list(schedule.quiet_days or []),
    }
    for kind, chosen in current.items():
        for channel in CHANNELS:
            initial[f"{kind}-{channel}"] = getattr(chosen, channel)
        initial[f"{kind}-delivery"] = chosen.delivery
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def notification_preferences(request: HttpRequest) -> HttpResponse:
    current, schedule = _current(request.user)
    channels = channels_shown(request.user)
    form = PreferencesForm(
        request.POST or None, initial=_initial(current, schedule), channels=channels
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                user_set_notification_preferences(
                    user_id=request.user.pk,
                    kinds=form.kinds(current),
                    digest_time=data["digest_time"],
                    quiet_from=data["quiet_from"],
                    quiet_until=data["quiet_until"],
                    quiet_days=data["quiet_days"],
                    actor=request.user,
                )
            except InvalidInput as exc:
                for field, errors in exc.field_errors.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, "Notification settings saved.")
                return redirect("notification_preferences")
    context = {
        "form": form,
        "channels": channels,
        "zone": request.user.time_zone or settings.TIME_ZONE,
    }
    return render(request, "accounts/notification_preferences.html", context, status=status)
