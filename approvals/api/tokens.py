"""The "API tokens" page: a user makes, sees and revokes their own tokens."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from approvals.models import ApiToken
from approvals.services.api_tokens import token_create, token_revoke
from approvals.services.errors import InvalidInput, NotAllowed

EXPIRY_CHOICES = [("", "Never"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    context: dict[str, object] = {"expiry_choices": EXPIRY_CHOICES, "errors": {}}
    if request.method == "POST" and request.POST.get("action") == "revoke":
        try:
            token = token_revoke(
                token_id=_int(request.POST.get("token")), actor=request.user, now=now
            )
        except NotAllowed:
            messages.error(request, "No such token.")
        else:
            messages.success(request, f"Token “{token.name}” revoked; it no longer works.")
        return redirect("api_tokens")
    if request.method == "POST":
        days = request.POST.get("expires", "")
        name = request.POST.get("name", "")
        try:
            if days not in {value for value, _ in EXPIRY_CHOICES}:
                raise InvalidInput("bad expiry", {"expires": ["Choose one of the options."]})
            token, plaintext = token_create(
                user=request.user,
                name=name,
                actor=request.user,
                now=now,
                expires_at=now + timedelta(days=int(days)) if days else None,
            )
        except InvalidInput as exc:
            context.update(errors=exc.field_errors, name=name, expires=days)
        else:
            # Rendered, not redirected: the plaintext must not travel through the session or a
            # message cookie, and never_cache keeps it out of the browser's cache.
            context.update(new_token=token, plaintext=plaintext)
    context["tokens"] = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True)
    context["now"] = now
    status = 400 if context["errors"] else 200
    return render(request, "api/tokens.html", context, status=status)


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return 0
