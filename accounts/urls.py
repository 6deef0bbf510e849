"""Sign-in, sign-out and password change (the profile page's URLs are approvals' and Slack's,
under the same accounts/ prefix).

Listed one by one rather than including django.contrib.auth.urls: that would also publish the
password-reset pages, which need outgoing e-mail that is not configured yet.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.views import LoginView

urlpatterns = [
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
