"""GET /api/v1/insights/<workflow key>/: a workflow's figures over a period, for
users with `approvals.view_insights` (403 for anyone else, whether or not the key exists).
Computed by approvals/insights.py, the same figures as the pages."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api.errors import NotFound
from approvals.api.throttling import ReadThrottle
from approvals.api.views import _errors
from approvals.insights import Period, PeriodError, Scope, insights_summary, versions_of
from approvals.insights_views import may_view_insights
from approvals.services.errors import InvalidInput


class ViewInsights(BasePermission):
    message = "Only process owners may see the insights (permission approvals.view_insights)."

    def has_permission(self, request: Request, view: object) -> bool:
        return may_view_insights(request.user)


class InsightsQuery(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="First day (inclusive).")
    until = serializers.DateField(required=False, help_text="Last day (inclusive); default today.")
    version = serializers.IntegerField(required=False, min_value=1)


class DistributionSerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)


class StepSerializer(serializers.Serializer):
    state = serializers.CharField()
    tasks = serializers.IntegerField()
    wait_p50_s = serializers.FloatField(allow_null=True, help_text="Opened → first claimed.")
    decide_p50_s = serializers.FloatField(allow_null=True, help_text="Claimed → decided.")
    decide_p90_s = serializers.FloatField(allow_null=True)
    breaches = serializers.IntegerField(help_text="Visits with a task past its deadline.")
    reminders = serializers.IntegerField()
    escalations = serializers.IntegerField()
    reworks = serializers.IntegerField(help_text="Visits of a state the request had visited.")
    outcomes = serializers.DictField(child=serializers.IntegerField())


class InsightsSerializer(serializers.Serializer):
    workflow = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    since = serializers.DateTimeField()
    until = serializers.DateTimeField(help_text="Exclusive.")
    started = serializers.IntegerField()
    completed = serializers.IntegerField()
    rejected = serializers.IntegerField()
    withdrawn = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    open = serializers.IntegerField(help_text="Active requests now.")
    overdue = serializers.IntegerField(help_text="Active requests with a task past due now.")
    lead_time_s = DistributionSerializer()
    within_sla_ratio = serializers.FloatField(allow_null=True)
    steps = StepSerializer(many=True)


class InsightsDetail(APIView):
    permission_classes = [ViewInsights]
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="insights_retrieve",
        summary="A workflow's figures over a period (docs/insights.md)",
        parameters=[
            OpenApiParameter("since", str, description="YYYY-MM-DD, inclusive"),
            OpenApiParameter("until", str, description="YYYY-MM-DD, inclusive; default today"),
            OpenApiParameter("version", int, description="Only this definition version"),
        ],
        responses={200: InsightsSerializer, **_errors(400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, key: str) -> Response:
        query = InsightsQuery(data=request.query_params)
        if not query.is_valid():
            raise InvalidInput(
                "bad period",
                {name: [str(m) for m in messages] for name, messages in query.errors.items()},
            )
        versions = versions_of(key)
        if not versions:
            raise NotFound()
        version = query.validated_data.get("version")
        if version is not None and version not in versions:
            raise InvalidInput(
                "no such version",
                {"version": [f"Choose one of: {', '.join(map(str, versions))}."]},
            )
        now = timezone.now()
        try:
            period = Period.from_dates(
                query.validated_data.get("since"), query.validated_data.get("until"), now
            )
        except PeriodError as exc:
            raise InvalidInput("bad period", exc.errors) from None
        return Response(insights_summary(scope=Scope(period, key, version), now=now))
