"""`POST /api/v1/callbacks/<token>/success|failure|heartbeat`: an outside system reports on a
callback step (approvals/services/callbacks.py). The token is the credential: no other
authentication, and an unknown token is a 404 like any other."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.decorators import throttle_classes as throttled_by
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from approvals.api.errors import workflow_error_response
from approvals.api.throttling import WriteThrottle
from approvals.api.views import _errors
from approvals.services.callbacks import OUTCOMES, callback_report
from approvals.services.errors import WorkflowError


class CallbackReport(serializers.Serializer):
    output = serializers.JSONField(
        required=False, help_text="success: what the step returns, an object (into the context)."
    )
    error = serializers.CharField(
        required=False, max_length=2000, help_text="failure: what went wrong."
    )


class CallbackAnswer(serializers.Serializer):
    instance = serializers.IntegerField()
    state = serializers.CharField(help_text="The callback step.")
    status = serializers.ChoiceField(
        choices=["succeeded", "failed", "waiting"], help_text="This token's status now."
    )
    step = serializers.CharField(
        help_text="What the step came to: done, retry (a new token follows), failed, waiting."
    )
    heartbeat_due = serializers.DateTimeField(allow_null=True)
    timeout_at = serializers.DateTimeField()


@extend_schema(
    operation_id="callbacks_report",
    summary="Report on a callback step with its task token",
    request=CallbackReport,
    responses={200: CallbackAnswer, **_errors(400, 404, 409, 429)},
    parameters=[
        OpenApiParameter("token", str, OpenApiParameter.PATH),
        OpenApiParameter("outcome", str, OpenApiParameter.PATH, enum=list(OUTCOMES)),
    ],
    auth=[],
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttled_by([WriteThrottle])
def callback(request: Request, token: str, outcome: str) -> Response:
    body = request.data if isinstance(request.data, dict) else {}
    form = CallbackReport(data=body)
    form.is_valid(raise_exception=True)
    try:
        report = callback_report(
            token=token,
            outcome=outcome,
            output=form.validated_data.get("output"),
            error=form.validated_data.get("error"),
            now=timezone.now(),
        )
    except WorkflowError as exc:
        return workflow_error_response(exc, hidden=True)
    row = report.callback
    return Response(
        {
            "instance": row.instance_id,
            "state": row.state,
            "status": row.status,
            "step": report.outcome,
            "heartbeat_due": row.heartbeat_due,
            "timeout_at": row.timeout_at,
        }
    )
