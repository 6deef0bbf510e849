"""/api/v1/instances/{id}/comments/: a request's discussion over the API (docs/api.md)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api import selectors
from approvals.api.errors import NotFound
from approvals.api.idempotency import idempotent
from approvals.api.throttling import ReadThrottle, WriteThrottle
from approvals.api.views import IDEMPOTENCY_PARAMETER, READ_ERRORS, WRITE_ERRORS
from approvals.discussion.selectors import comments
from approvals.models import Channel, Comment, WorkflowInstance
from approvals.services.discussion import MAX_BODY, comment_add


class CommentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    body = serializers.CharField(help_text="Markdown, as written.")
    html = serializers.CharField(help_text="The Markdown rendered and sanitised.")
    author = serializers.CharField(source="author.username")
    created_at = serializers.DateTimeField()
    mentions = serializers.SerializerMethodField()

    def get_mentions(self, comment: Comment) -> list[str]:
        return sorted(u.username for u in comment.mentions.all())


class CommentInput(serializers.Serializer):
    body = serializers.CharField(max_length=MAX_BODY, help_text="Markdown; @username mentions.")
    reply_to = serializers.IntegerField(required=False, allow_null=True, default=None)
    question = serializers.BooleanField(
        required=False, default=False, help_text="A reviewer's question for the requester."
    )


def _instance(request: Request, pk: int) -> WorkflowInstance:
    instance = selectors.visible_instance(request.user, pk)
    if instance is None:
        raise NotFound()
    return instance


class CommentList(APIView):
    def get_throttles(self) -> list[Any]:
        return [WriteThrottle()] if self.request.method == "POST" else [ReadThrottle()]

    @extend_schema(
        operation_id="instances_comments_list",
        summary="The request's discussion, oldest first",
        responses={200: CommentSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(CommentSerializer(comments(_instance(request, pk)), many=True).data)

    @extend_schema(
        operation_id="instances_comments_add",
        summary="Post a comment (a mention of someone who may not see the request is a 400)",
        request=CommentInput,
        responses={201: CommentSerializer, **WRITE_ERRORS},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request: Request, pk: int) -> Response:
        now = timezone.now()
        instance = _instance(request, pk)

        def add() -> Response:
            serializer = CommentInput(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            comment = comment_add(
                instance_id=instance.pk,
                body=data["body"],
                reply_to=data["reply_to"],
                question=data["question"],
                actor=request.user,
                now=now,
                channel=Channel.API,
            )
            return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)

        return idempotent(request, now, add)
