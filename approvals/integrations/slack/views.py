"""Slack's interactivity endpoint: button presses and the comment modal.

Thin, like every view: verify the signature (slack_sdk's SignatureVerifier: v0 HMAC-SHA256 over
the raw body, a five-minute window, constant-time compare), parse, call one service, answer at
once (Slack gives up after three seconds); the message is updated afterwards by Celery through
the interaction's response_url.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier

from approvals.integrations.slack.blocks import (
    COMMENT_CALLBACK,
    DECIDE_ACTION,
    comment_modal,
    message_blocks,
    needs_comment,
)
from approvals.integrations.slack.client import web_client
from approvals.integrations.slack.services import (
    slack_identity_link,
    slack_identity_unlink,
    slack_interaction_decide,
)
from approvals.models import SlackMessage
from approvals.services.errors import InvalidInput

logger = logging.getLogger(__name__)


def _bad(reason: str) -> HttpResponse:
    return HttpResponse(reason, status=400, content_type="text/plain")


@csrf_exempt  # Slack signs its requests instead; there is no session and no CSRF cookie.
@require_POST
def interactivity(request: HttpRequest) -> HttpResponse:
    if not settings.SLACK_SIGNING_SECRET:
        return HttpResponse("Slack is not configured", status=404, content_type="text/plain")
    verifier = SignatureVerifier(settings.SLACK_SIGNING_SECRET)
    if not verifier.is_valid_request(request.body, dict(request.headers)):
        return HttpResponse("invalid or expired signature", status=401, content_type="text/plain")
    try:
        payload = json.loads(request.POST.get("payload", ""))
    except ValueError:
        return _bad("payload must be JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), dict):
        return _bad("payload has no user")
    kind = payload.get("type")
    if kind == "block_actions":
        return _block_actions(payload)
    if kind == "view_submission":
        return _view_submission(payload)
    return HttpResponse(status=200)  # other interactions (shortcuts...) are not ours


def _decision_of(raw: Any) -> tuple[int, str] | None:
    try:
        value = json.loads(raw)
        task_id, event = int(value["task"]), str(value["event"])
    except (TypeError, ValueError, KeyError):
        return None
    return (task_id, event) if event else None


def _block_actions(payload: dict[str, Any]) -> HttpResponse:
    actions = payload.get("actions") or []
    action = actions[0] if actions and isinstance(actions[0], dict) else {}
    if not str(action.get("action_id", "")).startswith(DECIDE_ACTION):
        return HttpResponse(status=200)  # "Open in Signoff" and the like: nothing to do
    decision = _decision_of(action.get("value"))
    if decision is None:
        return _bad("the button's value is not a decision")
    task_id, event = decision
    slack_user = str(payload["user"].get("id", ""))
    if not slack_user or not action.get("action_ts"):
        return _bad("the action has no user or action_ts")
    container = payload.get("container") or {}
    metadata = {
        "response_url": payload.get("response_url", ""),
        "channel": container.get("channel_id", ""),
        "ts": container.get("message_ts", ""),
    }
    if needs_comment(event):
        # The reason is asked in a modal; the decision comes with its submission.
        try:
            web_client(timeout=2).views_open(
                trigger_id=payload.get("trigger_id", ""),
                view=comment_modal(task_id=task_id, event=event, metadata=metadata),
            )
        except (SlackApiError, SlackClientError, OSError) as exc:
            logger.warning("views.open failed: %s", exc)
        return HttpResponse(status=200)
    key = "action:{}:{}:{}".format(
        slack_user, action.get("action_ts", ""), payload.get("trigger_id", "")
    )
    slack_interaction_decide(
        key=key,
        slack_user_id=slack_user,
        task_id=task_id,
        event=event,
        response_url=str(metadata["response_url"]),
        original_blocks=(payload.get("message") or {}).get("blocks"),
        now=timezone.now(),
    )
    return HttpResponse(status=200)


def _view_submission(payload: dict[str, Any]) -> HttpResponse:
    view = payload.get("view") or {}
    if view.get("callback_id") != COMMENT_CALLBACK:
        return HttpResponse(status=200)
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return _bad("private_metadata must be JSON")
    decision = _decision_of(json.dumps(metadata)) if isinstance(metadata, dict) else None
    if decision is None:
        return _bad("the modal does not name a decision")
    values = (view.get("state") or {}).get("values") or {}
    comment = str(((values.get("comment") or {}).get("comment") or {}).get("value") or "").strip()
    if not comment:
        return JsonResponse(
            {"response_action": "errors", "errors": {"comment": "Say why (required)."}}
        )
    task_id, event = decision
    stored = (
        SlackMessage.objects.filter(
            channel_id=metadata.get("channel", ""), ts=metadata.get("ts", "")
        )
        .exclude(ts="")
        .first()
    )
    blocks = message_blocks(stored)[1] if stored is not None else None
    slack_interaction_decide(
        key=f"view:{view.get('id', '')}:{view.get('hash', '')}",
        slack_user_id=str(payload["user"].get("id", "")),
        task_id=task_id,
        event=event,
        comment=comment,
        response_url=str(metadata.get("response_url", "")),
        original_blocks=blocks,
        now=timezone.now(),
    )
    return HttpResponse(status=200)


@login_required
@require_POST
def slack_link_view(request: HttpRequest) -> HttpResponse:
    """Link (by e-mail, through Slack's API) or unlink the user's Slack identity."""
    if request.POST.get("action") == "unlink":
        slack_identity_unlink(actor=request.user)
        messages.success(request, "Slack unlinked: Signoff sends you nothing there.")
        return redirect("profile")
    try:
        slack_id = slack_identity_link(actor=request.user)
    except InvalidInput as exc:
        for errors in exc.field_errors.values():
            for error in errors:
                messages.error(request, error)
    else:
        messages.success(request, f"Linked to Slack member {slack_id}.")
    return redirect("profile")
