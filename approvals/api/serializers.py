"""What the API reads and writes. Input serializers check shape only; the services check
meaning (the form schema, the decisions a state has, who may act)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals.api import selectors
from approvals.models import AuditEvent, InstanceStatus, Task, TaskStatus, WorkflowInstance
from approvals.selectors import relatives
from approvals.services.callbacks import waiting_callbacks
from approvals.services.definitions import statechart_for
from approvals.services.instances import MAX_TITLE
from approvals.services.task_work import MAX_COMMENT
from approvals.storable import json_problem

# ----- input


class StrictJSONObjectField(serializers.JSONField):
    """A JSON object ({...}) that the database can store; arrays, strings and numbers are
    refused."""

    default_error_messages = {"not_object": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_object")
        problem = json_problem(value)
        if problem:
            where, message = problem
            # A place inside the object is named as a field of its own: "context.items[0].note".
            raise serializers.ValidationError({where: [message]} if where else [message])
        return value


@extend_schema_field({"type": "object", "additionalProperties": True})
class ObjectField(StrictJSONObjectField):
    pass


class InstanceStartInput(serializers.Serializer):
    context = ObjectField(help_text="The request form's fields (the workflow's form_schema).")
    title = serializers.CharField(
        max_length=MAX_TITLE, required=False, allow_blank=True, default=""
    )
    business_key = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="Your own reference (order number...).",
    )


EVENT_NAME = r"^[A-Za-z][A-Za-z0-9_.:-]{0,99}$"


class EventInput(serializers.Serializer):
    event = serializers.RegexField(
        EVENT_NAME,
        max_length=100,
        error_messages={"invalid": "An event name such as PAYMENT_RECEIVED."},
    )
    data = ObjectField(required=False, default=dict, help_text="Sent with the event.")


class DecideInput(serializers.Serializer):
    decision = serializers.RegexField(
        EVENT_NAME,
        max_length=100,
        error_messages={"invalid": "A decision such as APPROVE."},
    )
    comment = serializers.CharField(
        max_length=MAX_COMMENT, required=False, allow_blank=True, default=""
    )
    data = ObjectField(required=False, default=dict)


class DelegateInput(serializers.Serializer):
    to = serializers.CharField(max_length=150, help_text="Username of the delegate.")
    comment = serializers.CharField(
        max_length=MAX_COMMENT, required=False, allow_blank=True, default=""
    )


class EmptyInput(serializers.Serializer):
    pass


# ----- output


class WorkflowSerializer(serializers.Serializer):
    key = serializers.CharField()
    version = serializers.IntegerField()
    title = serializers.CharField(
        help_text="As the definition writes it: a title template's placeholders stay."
    )
    name = serializers.CharField(
        help_text="The workflow's name as people read it: placeholders read as field titles."
    )
    description = serializers.CharField()
    form_schema = serializers.JSONField(help_text="JSON Schema of `context` when starting.")
    published_at = serializers.DateTimeField(allow_null=True)


class WorkflowRefSerializer(serializers.Serializer):
    key = serializers.CharField()
    version = serializers.IntegerField()
    title = serializers.CharField()


class TaskSerializer(serializers.ModelSerializer):
    instance = serializers.IntegerField(source="instance_id")
    instance_title = serializers.CharField(source="instance.title")
    workflow = serializers.CharField(source="instance.definition.key")
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    assignee = serializers.CharField(source="assignee.username", allow_null=True, default=None)
    delegated_by = serializers.CharField(
        source="delegated_by.username", allow_null=True, default=None
    )
    roles = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()
    decisions = serializers.SerializerMethodField()
    signature = serializers.SerializerMethodField(
        help_text="The meaning of the electronic signature this step asks for (null: none). "
        "Such a step is decided on its page, where the signer re-authenticates; the API "
        "refuses to decide it. A signed decision's signature is in its audit event."
    )

    class Meta:
        model = Task
        fields = [
            "id",
            "instance",
            "instance_title",
            "workflow",
            "state",
            "label",
            "status",
            "assignee",
            "roles",
            "for_requester",
            "delegated_by",
            "escalation_level",
            "created_at",
            "claimed_at",
            "closed_at",
            "due_at",
            "overdue",
            "decisions",
            "signature",
            "assigned_as",
        ]

    def get_roles(self, task: Task) -> list[str]:
        return sorted(group.name for group in task.candidate_groups.all())

    def get_overdue(self, task: Task) -> bool:
        now = self.context["now"]
        return bool(task.is_live and task.due_at is not None and task.due_at < now)

    def get_decisions(self, task: Task) -> list[str]:
        """The events this task is decided with (empty once it is closed)."""
        return selectors.task_decisions(task) if task.is_live else []

    def get_signature(self, task: Task) -> str | None:
        spec = statechart_for(task.instance.definition).state(task.state).task
        return spec.signature if spec is not None and spec.signature else None


class InstanceSerializer(serializers.ModelSerializer):
    workflow = WorkflowRefSerializer(source="definition")
    requester = serializers.CharField(source="requester.username")
    status = serializers.ChoiceField(choices=InstanceStatus.choices)
    states = serializers.SerializerMethodField(help_text="Leaf states (several when parallel).")
    context = serializers.JSONField()
    open_tasks = serializers.SerializerMethodField()
    accepted_events = serializers.SerializerMethodField(
        help_text="External events the caller may send now (POST .../events/)."
    )

    class Meta:
        model = WorkflowInstance
        fields = [
            "id",
            "workflow",
            "title",
            "business_key",
            "requester",
            "state",
            "states",
            "status",
            "context",
            "version",
            "created_at",
            "updated_at",
            "completed_at",
            "open_tasks",
            "accepted_events",
        ]

    def get_states(self, instance: WorkflowInstance) -> list[str]:
        return selectors.active_states(instance)

    @extend_schema_field(TaskSerializer(many=True))
    def get_open_tasks(self, instance: WorkflowInstance) -> list[dict[str, Any]]:
        tasks = getattr(instance, "live_tasks", None)
        if tasks is None:
            tasks = list(
                instance.tasks.filter(status__in=["open", "claimed"])
                .select_related("assignee", "delegated_by")
                .prefetch_related("candidate_groups")
                .order_by("created_at", "id")
            )
        return TaskSerializer(tasks, many=True, context=self.context).data

    def get_accepted_events(self, instance: WorkflowInstance) -> list[str]:
        return selectors.sendable_events(self.context["request"].user, instance)


class WaitingCallbackSerializer(serializers.Serializer):
    state = serializers.CharField()
    attempt = serializers.IntegerField()
    token = serializers.CharField()
    timeout_at = serializers.DateTimeField()
    heartbeat_due = serializers.DateTimeField(allow_null=True)
    success_url = serializers.URLField()
    failure_url = serializers.URLField()
    heartbeat_url = serializers.URLField()


class InstanceDetailSerializer(InstanceSerializer):
    """One request, with its parent and sub-requests (sub-workflow steps), each only where the
    caller may see it."""

    parent = serializers.SerializerMethodField(
        help_text="The id of the request whose step started this one, or null."
    )
    children = serializers.SerializerMethodField(
        help_text="The ids of the sub-requests this request's steps started."
    )
    callbacks = serializers.SerializerMethodField(
        help_text="The callback steps waiting for an outside system's report, each with its "
        "task token and where to report (docs/api.md#callback-steps)."
    )

    class Meta(InstanceSerializer.Meta):
        fields = [*InstanceSerializer.Meta.fields, "parent", "children", "callbacks"]

    @extend_schema_field(WaitingCallbackSerializer(many=True))
    def get_callbacks(self, instance: WorkflowInstance) -> list[dict[str, Any]]:
        return waiting_callbacks(instance.pk)

    def _relatives(self, instance: WorkflowInstance) -> Any:
        found = getattr(instance, "_relatives", None)
        if found is None:
            found = relatives(self.context["request"].user, instance)
            instance._relatives = found
        return found

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_parent(self, instance: WorkflowInstance) -> int | None:
        parent = self._relatives(instance).parent
        return parent.pk if parent is not None else None

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_children(self, instance: WorkflowInstance) -> list[int]:
        return [child.pk for child in self._relatives(instance).children]


class DecisionResultSerializer(serializers.Serializer):
    task = TaskSerializer()
    instance = InstanceSerializer()
    moved = serializers.BooleanField(
        help_text="False while an all/quorum rule still waits for other approvals."
    )


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    task = serializers.IntegerField(source="task_id", allow_null=True)
    data = serializers.JSONField()

    class Meta:
        model = AuditEvent
        fields = [
            "seq",
            "at",
            "actor",
            "channel",
            "event",
            "from_state",
            "to_state",
            "task",
            "data",
            "prev_hash",
            "hash",
        ]

    def get_actor(self, event: AuditEvent) -> str | None:
        if event.actor is not None:
            return event.actor.username
        return event.actor_name or None


class VerifySerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    events = serializers.IntegerField(help_text="Events in the chain.")
    head = serializers.CharField(help_text="Hash of the last event.")
    broken_seq = serializers.IntegerField(allow_null=True, help_text="First broken link.")
    problem = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    """Every error: a code, a message, and where they apply field messages, the state."""

    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    current_state = serializers.CharField(required=False)
    accepted_events = serializers.ListField(child=serializers.CharField(), required=False)
