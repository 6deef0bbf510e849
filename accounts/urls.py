"""Sign-in (with a password or the identity provider), sign-out and password change (the
profile page's URLs are approvals' and Slack's, under the same accounts/ prefix).

Listed one by one rather than including django.contrib.auth.urls: that would also publish the
password-reset pages, which need outgoing e-mail that is not configured yet.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.views import LoginView, LogoutView, ProviderCallback, ProviderSignIn

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    # Single sign-on (404 while OIDC_ISSUER is unset); mozilla-django-oidc's URL names.
    path("oidc/authenticate/", ProviderSignIn.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", ProviderCallback.as_view(), name="oidc_authentication_callback"),
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
