"""The Slack Web API client and the identity mapping between Slack members and our users."""

from __future__ import annotations

import logging
from typing import Any
from urllib.request import Request

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from approvals.integrations.http import RedirectRefused, api_opener

logger = logging.getLogger(__name__)

# A lookup that found nobody is not asked again for a while (Slack rate-limits lookups).
MISS_SECONDS = 3600


class _SlackClient(WebClient):
    """slack_sdk's client with its requests made by our one HTTP client, which never follows a
    redirect (urllib's would carry the bot token to wherever Slack's address pointed). This is
    the method slack_sdk (pinned) sends each request with; a test makes Slack answer 302."""

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        try:
            response = api_opener(proxy=self.proxy, tls=self.ssl).open(req, timeout=self.timeout)
        except RedirectRefused as exc:
            raise SlackRequestError(f"Slack's API answered HTTP {exc.code} {exc.reason}") from None
        with response:
            charset = response.headers.get_content_charset() or "utf-8"
            body = response.read().decode(charset)
        return {"status": response.status, "headers": response.headers, "body": body}


def web_client(*, timeout: int = 10) -> WebClient:
    return _SlackClient(
        token=settings.SLACK_BOT_TOKEN or None, base_url=settings.SLACK_API_URL, timeout=timeout
    )


def enabled() -> bool:
    return bool(settings.SLACK_BOT_TOKEN)


def miss_key(email: str) -> str:
    """Where a "no Slack member has this e-mail" answer is remembered for MISS_SECONDS."""
    return f"slack:miss:{email.lower()}"


def slack_id_for(user: Any, client: WebClient) -> str | None:
    """The member id to message: the profile's, else found by e-mail (users.lookupByEmail) and
    kept on the user. None when Slack knows no such person. SlackApiError for other failures."""
    if user.slack_user_id:
        return user.slack_user_id
    if not user.email:
        return None
    if cache.get(miss_key(user.email)):
        return None
    try:
        response = client.users_lookupByEmail(email=user.email)
    except SlackApiError as exc:
        if exc.response.get("error") == "users_not_found":
            cache.set(miss_key(user.email), True, MISS_SECONDS)
            return None
        raise
    slack_id = (response.get("user") or {}).get("id")
    if slack_id:
        type(user).objects.filter(pk=user.pk, slack_user_id="").update(slack_user_id=slack_id)
        user.slack_user_id = slack_id
    return slack_id


def user_for_slack_id(slack_id: str, client: WebClient | None = None) -> Any:
    """Our active user for a Slack member: by the stored id, else by the e-mail Slack holds for
    them (users.info), when exactly one active user has it. None otherwise."""
    User = get_user_model()
    if not slack_id:
        return None
    found = list(User.objects.filter(slack_user_id=slack_id)[:2])
    if len(found) == 1:
        return found[0] if found[0].is_active else None
    if found or client is None or not enabled():
        return None
    try:
        info = client.users_info(user=slack_id)
    except SlackApiError as exc:
        logger.warning("users.info %s failed: %s", slack_id, exc.response.get("error"))
        return None
    email = ((info.get("user") or {}).get("profile") or {}).get("email") or ""
    if not email:
        return None
    matches = list(User.objects.filter(email__iexact=email, is_active=True)[:2])
    if len(matches) != 1 or matches[0].slack_user_id:
        return None
    user = matches[0]
    User.objects.filter(pk=user.pk, slack_user_id="").update(slack_user_id=slack_id)
    user.slack_user_id = slack_id
    return user
