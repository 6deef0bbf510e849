"""POST /api/v1/asks/: a program asks a person (docs/agents.md). Thin: parse, call
services.asks.ask_create, answer with the request as GET /api/v1/instances/{id}/ shows it and
the proposed action."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api import selectors
from approvals.api.idempotency import idempotent
from approvals.api.serializers import InstanceSerializer, ObjectField
from approvals.api.throttling import AskThrottle, WriteThrottle
from approvals.api.views import IDEMPOTENCY_PARAMETER, WRITE_ERRORS, _context
from approvals.models import ApiToken, Ask, WebhookSubscription, WorkflowInstance
from approvals.services.asks import REVIEW_ACTION, ask_create
from approvals.services.errors import NotAllowed
from approvals.services.instances import MAX_TITLE


class ActionInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the program would do.")
    arguments = ObjectField(required=False, default=dict)
    schema = ObjectField(required=False, help_text="JSON Schema of the arguments.")


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "object", "additionalProperties": True}],
        "description": "review-action: Markdown for the reviewer. Another workflow: its form data.",
    }
)
class ContextField(serializers.JSONField):
    pass


class AskInput(serializers.Serializer):
    workflow = serializers.SlugField(max_length=100, default=REVIEW_ACTION)
    title = serializers.CharField(
        max_length=MAX_TITLE, required=False, allow_blank=True, default=""
    )
    action = ActionInput(required=False)
    roles = serializers.ListField(
        child=serializers.CharField(max_length=150),
        required=False,
        help_text="review-action: the roles asked (the token's account must be allowed to ask "
        "each).",
    )
    sla = serializers.CharField(max_length=50, required=False, help_text="ISO 8601, e.g. PT1H.")
    expires_in = serializers.CharField(
        max_length=50, required=False, help_text="ISO 8601; unanswered by then: timed_out."
    )
    context = ContextField(required=False, default=None)
    business_key = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    callback_url = serializers.URLField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Receives the request's webhook events, signed as outgoing webhooks are.",
    )


class ProposedActionSerializer(serializers.Serializer):
    name = serializers.CharField(source="action_name")
    arguments = serializers.JSONField()
    schema = serializers.JSONField(allow_null=True)


class AskInfoSerializer(serializers.Serializer):
    action = serializers.SerializerMethodField()
    agent = serializers.CharField(help_text="The asking API token's name.")
    on_behalf_of = serializers.CharField(source="instance.requester.username")
    context = serializers.CharField(help_text="Markdown for the reviewer.")
    expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    callback_url = serializers.CharField()
    callback_secret = serializers.SerializerMethodField(
        help_text="Verifies the X-Signoff-Signature of what callback_url receives; "
        "only in the answer that made the ask (and its replays)."
    )

    def get_callback_secret(self, ask: Ask) -> str | None:
        return self.context.get("callback_secret")

    @extend_schema_field(ProposedActionSerializer(allow_null=True))
    def get_action(self, ask: Ask) -> dict[str, Any] | None:
        return ProposedActionSerializer(ask).data if ask.action_name else None


class AskResultSerializer(InstanceSerializer):
    ask = serializers.SerializerMethodField()

    class Meta(InstanceSerializer.Meta):
        fields = [*InstanceSerializer.Meta.fields, "ask"]

    @extend_schema_field(AskInfoSerializer)
    def get_ask(self, instance: WorkflowInstance) -> dict[str, Any]:
        return AskInfoSerializer(instance.ask, context=self.context).data


class Asks(APIView):
    throttle_classes = [WriteThrottle, AskThrottle]

    @extend_schema(
        operation_id="asks_create",
        summary="Ask a person to approve a proposed action (or start a workflow as an ask)",
        request=AskInput,
        responses={201: AskResultSerializer, **WRITE_ERRORS},
        parameters=[IDEMPOTENCY_PARAMETER],
        examples=[
            OpenApiExample(
                "refund",
                request_only=True,
                value={
                    "workflow": "review-action",
                    "title": "Refund order 1234",
                    "action": {
                        "name": "send_refund",
                        "arguments": {"order": "1234", "amount": 120},
                        "schema": {
                            "type": "object",
                            "properties": {"amount": {"type": "number", "maximum": 500}},
                        },
                    },
                    "roles": ["finance"],
                    "sla": "PT1H",
                    "expires_in": "PT4H",
                    "context": "The customer reports a **damaged** parcel.",
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.auth, ApiToken):
            raise NotAllowed("asks are sent with an API token (Authorization: Bearer ...)")
        now = timezone.now()

        def ask() -> Response:
            serializer = AskInput(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            instance = ask_create(
                token=request.auth,
                workflow=data["workflow"],
                title=data["title"],
                action=data.get("action"),
                context=data["context"],
                roles=data.get("roles"),
                sla=data.get("sla"),
                expires_in=data.get("expires_in"),
                business_key=data["business_key"],
                callback_url=data["callback_url"],
                now=now,
            )
            fresh = selectors.instance_by_id(instance.pk)
            callback = WebhookSubscription.objects.filter(instance=instance).first()
            context = {
                **_context(request),
                "callback_secret": callback.secret if callback is not None else None,
            }
            return Response(
                AskResultSerializer(fresh, context=context).data,
                status=status.HTTP_201_CREATED,
            )

        return idempotent(request, now, ask)
