"""API views: parse and authorise, call ONE service, return its result (DESIGN.md, layers).

Objects the caller may not see are 404, whether or not they exist; a refusal on an object the
caller can see is 403. Every POST honours an Idempotency-Key header (approvals.api.idempotency).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import generics, serializers, status
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    permission_classes,
)
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.people import choosable_people
from approvals.api import selectors
from approvals.api.errors import NotFound
from approvals.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from approvals.api.idempotency import idempotent
from approvals.api.serializers import (
    AuditEventSerializer,
    DecideInput,
    DecisionResultSerializer,
    DelegateInput,
    ErrorSerializer,
    EventInput,
    InstanceDetailSerializer,
    InstanceSerializer,
    InstanceStartInput,
    TaskSerializer,
    VerifySerializer,
    WorkflowSerializer,
)
from approvals.api.throttling import ReadThrottle, WriteThrottle
from approvals.models import Channel, InstanceStatus, WorkflowInstance
from approvals.permissions import can_operate
from approvals.services.audit import check_chains
from approvals.services.errors import InvalidInput
from approvals.services.instances import instance_send_event, instance_start
from approvals.services.task_work import task_claim, task_decide, task_delegate, task_unclaim


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    described = {
        400: "Bad input; `fields` has a message per field.",
        401: "No valid token or session.",
        403: "Not allowed.",
        404: "No such object, or not visible to the caller.",
        409: "Not accepted in the current state (`current_state`, `accepted_events`), "
        "already decided (who decided), or an Idempotency-Key reused with another body.",
        429: "Too many requests; retry after the Retry-After header.",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=described[code]) for code in codes}


READ_ERRORS = _errors(401, 404, 429)
# Lists: 400 for a bad filter, 404 for a page past the end.
LIST_ERRORS = _errors(400, 401, 404, 429)
WRITE_ERRORS = _errors(400, 401, 403, 404, 409, 429)

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    {"type": "string", "pattern": "^[!-~]{1,255}$", "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    required=False,
    description="Makes retries safe: the same key and body replay the first answer "
    "(header Idempotent-Replayed: true); the same key with another body is a 409. "
    "1-255 printable ASCII characters; kept 24 hours.",
)


def _context(request: Request) -> dict[str, Any]:
    return {"request": request, "now": timezone.now()}


def _visible_instance(request: Request, instance_id: int) -> WorkflowInstance:
    instance = selectors.visible_instance(request.user, instance_id)
    if instance is None:
        raise NotFound()
    return instance


def _instance_data(request: Request, instance: WorkflowInstance) -> dict[str, Any]:
    """The instance a service just changed, as the caller's answer (they acted on it)."""
    fresh = selectors.instance_by_id(instance.pk) or instance
    return InstanceSerializer(fresh, context=_context(request)).data


# ----- workflows


class WorkflowList(generics.ListAPIView):
    """Published workflows the caller may start, with the JSON Schema of their request form."""

    serializer_class = WorkflowSerializer
    throttle_classes = [ReadThrottle]

    def get_queryset(self) -> QuerySet:
        return selectors.startable_definitions(self.request.user)

    @extend_schema(responses={200: WorkflowSerializer(many=True), **LIST_ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class InstanceStart(APIView):
    throttle_classes = [WriteThrottle]

    @extend_schema(
        operation_id="instances_start",
        summary="Start a request on the workflow's published version",
        request=InstanceStartInput,
        responses={201: InstanceSerializer, **WRITE_ERRORS},
        parameters=[
            IDEMPOTENCY_PARAMETER,
            OpenApiParameter(
                "key",
                str,
                OpenApiParameter.PATH,
                description="Workflow key (GET /api/v1/workflows/).",
                examples=[OpenApiExample("purchase order", value="purchase-order")],
            ),
        ],
    )
    def post(self, request: Request, key: str) -> Response:
        now = timezone.now()

        def start() -> Response:
            if not selectors.startable_definitions(request.user).filter(key=key).exists():
                raise NotFound(f"No published workflow '{key}'.")
            data = _valid(InstanceStartInput, request)
            try:
                instance = instance_start(
                    definition_key=key,
                    context=data["context"],
                    title=data["title"],
                    business_key=data["business_key"],
                    actor=request.user,
                    now=now,
                    channel=Channel.API,
                )
            except InvalidInput as exc:
                raise _under_context(exc) from None
            return Response(_instance_data(request, instance), status=status.HTTP_201_CREATED)

        return idempotent(request, now, start)


def _under_context(exc: InvalidInput) -> InvalidInput:
    """The form's field errors named as the API sends them: `context.amount`."""
    top_level = {"title", "business_key", "workflow"}
    return InvalidInput(
        exc.message,
        {
            (
                name if name in top_level else "context" if name == "__all__" else f"context.{name}"
            ): messages
            for name, messages in exc.field_errors.items()
        },
    )


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# ----- instances


class InstanceFilter(serializers.Serializer):
    workflow = serializers.CharField(required=False, help_text="Workflow key.")
    state = serializers.CharField(required=False, help_text="Top-level state.")
    status = serializers.ChoiceField(choices=InstanceStatus.choices, required=False)


class InstanceList(generics.ListAPIView):
    """Requests the caller may see (their own, ones they work on, their roles' queue)."""

    serializer_class = InstanceSerializer
    throttle_classes = [ReadThrottle]

    def get_queryset(self) -> QuerySet:
        filters = InstanceFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = selectors.visible_instances(self.request.user)
        lookups = {"workflow": "definition__key", "state": "state", "status": "status"}
        for name, lookup in lookups.items():
            if name in filters.validated_data:
                queryset = queryset.filter(**{lookup: filters.validated_data[name]})
        return queryset

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}

    @extend_schema(
        parameters=[InstanceFilter],
        responses={200: InstanceSerializer(many=True), **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class InstanceDetail(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="instances_retrieve",
        responses={200: InstanceDetailSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        instance = _visible_instance(request, pk)
        return Response(InstanceDetailSerializer(instance, context=_context(request)).data)


class InstanceEvents(APIView):
    throttle_classes = [WriteThrottle]

    @extend_schema(
        operation_id="instances_send_event",
        summary="Send an external event (PAYMENT_RECEIVED...)",
        request=EventInput,
        responses={200: InstanceSerializer, **WRITE_ERRORS},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request: Request, pk: int) -> Response:
        now = timezone.now()
        # Operators may send events to any request; others must at least see it, else 404.
        if not WorkflowInstance.objects.filter(pk=pk).exists() or (
            not can_operate(request.user, "send_event")
            and selectors.visible_instance(request.user, pk) is None
        ):
            raise NotFound()

        def send() -> Response:
            data = _valid(EventInput, request)
            instance = instance_send_event(
                instance_id=pk,
                event=data["event"],
                data=data["data"],
                actor=request.user,
                now=now,
                channel=Channel.API,
            )
            return Response(_instance_data(request, instance))

        return idempotent(request, now, send)


class InstanceHistory(generics.ListAPIView):
    """The audit trail, oldest first."""

    serializer_class = AuditEventSerializer
    throttle_classes = [ReadThrottle]

    def get_queryset(self) -> QuerySet:
        return selectors.history(_visible_instance(self.request, self.kwargs["pk"]))

    @extend_schema(responses={200: AuditEventSerializer(many=True), **LIST_ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class InstanceHistoryVerify(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="instances_history_verify",
        summary="Verify the instance's hash chain",
        responses={200: VerifySerializer, **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        (result,) = check_chains([_visible_instance(request, pk)])
        broken = result.broken
        return Response(
            VerifySerializer(
                {
                    "ok": broken is None,
                    "events": result.recorded_seq,
                    "head": result.recorded_head,
                    "broken_seq": broken.seq if broken else None,
                    "problem": broken.problem if broken else None,
                }
            ).data
        )


# ----- tasks


class TaskFilter(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=selectors.TASK_SCOPES,
        default="all",
        help_text="The inbox's tabs. mine: assigned to me; queue: offered to my roles (or those "
        "of someone I cover for), unclaimed; delegated: handed to me, or assigned to someone I "
        "cover for; overdue: any of those, past due; all: mine, delegated and queue.",
    )


class TaskList(generics.ListAPIView):
    """Open tasks the caller can act on, soonest deadline first."""

    serializer_class = TaskSerializer
    throttle_classes = [ReadThrottle]

    def get_queryset(self) -> QuerySet:
        filters = TaskFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.tasks_for(
            self.request.user, filters.validated_data["scope"], timezone.now()
        )

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}

    @extend_schema(
        parameters=[TaskFilter], responses={200: TaskSerializer(many=True), **LIST_ERRORS}
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


def _visible_task(request: Request, task_id: int) -> None:
    if selectors.visible_task(request.user, task_id) is None:
        raise NotFound()


def _task_data(request: Request, task_id: int) -> dict[str, Any]:
    task = selectors.visible_task(request.user, task_id)
    assert task is not None
    return TaskSerializer(task, context=_context(request)).data


class TaskDetail(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(operation_id="tasks_retrieve", responses={200: TaskSerializer, **READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        _visible_task(request, pk)
        return Response(_task_data(request, pk))


class _TaskAction(APIView):
    throttle_classes = [WriteThrottle]

    def act(self, request: Request, pk: int, now: Any) -> Response:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        _visible_task(request, pk)
        now = timezone.now()
        return idempotent(request, now, lambda: self.act(request, pk, now))


TASK_ACTION_SCHEMA = {
    "responses": {200: TaskSerializer, **WRITE_ERRORS},
    "parameters": [IDEMPOTENCY_PARAMETER],
}


class TaskClaim(_TaskAction):
    @extend_schema(operation_id="tasks_claim", request=None, **TASK_ACTION_SCHEMA)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request: Request, pk: int, now: Any) -> Response:
        task_claim(task_id=pk, actor=request.user, now=now, channel=Channel.API)
        return Response(_task_data(request, pk))


class TaskUnclaim(_TaskAction):
    @extend_schema(operation_id="tasks_unclaim", request=None, **TASK_ACTION_SCHEMA)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request: Request, pk: int, now: Any) -> Response:
        task_unclaim(task_id=pk, actor=request.user, now=now, channel=Channel.API)
        return Response(_task_data(request, pk))


class TaskDecide(_TaskAction):
    @extend_schema(
        operation_id="tasks_decide",
        request=DecideInput,
        responses={200: DecisionResultSerializer, **WRITE_ERRORS},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request: Request, pk: int, now: Any) -> Response:
        data = _valid(DecideInput, request)
        result = task_decide(
            task_id=pk,
            event=data["decision"],
            comment=data["comment"],
            data=data["data"],
            actor=request.user,
            now=now,
            channel=Channel.API,
        )
        context = _context(request)
        result.task.instance = result.instance  # loaded with its definition: no second read
        return Response(
            {
                "task": TaskSerializer(result.task, context=context).data,
                "instance": _instance_data(request, result.instance),
                "moved": result.moved,
            }
        )


class TaskDelegate(_TaskAction):
    @extend_schema(operation_id="tasks_delegate", request=DelegateInput, **TASK_ACTION_SCHEMA)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request: Request, pk: int, now: Any) -> Response:
        """Answers with the new task, the delegate's."""
        data = _valid(DelegateInput, request)
        delegate = choosable_people().filter(username=data["to"]).first()
        if delegate is None:
            raise serializers.ValidationError({"to": [f"No active user '{data['to']}'."]})
        successor = task_delegate(
            task_id=pk,
            to_user_id=delegate.pk,
            comment=data["comment"],
            actor=request.user,
            now=now,
            channel=Channel.API,
        )
        successor = (
            type(successor)
            .objects.select_related("instance__definition", "assignee", "delegated_by")
            .get(pk=successor.pk)
        )
        return Response(TaskSerializer(successor, context=_context(request)).data)


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
@authentication_classes([])
def not_found(request: Request, *args: Any, **kwargs: Any) -> Response:
    """Anything else under /api/: a JSON 404 rather than Django's HTML page."""
    raise NotFound()
