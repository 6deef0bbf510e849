"""The inbound webhook endpoint: parse the headers, call the one service, answer in JSON."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from approvals.api.errors import error_body
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.inbound_hooks import (
    BadBody,
    BadSignature,
    HookNotFound,
    inbound_hook_receive,
)


@csrf_exempt  # signed with the hook's secret instead; there is no session and no CSRF cookie
@require_POST
def inbound_hook(request: HttpRequest, workflow_key: str, hook_id: str) -> JsonResponse:
    try:
        outcome = inbound_hook_receive(
            workflow_key=workflow_key,
            hook_id=hook_id,
            body=request.body,
            timestamp=request.headers.get("X-Signoff-Timestamp", ""),
            signature=request.headers.get("X-Signoff-Signature", ""),
            delivery_id=request.headers.get("X-Signoff-Delivery", ""),
            now=timezone.now(),
        )
    except HookNotFound as exc:
        return JsonResponse(error_body("not_found", exc.message), status=404)
    except BadSignature as exc:
        return JsonResponse(error_body("bad_signature", exc.message), status=401)
    except NotAllowed as exc:
        return JsonResponse(error_body("not_allowed", exc.message), status=403)
    except BadBody as exc:
        return JsonResponse(error_body("invalid", exc.message, fields=exc.field_errors), status=400)
    except InvalidInput as exc:
        return JsonResponse(
            error_body("unprocessable", exc.message, fields=exc.field_errors or None), status=422
        )
    except Conflict as exc:
        return JsonResponse(
            error_body(
                "conflict",
                exc.message,
                current_state=exc.current_state or None,
                accepted_events=exc.accepted_events or None,
            ),
            status=409,
        )
    instance = outcome.instance
    return JsonResponse(
        {"request": instance.pk, "state": instance.state, "status": instance.status},
        status=201 if outcome.started else 200,
    )
