"""GET /api/v1/instances/{id}/at/?seq=N: the request as it was just after audit event N, read
from the trail (approvals/replay.py), for whoever may see the request (404 otherwise)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api.throttling import ReadThrottle
from approvals.api.views import READ_ERRORS, _errors, _visible_instance
from approvals.replay import NoSuchPoint, snapshot_at
from approvals.services.errors import InvalidInput


class OpenTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    assignee = serializers.CharField(allow_null=True, help_text="Username, or none (a queue).")
    roles = serializers.ListField(child=serializers.CharField())


class SnapshotSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    at = serializers.DateTimeField()
    states = serializers.ListField(
        child=serializers.CharField(), help_text="Active states: leaves, then a parallel state."
    )
    open_tasks = OpenTaskSerializer(many=True)
    context = serializers.DictField()


class InstanceAt(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="instances_at",
        summary="The instance as it was after audit event `seq` (a replay of its trail)",
        parameters=[
            OpenApiParameter("seq", int, required=True, description="1 … the last event's seq")
        ],
        responses={200: SnapshotSerializer, **READ_ERRORS, **_errors(400)},
    )
    def get(self, request: Request, pk: int) -> Response:
        instance = _visible_instance(request, pk)
        raw = request.query_params.get("seq", "")
        try:
            seq = int(raw)
            snapshot = snapshot_at(instance, seq)
        except (ValueError, NoSuchPoint):
            raise InvalidInput(
                "bad seq", {"seq": [f"A whole number from 1 to {instance.audit_seq}."]}
            ) from None
        return Response(snapshot.as_json())
