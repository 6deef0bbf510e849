"""Sign-in pages (the profile page is `approvals/profile.py`: it shows what approvals adds to a
person: out-of-office, Slack). Sign-in with the identity provider is mozilla-django-oidc's two
views, turned on by OIDC_ISSUER; what they decide is in accounts/sso.py."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from mozilla_django_oidc import views as oidc_views

from accounts import sso
from accounts.backends import password_allowed
from accounts.demo import DEMO_PASSWORD, USERS

logger = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    """Django's login; in development it also names the demo accounts. With single sign-on it
    offers the provider's button, and with LOCAL_LOGIN=false only that (the break-glass user
    still signs in with a password posted here)."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["sso_enabled"] = sso.enabled()
        # ?break-glass shows the password form to the break-glass user when passwords are off.
        context["local_login"] = sso.local_login_allowed() or "break-glass" in self.request.GET
        # Demo passwords exist only when DEBUG is on (accounts.demo), so the hint does too.
        if settings.DEBUG and context["local_login"]:
            context["demo_usernames"] = [user.username for user in USERS]
            context["demo_password"] = DEMO_PASSWORD
        return context

    def form_invalid(self, form: Any) -> HttpResponse:
        if not password_allowed(form.data.get("username")):
            form.errors.clear()
            form.add_error(
                None, "Passwords are turned off here: sign in with the identity provider."
            )
        return super().form_invalid(form)


class ProviderSignIn(oidc_views.OIDCAuthenticationRequestView):
    """Sends the browser to the provider with state, nonce and a PKCE challenge."""

    get_settings = staticmethod(sso.oidc_setting)

    def __init__(self, **kwargs: Any) -> None:
        # View's __init__ only: the library's reads the provider's endpoints, which here wait
        # for get() (discovery may fail, and must not be tried while single sign-on is off).
        super(oidc_views.OIDCAuthenticationRequestView, self).__init__(**kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso.enabled():
            raise Http404("single sign-on is off")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = sso.oidc_setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except sso.ProviderUnavailable as exc:
            return _refused(request, str(exc), status=503)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
        return super().get(request)

    def get_extra_params(self, request: HttpRequest) -> dict[str, str]:
        """With ?reauth=1, for someone signed in: the provider asks for their password again
        (to sign a decision), whatever session it has of them."""
        params = dict(super().get_extra_params(request))
        if request.GET.get("reauth") and request.user.is_authenticated:
            sso.start_reauth(request)
            params.update(prompt="login", max_age="0")
        return params


class ProviderCallback(oidc_views.OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back: the code is exchanged and checked (state,
    nonce, PKCE, the ID token's signature and audience), then the person signed in."""

    get_settings = staticmethod(sso.oidc_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso.enabled():
            raise Http404("single sign-on is off")
        try:
            return super().get(request)
        except sso.SignInRefused as exc:
            logger.warning("sign-in with the identity provider refused: %s", exc)
            return _refused(request, str(exc))
        except SuspiciousOperation as exc:
            logger.warning("sign-in with the identity provider refused: %s", exc)
            return _refused(
                request,
                "This answer from the identity provider was already used, is not for this "
                "browser, or does not verify; start again.",
            )

    def login_failure(self) -> HttpResponse:
        return _refused(self.request, "Sign-in with the identity provider did not complete.")


def _refused(request: HttpRequest, reason: str, *, status: int = 403) -> HttpResponse:
    return render(request, "registration/sso_refused.html", {"reason": reason}, status=status)


class LogoutView(auth_views.LogoutView):
    """Ends the session here and, for someone who signed in with a provider that offers it, at
    the provider too (RP-initiated logout)."""

    provider_logout: str | None = None

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.provider_logout = sso.end_session_url(request)
        return super().post(request, *args, **kwargs)

    def get_success_url(self) -> str:
        return self.provider_logout or super().get_success_url()


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("inbox")
