"""Sign-in pages (the profile page is `approvals/profile.py`: it shows what approvals adds to a
person: out-of-office, Slack)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.demo import DEMO_PASSWORD, USERS


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
