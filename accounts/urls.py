"""Sign-in, sign-out and password change.

Listed one by one rather than including django.contrib.auth.urls: that would also publish the
password-reset pages, which need outgoing e-mail that is not configured yet.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.views import LoginView, absence_delete_view, profile, slack_link_view

urlpatterns = [
    path("profile/", profile, name="profile"),
    path("profile/slack/", slack_link_view, name="slack_link"),
    path(
        "out-of-office/<int:absence_id>/delete/",
        absence_delete_view,
        name="absence_delete",
    ),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password_change/",
        auth_views.PasswordChangeView.as_view(template_name="accounts/password_change_form.html"),
        name="password_change",
    ),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/password_change_done.html"
        ),
        name="password_change_done",
    ),
]
