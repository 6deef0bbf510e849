"""Sign-in throttling with django-axes (README, "Sign-in throttling"): after AXES_FAILURE_LIMIT
wrong passwords for one username, or from one address, within AXES_COOLOFF_TIME, every sign-in
for that username or from that address is refused, right password or not, until the oldest of
those failures is AXES_COOLOFF_TIME old. The sign-in page and the admin's both go through
Django's authenticate(), which axes watches; API tokens do not, and are not throttled here.

What axes leaves to the project: where the client's address comes from, the page that says when
to try again, the line in the security log, and which failures a successful sign-in forgets.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from datetime import datetime
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

security_log = logging.getLogger("signoff.security")


def client_address(request: HttpRequest) -> str | None:
    """The address a sign-in comes from. Behind TRUSTED_PROXY_COUNT reverse proxies, each of
    which appends the address it was called from to X-Forwarded-For, that is the entry the
    outermost proxy wrote; anything further left was written by the client and may be forged."""
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    if not proxies:
        return remote
    forwarded = [
        entry.strip()
        for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if entry.strip()
    ]
    if len(forwarded) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return remote


class LoginAttempts(AxesDatabaseHandler):
    """axes' database handler (the attempts are shared by every web process and listed in the
    admin), except for what a successful sign-in forgets."""

    def reset_user_attempts(self, request: HttpRequest, credentials: dict | None = None) -> int:
        # Only the failures of the user who just proved their password. axes would also forget
        # every failure from the same address, so that anyone with an account of their own
        # could sign in between guesses at someone else's password and never be locked out.
        username = get_client_username(request, credentials)
        deleted, _ = AccessAttempt.objects.filter(username=username).delete()
        return deleted


def locked_until(request: HttpRequest, credentials: dict | None) -> datetime:
    """When the lockout that refused this request ends: for the username and for the address,
    the failures inside the cool-off window are summed from the newest; the lock lasts until the
    failure that reached the limit leaves the window (it is counted up to that instant)."""
    cool_off = get_cool_off(request)
    limit = get_failure_limit(request, credentials)
    ends = []
    for attempts in AxesProxyHandler.get_implementation().get_user_attempts(request, credentials):
        failures = 0
        for attempt_time, count in attempts.order_by("-attempt_time").values_list(
            "attempt_time", "failures_since_start"
        ):
            failures += count
            if failures >= limit:
                ends.append(attempt_time + cool_off)
                break
    return max(ends, default=timezone.now() + cool_off)


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: dict | None = None
) -> HttpResponse:
    """The page a refused sign-in gets (AXES_LOCKOUT_CALLABLE): 429, with when to try again.

    The credentials are read from the request, where axes keeps them: its asynchronous
    middleware passes them in the place of the original response."""
    credentials = getattr(request, "axes_credentials", None)
    until = locked_until(request, credentials)
    remaining = max(0.0, (until - timezone.now()).total_seconds())
    response = render(
        request,
        "registration/locked_out.html",
        {"locked_until": until, "minutes": max(1, math.ceil(remaining / 60))},
        status=429,
    )
    # The failure that reached the limit still counts at `until` itself: a second past it.
    response["Retry-After"] = str(int(remaining) + 1)
    return response


@receiver(user_locked_out)
def log_lockout(
    sender: Any, request: HttpRequest, username: str | None, ip_address: str | None, **_: Any
) -> None:
    """Each sign-in refused by a lockout, and the one that started it, in the security log."""
    until = locked_until(request, getattr(request, "axes_credentials", None))
    security_log.warning(
        "sign-in locked out: username=%r address=%s path=%s until=%s",
        username,
        ip_address,
        request.path,
        until.isoformat(timespec="seconds"),
    )
