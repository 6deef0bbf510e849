"""The domain model of DESIGN.md. Only approvals/services/ changes workflow state.

State fields are django-fsm `FSMField(protected=True)`: they can be set when a row is created and
afterwards only by a transition method, which the services call on a locked row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition
from guardian.models import UserObjectPermissionBase

from approvals import sensitive
from approvals.machine.titles import readable_title


class Segregation(models.TextChoices):
    DISTINCT_APPROVERS = "distinct_approvers", "Distinct approvers"
    NONE = "none", "None"


class DefinitionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class WorkflowDefinition(ConcurrentTransitionMixin, models.Model):
    """One version of a process. Published versions are immutable (invariant 5)."""

    key = models.SlugField(max_length=100)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = FSMField(
        max_length=20,
        choices=DefinitionStatus.choices,
        default=DefinitionStatus.DRAFT,
        protected=True,
    )
    initial = models.CharField(max_length=100, help_text="Name of the top-level initial state.")
    form_schema = models.JSONField(
        default=dict, blank=True, help_text="JSON Schema of the request."
    )
    settings = models.JSONField(default=dict, blank=True)
    inbox_columns = models.JSONField(
        default=list, blank=True, help_text="Form fields the inbox shows as columns."
    )
    segregation = models.CharField(
        max_length=20,
        choices=Segregation.choices,
        default=Segregation.DISTINCT_APPROVERS,
        help_text="Distinct approvers: who decided one step of a request may not decide "
        "another (four eyes).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="definition_key_version"),
            models.UniqueConstraint(
                fields=["key"], condition=Q(status="published"), name="one_published_per_key"
            ),
            models.UniqueConstraint(
                fields=["key"], condition=Q(status="draft"), name="one_draft_per_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version}, {self.status})"

    @property
    def name(self) -> str:
        """The definition's title as people read it; for a title template, its key in words
        (approvals/machine/titles.py)."""
        return readable_title(self.title, self.key)

    @property
    def is_editable(self) -> bool:
        return self.status == DefinitionStatus.DRAFT

    @transition(field=status, source=DefinitionStatus.DRAFT, target=DefinitionStatus.PUBLISHED)
    def publish(self) -> None:
        pass

    @transition(field=status, source=DefinitionStatus.PUBLISHED, target=DefinitionStatus.RETIRED)
    def retire(self) -> None:
        pass


class StateType(models.TextChoices):
    ATOMIC = "atomic", "Atomic"
    FINAL = "final", "Final"
    PARALLEL = "parallel", "Parallel"
    COMPOUND = "compound", "Compound (region of a parallel state)"


class StateDefinition(models.Model):
    """A state of a definition. `path` is dotted for states inside parallel regions."""

    definition = models.ForeignKey(
        WorkflowDefinition, on_delete=models.CASCADE, related_name="states"
    )
    path = models.CharField(
        max_length=200, help_text="Name, or parent.name for states inside a parallel state."
    )
    type = models.CharField(max_length=20, choices=StateType.choices, default=StateType.ATOMIC)
    description = models.TextField(blank=True)
    initial = models.CharField(max_length=100, blank=True, help_text="Compound: initial child.")
    entry = models.JSONField(default=list, blank=True, help_text='Action names, e.g. ["notify"].')
    exit = models.JSONField(default=list, blank=True, help_text="Action names.")
    invoke = models.JSONField(
        null=True,
        blank=True,
        help_text='{"src": "webhook", "input": {...}, "retry": {"max_attempts": 3}}; '
        "onDone/onError are transitions.",
    )
    task = models.JSONField(
        null=True,
        blank=True,
        help_text='meta.task: {"roles": ["manager"], "rule": "any", "sla": "P2D", ...}',
    )
    meta = models.JSONField(default=dict, blank=True, help_text="Other meta keys (label...).")
    on_complete_start = models.JSONField(
        null=True,
        blank=True,
        help_text='Final states: {"workflow": "drafting", "input": {"topic": "title"}} starts '
        "that workflow when a request ends here.",
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["definition", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "path"], name="state_path_unique"),
        ]

    def __str__(self) -> str:
        return self.path


class Schedule(models.Model):
    """A cron schedule of a definition version (the file's `schedule` entries): beat starts
    a request of the key's published version at each tick (services/schedules.py)."""

    definition = models.ForeignKey(
        WorkflowDefinition, on_delete=models.CASCADE, related_name="schedules"
    )
    name = models.SlugField(
        max_length=100, help_text="Its ticks are counted by this name across versions."
    )
    cron = models.CharField(max_length=100, help_text="Five fields, e.g. 0 8 * * MON")
    tz = models.CharField(max_length=64, default="UTC", help_text="IANA time zone.")
    context = models.JSONField(default=dict, blank=True, help_text="The request form's data.")
    catch_up = models.BooleanField(
        default=True,
        help_text="Ticks missed while beat was down: start one request for the latest "
        "(on), or skip them (off).",
    )
    run_as = models.CharField(
        max_length=150,
        blank=True,
        help_text="Username the requests are started as; empty: the version's owner.",
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["definition", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "name"], name="schedule_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.cron} ({self.tz})"


class FiringOutcome(models.TextChoices):
    STARTED = "started", "Started"
    SKIPPED = "skipped", "Skipped (catch_up: false)"
    FAILED = "failed", "Failed"


class ScheduleFiring(models.Model):
    """One tick of a schedule, taken once: the unique (workflow, schedule, tick) is what lets
    two beats, or one restarted late, start each tick's request only once."""

    workflow_key = models.CharField(max_length=100)
    schedule = models.CharField(max_length=100)
    tick = models.DateTimeField()
    fired_at = models.DateTimeField()
    outcome = models.CharField(max_length=10, choices=FiringOutcome.choices)
    instance = models.ForeignKey(
        "WorkflowInstance", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-tick", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow_key", "schedule", "tick"], name="schedule_tick_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_key}/{self.schedule} at {self.tick:%Y-%m-%d %H:%M} ({self.outcome})"


class Trigger(models.TextChoices):
    ON = "on", "on EVENT"
    ALWAYS = "always", "always"
    AFTER = "after", "after DELAY"
    DONE = "onDone", "onDone (parallel)"
    INVOKE_DONE = "invoke.onDone", "invoke onDone"
    INVOKE_ERROR = "invoke.onError", "invoke onError"


class TransitionDefinition(models.Model):
    """One candidate transition; candidates of the same trigger are tried in `position` order."""

    definition = models.ForeignKey(
        WorkflowDefinition, on_delete=models.CASCADE, related_name="transitions"
    )
    source = models.CharField(max_length=200, help_text="Path of the state that owns it.")
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.ON)
    event = models.CharField(max_length=100, blank=True, help_text="Event name (trigger on).")
    delay = models.CharField(
        max_length=50, blank=True, help_text="ISO 8601 duration or milliseconds (trigger after)."
    )
    target = models.CharField(max_length=100, blank=True, help_text="Sibling state; empty: stay.")
    guard = models.TextField(blank=True, help_text="CEL expression, e.g. amount < 1000")
    assign = models.JSONField(default=dict, blank=True, help_text='{"revisions": "revisions + 1"}')
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["definition", "position", "id"]

    def __str__(self) -> str:
        label = self.event or self.delay or self.trigger
        return f"{self.source} --{label}--> {self.target or '(stay)'}"


class InstanceStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"
    # The requester stopped it (from the request page or their own task); never an operator.
    WITHDRAWN = "withdrawn", "Withdrawn"


BUSINESS_KEY_CONSTRAINT = "business_key_unique_per_workflow"


DATA_KEY_FIELDS = ("data_key", "data_key_kek")


class ContextField(models.JSONField):
    """A request's context: stored with its sensitive fields encrypted with the request's
    data key (approvals/sensitive.py); `WorkflowInstance.from_db` opens them again."""

    def pre_save(self, model_instance: models.Model, add: bool) -> object:
        value = super().pre_save(model_instance, add)
        names = model_instance.sensitive_names() if isinstance(value, dict) else frozenset()
        if names & set(value or ()):
            return sensitive.seal(value, names, model_instance.plain_data_key())
        return value


class WorkflowInstance(ConcurrentTransitionMixin, models.Model):
    """A request moving through one pinned definition version."""

    definition = models.ForeignKey(
        WorkflowDefinition, on_delete=models.PROTECT, related_name="instances"
    )
    requester = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="requests"
    )
    title = models.CharField(max_length=200)
    business_key = models.CharField(max_length=100, blank=True)
    # The definition's key, copied so that a business key is unique across all the versions
    # of a workflow (a constraint cannot follow the foreign key).
    workflow_key = models.CharField(max_length=100, db_default="", editable=False)
    context = ContextField(default=dict)
    # The request's own data key for its sensitive fields, wrapped (base64) with the
    # key-encryption key `data_key_kek` of FIELD_ENCRYPTION_KEYS; empty until it has one.
    data_key = models.TextField(blank=True, editable=False)
    data_key_kek = models.CharField(max_length=40, blank=True, editable=False)
    state = FSMField(max_length=100, protected=True)
    status = FSMField(
        max_length=20,
        choices=InstanceStatus.choices,
        default=InstanceStatus.ACTIVE,
        protected=True,
    )
    version = models.PositiveIntegerField(default=0, help_text="Bumped by every change.")
    audit_seq = models.PositiveIntegerField(default=0)
    audit_head = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    # A sub-request: the request whose step (`parent_state`, in the visit that began at audit
    # seq `parent_visit`) started it (`invoke: {src: "workflow:<key>"}`); told when it ends.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    parent_state = models.CharField(max_length=200, blank=True)
    parent_visit = models.PositiveIntegerField(null=True, blank=True)
    # Under `foreach`, the position in the parent's list of the item this child is for.
    parent_index = models.PositiveIntegerField(null=True, blank=True)
    # A legal hold keeps a request past its workflow's retention period until it is released
    # (approvals/services/retention.py); placing and releasing it are audited.
    legal_hold = models.BooleanField(default=False, db_default=False)
    legal_hold_reason = models.CharField(max_length=500, blank=True, db_default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["requester", "-created_at"]),
            models.Index(fields=["status", "-created_at"]),
            # Insights (approvals/insights.py): a workflow's requests started / ended in a period.
            models.Index(fields=["workflow_key", "created_at"], name="instance_workflow_started"),
            models.Index(fields=["workflow_key", "completed_at"], name="instance_workflow_ended"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow_key", "business_key"],
                condition=~Q(business_key=""),
                name=BUSINESS_KEY_CONSTRAINT,
            ),
        ]
        permissions = [
            ("cancel_instance", "Can cancel any instance"),
            ("send_event", "Can send external events to instances"),
            ("reassign_task", "Can reassign any task"),
            ("view_insights", "Can see the process insights (dashboards, heat map)"),
            ("hold_legal", "Can place and release legal holds on requests"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is None and not self._state.adding:
            # A whole-row save never writes back the wrapped data key it loaded: the key may
            # have been re-wrapped meanwhile (rotate_field_keys), and its old KEK retired.
            update_fields = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in DATA_KEY_FIELDS
            ]
        writes_context = update_fields is None or "context" in update_fields
        if (
            writes_context
            and isinstance(self.context, dict)
            and not self.data_key
            and self.sensitive_names() & set(self.context)
        ):
            key, kek_id, wrapped = sensitive.new_data_key()
            self._plain_data_key = key
            self.data_key, self.data_key_kek = wrapped, kek_id
            if update_fields is not None:
                update_fields = [*update_fields, *DATA_KEY_FIELDS]
        if update_fields is not None:
            kwargs["update_fields"] = update_fields
        super().save(*args, **kwargs)

    @classmethod
    def from_db(cls, db: str | None, field_names: list[str], values: list[object]) -> Any:
        # The one place a stored context is read back: its sensitive values opened, so that
        # whatever holds an instance (guards, pages, the API) reads plaintext in memory.
        instance = super().from_db(db, field_names, values)
        context = instance.__dict__.get("context")
        if sensitive.has_encrypted(context):
            instance.context = sensitive.unseal(context, instance.plain_data_key())
        return instance

    def sensitive_names(self) -> frozenset[str]:
        return sensitive.names_of(self.definition)

    def plain_data_key(self) -> bytes:
        """The request's data key, unwrapped once per loaded instance."""
        key = self.__dict__.get("_plain_data_key")
        if key is None:
            if "data_key" not in self.__dict__ or "data_key_kek" not in self.__dict__:
                # Loaded without its key columns: read them alone (a deferred field's load
                # would build a partial instance, whose state fields django-fsm reads).
                self.data_key, self.data_key_kek = (
                    type(self)
                    .objects.filter(pk=self.pk)
                    .values_list("data_key", "data_key_kek")
                    .get()
                )
            key = sensitive.unwrap(self.data_key, self.data_key_kek)
            self._plain_data_key = key
        return key

    @property
    def is_active(self) -> bool:
        return self.status == InstanceStatus.ACTIVE

    @transition(field=state, source="*", target=RETURN_VALUE())
    def move_to(self, target: str) -> str:
        return target

    @transition(
        field=status,
        source=InstanceStatus.ACTIVE,
        target=RETURN_VALUE(
            InstanceStatus.COMPLETED,
            InstanceStatus.REJECTED,
            InstanceStatus.CANCELLED,
            InstanceStatus.FAILED,
            InstanceStatus.WITHDRAWN,
        ),
    )
    def finish(self, outcome: str) -> str:
        return outcome


class Branch(ConcurrentTransitionMixin, models.Model):
    """One region of an active parallel state, with the leaf state it is in."""

    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.CASCADE, related_name="branches"
    )
    region = models.CharField(max_length=200)
    state = FSMField(max_length=200, protected=True)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "region"],
                condition=Q(closed_at__isnull=True),
                name="one_open_branch_per_region",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.region}: {self.state}"

    @transition(field=state, source="*", target=RETURN_VALUE())
    def move_to(self, target: str) -> str:
        return target


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed"
    DONE = "done", "Done"
    DELEGATED = "delegated", "Delegated"
    ESCALATED = "escalated", "Escalated"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


LIVE_TASK_STATUSES = (TaskStatus.OPEN, TaskStatus.CLAIMED)


class TaskRule(models.TextChoices):
    ANY = "any", "Any one"
    ALL = "all", "One per role"
    QUORUM = "quorum", "Quorum"
    EVERYONE = "everyone", "Every member"


class TaskKind(models.TextChoices):
    DECISION = "decision", "Decision"
    ACTION_REVIEW = "action_review", "Failed automated step"


class Task(ConcurrentTransitionMixin, models.Model):
    """A unit of human work in one state visit. Rules all/quorum create one task per approval
    needed, rule everyone one task given to each member of the roles; the state's APPROVE fires
    when every sibling task of the visit approved."""

    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="tasks")
    # The request's definition version and searchable words kept on the task itself, so that an
    # inbox filtered by workflow or text reads one table (bench/inbox.py). Written by the engine
    # (services/engine.py) whenever a task is made or the request's title changes.
    definition = models.ForeignKey(
        WorkflowDefinition, on_delete=models.PROTECT, related_name="tasks", editable=False
    )
    search_text = models.TextField(
        editable=False,
        help_text="The request's title and reference and the task's label, lower case, "
        "one per line: what the inbox's free-text search looks in.",
    )
    branch = models.ForeignKey(
        Branch, null=True, blank=True, on_delete=models.CASCADE, related_name="tasks"
    )
    state = models.CharField(max_length=200, help_text="Path of the state the task belongs to.")
    visit = models.PositiveIntegerField(help_text="Audit sequence at which the state was entered.")
    label = models.CharField(max_length=200, blank=True)
    # Why the org chart chose its assignee ("manager of Alice Anders"); "" otherwise.
    assigned_as = models.CharField(max_length=300, blank=True, default="", db_default="")
    status = FSMField(
        max_length=20, choices=TaskStatus.choices, default=TaskStatus.OPEN, protected=True
    )
    candidate_groups = models.ManyToManyField(Group, blank=True, related_name="tasks")
    # People who may not decide this task because they decided a step it is segregated from
    # (four eyes), written by the engine when the task opens and when such a step is decided.
    excluded_users = models.ManyToManyField(
        django_settings.AUTH_USER_MODEL, blank=True, related_name="+"
    )
    for_requester = models.BooleanField(default=False)
    forbid_requester = models.BooleanField(default=True)
    rule = models.CharField(max_length=10, choices=TaskRule.choices, default=TaskRule.ANY)
    assignee = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_tasks",
    )
    previous = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="successors",
        help_text="The task this one replaces (delegation, escalation, reassignment).",
    )
    delegated_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="delegated_tasks",
    )
    on_behalf_of = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The absent user whose work the assignee covers (out-of-office).",
    )
    escalation_level = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    next_remind_at = models.DateTimeField(null=True, blank=True)
    # SLA bookkeeping: reminders count from sla_started_at (the task's creation, or
    # its escalation); breached_at marks a task past its last escalation level, which stays
    # where it is, flagged, and leaves the sweep's queue.
    kind = models.CharField(max_length=20, choices=TaskKind.choices, default=TaskKind.DECISION)
    sla_started_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    breached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # SLA sweeps look tasks up by deadline, only among live ones.
            models.Index(
                fields=["due_at"],
                condition=Q(status__in=["open", "claimed"]),
                name="task_live_due",
            ),
            models.Index(
                fields=["next_remind_at"],
                condition=Q(status__in=["open", "claimed"]),
                name="task_live_remind",
            ),
            # The sweep's breach queue: live tasks past due that are not flagged yet.
            models.Index(
                fields=["due_at"],
                condition=Q(status__in=["open", "claimed"], breached_at__isnull=True),
                name="task_sla_due",
            ),
            models.Index(fields=["assignee", "status"], name="task_assignee_status"),
            models.Index(fields=["instance", "state", "visit"], name="task_visit"),
            # Insights: the tasks of a definition opened in a period.
            models.Index(fields=["definition", "created_at"], name="task_definition_created"),
            # Inbox (approvals/selectors.py, bench/inbox.py): a user's live tasks in due order
            # (tabs mine, delegated, overdue), and the open queue in due order, so that a page
            # or a capped count stops early instead of reading every live task.
            models.Index(
                fields=["assignee", "due_at"],
                condition=Q(status__in=["open", "claimed"]),
                name="task_live_assignee_due",
            ),
            models.Index(
                fields=["due_at"],
                condition=Q(status="open", for_requester=False),
                name="task_queue_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label or self.state} on {self.instance_id}"

    @staticmethod
    def search_text_for(instance: WorkflowInstance, label: str) -> str:
        return "\n".join((instance.title, instance.business_key, label)).lower()

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_TASK_STATUSES

    @transition(
        field=status, source=[TaskStatus.OPEN, TaskStatus.CLAIMED], target=TaskStatus.CLAIMED
    )
    def claim(self) -> None:
        pass

    @transition(field=status, source=TaskStatus.CLAIMED, target=TaskStatus.OPEN)
    def unclaim(self) -> None:
        pass

    @transition(
        field=status,
        source=[TaskStatus.OPEN, TaskStatus.CLAIMED],
        target=RETURN_VALUE(
            TaskStatus.DONE,
            TaskStatus.DELEGATED,
            TaskStatus.ESCALATED,
            TaskStatus.CANCELLED,
            TaskStatus.EXPIRED,
        ),
    )
    def close(self, outcome: str) -> str:
        return outcome


class Decision(models.Model):
    """Who chose what on a task, when, and why."""

    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="decision")
    actor = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    on_behalf_of = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    event = models.CharField(max_length=100)
    comment = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    decided_at = models.DateTimeField()
    # The request's artifact versions current when the decision was made ("approved quote v2"):
    # [{"name", "version", "sha256"}], also in the decision's audit event.
    artifact_versions = models.JSONField(default=list, blank=True)
    # The electronic signature of a step that asks for one (services/signatures.py): the
    # signer's printed name, when, its meaning, how they re-authenticated, and the digest of
    # what it signs. Empty where the step asks for none. Also in the decision's audit event.
    signature = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # Inbox tab "Done by me", newest first (approvals/selectors.py, bench/inbox.py).
            models.Index(fields=["actor", "-decided_at", "-task"], name="decision_actor_decided"),
            # Insights: the decisions of a period (workload).
            models.Index(fields=["decided_at"], name="decision_decided"),
        ]

    def __str__(self) -> str:
        return f"{self.event} by {self.actor}"


class SigningLockout(models.Model):
    """Failed signing attempts in a row, per person: the third locks signing for a while."""

    user = models.OneToOneField(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    failures = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"signing of {self.user}"


class Timer(models.Model):
    """A pending `after` transition; found by the SLA sweep through `due_at` (invariant 6)."""

    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="timers")
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.CASCADE)
    state = models.CharField(max_length=200)
    visit = models.PositiveIntegerField()
    delay = models.CharField(max_length=50, help_text="The `after` key as written.")
    due_at = models.DateTimeField()
    fired_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=Q(fired_at__isnull=True, cancelled_at__isnull=True),
                name="timer_pending_due",
            ),
        ]

    def __str__(self) -> str:
        return f"after {self.delay} in {self.state} of {self.instance_id}"


class Channel(models.TextChoices):
    WEB = "web", "Web"
    API = "api", "API"
    SLACK = "slack", "Slack"
    EMAIL = "email", "E-mail"
    SLA = "sla", "SLA"
    SYSTEM = "system", "System"
    ADMIN = "admin", "Admin"
    SCHEDULE = "schedule", "Schedule"
    HOOK = "hook", "Inbound webhook"


class AuditEvent(models.Model):
    """Append-only, hash-chained per instance (invariant 3). Never updated or deleted."""

    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.PROTECT, related_name="audit_events"
    )
    seq = models.PositiveIntegerField()
    at = models.DateTimeField()
    actor = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    event = models.CharField(max_length=50)
    from_state = models.CharField(max_length=200, blank=True)
    to_state = models.CharField(max_length=200, blank=True)
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)
    # HMAC-SHA256 of `hash` with AUDIT_CHAIN_KEY, a key kept outside the database, and the id of
    # the key that made it. Empty on events written before the key existed.
    mac = models.CharField(max_length=64, blank=True, db_default="")
    mac_key_id = models.CharField(max_length=16, blank=True, db_default="")

    class Meta:
        ordering = ["instance", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "seq"], name="audit_instance_seq"),
        ]
        indexes = [
            # Insights: the transitions taken and the reminders sent in a period.
            models.Index(fields=["event", "at"], name="audit_event_at"),
        ]

    def __str__(self) -> str:
        return f"{self.instance_id}#{self.seq} {self.event}"


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class OutboxMessage(models.Model):
    """A side effect written in the transaction of the change and delivered after commit."""

    topic = models.CharField(max_length=50, help_text="task.created, action.invoke, ...")
    instance = models.ForeignKey(
        WorkflowInstance, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    payload = models.JSONField(default=dict)
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(
        max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    created_at = models.DateTimeField()
    available_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The W3C trace context (traceparent) of the service call that wrote it, so that its
    # delivery's span is a child of that call whoever sends it (approvals/tracing.py).
    trace_context = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at"], condition=Q(status="pending"), name="outbox_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} ({self.status})"


class CallbackStatus(models.TextChoices):
    WAITING = "waiting", "Waiting for the report"
    SUCCEEDED = "succeeded", "Reported success"
    FAILED = "failed", "Reported failure"
    TIMED_OUT = "timed_out", "Timed out"
    CLOSED = "closed", "Closed"


class CallbackToken(models.Model):
    """One attempt of a callback step (`invoke: {src: callback}`): the task token an outside
    system reports back with (approvals/services/callbacks.py). Only the token's SHA-256 is
    stored; the token itself is an HMAC of `nonce` with the server's SECRET_KEY, so whoever may
    see the request can be shown it again, and a copy of the database alone gives none."""

    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.CASCADE, related_name="callbacks"
    )
    message = models.ForeignKey(
        OutboxMessage, on_delete=models.CASCADE, related_name="+", help_text="The action.invoke."
    )
    state = models.CharField(max_length=200)
    visit = models.PositiveIntegerField()
    attempt = models.PositiveSmallIntegerField()
    nonce = models.CharField(max_length=32, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=10, choices=CallbackStatus.choices, default=CallbackStatus.WAITING
    )
    opened_at = models.DateTimeField()
    timeout_at = models.DateTimeField()
    heartbeat_due = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "attempt"], name="callback_per_attempt"),
        ]

    def __str__(self) -> str:
        return f"callback {self.state} #{self.attempt} of request {self.instance_id}"

    @property
    def due_at(self) -> datetime:
        """When the step gives up on this attempt: its timeout, or a missed heartbeat."""
        return min(self.timeout_at, self.heartbeat_due or self.timeout_at)


class Heartbeat(models.Model):
    """Last time a background process proved it runs (the worker executing a beat task)."""

    source = models.CharField(max_length=50, primary_key=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.source} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


# ----- Object permissions (django-guardian, with a direct foreign key for fast joins)


class InstanceUserPermission(UserObjectPermissionBase):
    """Per-request permissions given to people as they take part: the requester at the start,
    whoever claims, decides, delegates or is handed a task. Role members who may act now are
    not listed here; their access follows their roles at the time of the action."""

    content_object = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False


# ----- Notifications and Slack


class NotificationKind(models.TextChoices):
    TASK_NEW = "task_new", "New task"
    TASK_CLAIMED = "task_claimed", "Task claimed by someone else"
    TASK_DELEGATED = "task_delegated", "Task delegated to you"
    DECISION = "decision", "Decision on your request"
    REMINDER = "reminder", "Reminder"
    ESCALATION = "escalation", "Escalation"
    COMPLETED = "completed", "Request finished"
    MENTION = "mention", "Mentioned in a discussion"
    QUESTION = "question", "Question for you"
    COMMENT = "comment", "Comment on your request"


class Notification(models.Model):
    """What a user was told, written in the transaction of the change that caused it. The source
    of truth for the bell, the notifications page and a reconnecting browser's catch-up (by id).
    """

    recipient = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    topic = models.CharField(max_length=50, help_text="The outbox topic that caused it.")
    message = models.ForeignKey(
        OutboxMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.CASCADE, related_name="notifications"
    )
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    actor = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    text = models.CharField(max_length=300)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The list, the catch-up (id > last seen) and the unread count, per recipient.
            models.Index(fields=["recipient", "-id"], name="notification_recipient"),
            models.Index(
                fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread"
            ),
        ]
        constraints = [
            # A message tells a person one thing once, even if a subscriber ran twice.
            models.UniqueConstraint(
                fields=["message", "recipient"], name="notification_once_per_message"
            ),
        ]

    def __str__(self) -> str:
        return f"to {self.recipient_id}: {self.text}"


class SlackMessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class SlackMessage(models.Model):
    """One Block Kit message to a person (direct message) or a role's channel, written with the
    notification and posted by Celery after commit, with retries; failures stay visible here."""

    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    notification = models.OneToOneField(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="slack"
    )
    recipient = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    role = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE)
    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL)
    text = models.CharField(max_length=300)
    status = models.CharField(
        max_length=10, choices=SlackMessageStatus.choices, default=SlackMessageStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    channel_id = models.CharField(max_length=32, blank=True, help_text="Where it was posted.")
    ts = models.CharField(max_length=32, blank=True, help_text="Slack's id of the message.")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    closed_shown_at = models.DateTimeField(
        null=True, blank=True, help_text="When the message was updated to say the task closed."
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="slack_due",
            ),
            models.Index(fields=["task"], name="slack_task"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(recipient__isnull=False) | Q(role__isnull=False),
                name="slack_message_has_target",
            ),
        ]

    def __str__(self) -> str:
        target = f"role {self.role_id}" if self.role_id else f"user {self.recipient_id}"
        return f"{self.get_kind_display()} to {target} ({self.status})"


class SlackInteraction(models.Model):
    """A button press or modal submission received from Slack, once: its key is unique, so a
    retried or replayed payload finds its row and does nothing again."""

    key = models.CharField(max_length=200, unique=True)
    slack_user_id = models.CharField(max_length=32)
    user = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL)
    event = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=20, blank=True, help_text="done, refused or error.")
    detail = models.TextField(blank=True)
    response_url = models.URLField(max_length=500, blank=True)
    received_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.slack_user_id} {self.event or '?'} on {self.task_id}: {self.outcome}"


# ----- SLA timers and automated steps


class FailedActionResolution(models.TextChoices):
    RETRIED = "retried", "Retried"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Request cancelled"


class FailedAction(models.Model):
    """An automated step (`invoke`) that failed its last attempt and waits for an operator:
    what failed, how often and why. Its task is the operator's manual-review task."""

    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.CASCADE, related_name="failed_actions"
    )
    task = models.OneToOneField(Task, on_delete=models.PROTECT, related_name="failed_action")
    message = models.ForeignKey(
        OutboxMessage, on_delete=models.PROTECT, related_name="+", help_text="The action.invoke."
    )
    state = models.CharField(max_length=200)
    visit = models.PositiveIntegerField()
    src = models.CharField(max_length=100)
    attempts = models.PositiveSmallIntegerField()
    error = models.TextField()
    advice = models.CharField(
        max_length=500, blank=True, help_text="What to do about it, where the action said."
    )
    failed_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=20, choices=FailedActionResolution.choices, blank=True)
    resolved_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["-failed_at"]

    def __str__(self) -> str:
        return f"{self.src} failed in {self.state} of {self.instance_id}"


class StepAttempt(models.Model):
    """One attempt of an automated step and what came of it, written with its outcome: the
    manual-review page and the admin list every attempt of a step visit, across the operator's
    retries (they share the step's key)."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="+")
    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.CASCADE, related_name="step_attempts"
    )
    step = models.CharField(max_length=300, help_text="One key per step visit (the payload's).")
    number = models.PositiveSmallIntegerField(help_text="The attempt's number in its round.")
    at = models.DateTimeField()
    error = models.TextField(blank=True, help_text="Empty: it succeeded.")
    permanent = models.BooleanField(
        default=False, help_text="The action said another attempt cannot help."
    )

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["step", "at"], name="step_attempt_step")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.step}: {self.error or 'ok'}"


# ----- REST API and outgoing webhooks


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 of the secret is stored: the plaintext is shown once,
    when it is made, and a stolen database yields nothing that authenticates."""

    user = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What it is for, e.g. 'ERP integration'.")
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=Q(revoked_at__isnull=True),
                name="api_token_live_name",
            ),
        ]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotencyRecord(models.Model):
    """The first successful answer to a POST carrying an Idempotency-Key, replayed to retries.

    The row is inserted in the transaction of the change it guards: a concurrent retry with the
    same key waits on the unique index until the first commits (then replays its answer) or
    rolls back (then runs itself), so one key never makes two changes.
    """

    user = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    key = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=255, help_text="Method and path.")
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical body.")
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "endpoint", "key"], name="idempotency_user_endpoint_key"
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key}"


WEBHOOK_EVENT_TYPES = (
    "instance.started",
    "instance.state_changed",
    "task.created",
    "task.decided",
    "task.escalated",
    "instance.completed",
    "artifact.version_added",
    "callback.waiting",
)


class WebhookSubscription(models.Model):
    """An outside URL told about changes, signed with its own secret."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, help_text="http(s) URL that receives a signed POST.")
    secret = models.CharField(
        max_length=200, help_text="Shared with the receiver, which verifies X-Signoff-Signature."
    )
    event_types = models.JSONField(
        default=list, help_text=f"Any of: {', '.join(WEBHOOK_EVENT_TYPES)}."
    )
    workflow_keys = models.JSONField(
        default=list, blank=True, help_text="Only these workflows' requests; empty: all."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # An ask's one-off `callback_url` (services.asks): only that request's events, and
    # switched off once it has ended.
    instance = models.ForeignKey(
        "WorkflowInstance",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only this request's events (an ask's callback_url); empty: every request.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def wants(self, topic: str, workflow_key: str, instance_id: int | None = None) -> bool:
        return (
            topic in self.event_types
            and (not self.workflow_keys or workflow_key in self.workflow_keys)
            and (self.instance_id is None or self.instance_id == instance_id)
        )


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One event for one subscription; written in the transaction of the change (so it exists
    iff the change committed) and POSTed after commit until it succeeds or attempts run out.
    `next_attempt_at` is durable: the beat sweep finds due rows, never a Celery countdown."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.CharField(max_length=200, help_text="Stable across retries and redelivery.")
    event_type = models.CharField(max_length=50)
    instance = models.ForeignKey(
        WorkflowInstance, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True, help_text="Excerpt of the last answer.")
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_id"], name="webhook_delivery_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            ),
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription} ({self.status})"


class HookAction(models.TextChoices):
    START = "start", "Start a request"
    EVENT = "event", "Send an event to the request found by business key"


class InboundHook(models.Model):
    """A signed endpoint, POST /hooks/<workflow key>/<hook id>/, that starts a request of the
    workflow or sends an event to one of its requests (services/inbound_hooks.py).

    The secret is kept as it is, like an outgoing subscription's: verifying an HMAC needs the
    secret itself, so a hash would not do; whoever reads this table can sign."""

    workflow_key = models.SlugField(max_length=100)
    name = models.CharField(max_length=100)
    hook_id = models.CharField(max_length=32, unique=True, editable=False)
    secret = models.CharField(max_length=200, editable=False)
    action = models.CharField(max_length=10, choices=HookAction.choices, default=HookAction.START)
    event = models.CharField(
        max_length=100, blank=True, help_text="The event sent (action event), e.g. PAID."
    )
    business_key = models.CharField(
        max_length=500,
        blank=True,
        help_text="Where the body holds the request's business key: a JSON Pointer "
        "(/order/id) or an expression (order.id). Required for events.",
    )
    mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text="Context field (start) or event data field (event) -> JSON Pointer or "
        'expression over the body, e.g. {"amount": "/order/total"}.',
    )
    run_as = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who the requests are started or moved as; empty: the published version's owner.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["workflow_key", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workflow_key", "name"], name="inbound_hook_name"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_key}/{self.name}"

    @property
    def path(self) -> str:
        return f"/hooks/{self.workflow_key}/{self.hook_id}/"


class InboundDelivery(models.Model):
    """A delivery id (X-Signoff-Delivery) an inbound hook accepted: the same id again is a
    replay. Written in the transaction of what it did, so a refused delivery leaves none."""

    hook = models.ForeignKey(InboundHook, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(max_length=200)
    received_at = models.DateTimeField()
    instance = models.ForeignKey(
        "WorkflowInstance", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["hook", "delivery_id"], name="inbound_delivery_once"),
        ]
        verbose_name_plural = "inbound deliveries"

    def __str__(self) -> str:
        return f"{self.hook} {self.delivery_id}"


class WebhookAttempt(models.Model):
    """The log: one row per POST of a delivery, with what came back."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error[:40]}"


class AskPermission(models.Model):
    """Who may ask a role (POST /api/v1/asks/): a permission per role, set in the admin.

    A program's API token asks on behalf of its user; the request's tasks may go only to the
    roles whose permission lists that user."""

    role = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="ask_permission")
    users = models.ManyToManyField(
        django_settings.AUTH_USER_MODEL,
        blank=True,
        related_name="askable_roles",
        help_text="Accounts (usually those of programs and agents) whose API tokens may send "
        "this role asks.",
    )

    class Meta:
        verbose_name = "who may ask a role"
        verbose_name_plural = "who may ask roles"

    def __str__(self) -> str:
        return f"asks to {self.role.name}"


class Ask(models.Model):
    """A program's question to a person: the request it started, which token asked, the
    action it proposes (a name and JSON arguments, with an optional JSON Schema of them) and
    the Markdown it gave the reviewer."""

    instance = models.OneToOneField(WorkflowInstance, on_delete=models.CASCADE, related_name="ask")
    token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="asks"
    )
    agent = models.CharField(max_length=100, help_text="The asking token's name at the time.")
    action_name = models.CharField(max_length=100, blank=True)
    arguments = models.JSONField(default=dict, blank=True)
    schema = models.JSONField(null=True, blank=True, help_text="JSON Schema of the arguments.")
    context = models.TextField(blank=True, help_text="Markdown for the reviewer.")
    expires_at = models.DateTimeField(null=True, blank=True)
    callback_url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["token", "created_at"], name="ask_token_created")]

    def __str__(self) -> str:
        return f"ask {self.action_name or self.instance_id} by {self.agent}"


# ----- Documents and conversation


class Artifact(models.Model):
    """A named document of a request (`quote`, `draft`...), with its numbered versions."""

    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.CASCADE, related_name="artifacts"
    )
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["instance", "name"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "name"], name="artifact_name_once"),
        ]

    def __str__(self) -> str:
        return self.name


class ArtifactVersion(models.Model):
    """One immutable version: its bytes live in Django's storage under `storage_key` (never a
    public URL; downloads are permission-checked views), described and hashed here."""

    artifact = models.ForeignKey(Artifact, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    storage_key = models.CharField(max_length=300, unique=True)
    filename = models.CharField(max_length=200)
    size = models.PositiveBigIntegerField()
    media_type = models.CharField(max_length=100, help_text="Sniffed from the content.")
    sha256 = models.CharField(max_length=64)
    is_text = models.BooleanField(default=False, help_text="Given as a text body.")
    added_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    added_at = models.DateTimeField()
    state = models.CharField(max_length=200, help_text="Where the request was.")
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    note = models.CharField(max_length=500, blank=True)
    audit_seq = models.PositiveIntegerField(help_text="The audit event that recorded it.")

    class Meta:
        ordering = ["artifact", "number"]
        constraints = [
            models.UniqueConstraint(fields=["artifact", "number"], name="artifact_version_once"),
        ]

    def __str__(self) -> str:
        return f"{self.artifact.name} v{self.number}"


class Comment(models.Model):
    """A message in a request's discussion: Markdown as typed, and its sanitised HTML."""

    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    body = models.TextField()
    html = models.TextField()
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replies"
    )
    mentions = models.ManyToManyField(django_settings.AUTH_USER_MODEL, blank=True, related_name="+")
    # A reviewer's question to the requester: open until the requester answers in the thread.
    is_question = models.BooleanField(default=False)
    answered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["instance", "created_at", "id"]
        indexes = [
            models.Index(
                fields=["instance"],
                condition=Q(is_question=True, answered_at__isnull=True),
                name="comment_open_question",
            ),
        ]

    def __str__(self) -> str:
        return f"comment {self.pk} by {self.author_id}"


# ----- Channels: e-mail (approvals/integrations/email/) and Microsoft Teams (.../teams/)


class EmailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    # Waiting for the digest it goes in (due at next_attempt_at), then in it.
    HELD = "held", "Held for a digest"
    DIGESTED = "digested", "Sent in a digest"


DIGEST_KIND = "digest"
EMAIL_KINDS = [*NotificationKind.choices, (DIGEST_KIND, "Digest")]


class OutgoingEmail(models.Model):
    """One e-mail to one person; its Message-ID is fixed when the row is written, so a message
    sent twice (a worker that died after the server accepted it) is one message to the reader."""

    kind = models.CharField(max_length=20, choices=EMAIL_KINDS)
    notification = models.OneToOneField(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="email"
    )
    recipient = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    to = models.EmailField(max_length=254, help_text="The address when the message was written.")
    instance = models.ForeignKey(
        WorkflowInstance, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL)
    message_id = models.CharField(max_length=200, unique=True, help_text="Without the <>.")
    subject = models.CharField(max_length=300, blank=True, help_text="As sent.")
    status = models.CharField(
        max_length=10, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    digest = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="items",
        help_text="The digest this notification went in.",
    )
    digest_key = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        unique=True,
        help_text="A digest's person and period: one digest each, however often beat runs.",
    )
    link_used_at = models.DateTimeField(
        null=True, blank=True, help_text="When one of its decision links decided the task."
    )

    class Meta:
        app_label = "approvals"
        ordering = ["-id"]
        verbose_name = "e-mail"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="email_due",
            ),
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="held"), name="email_held_due"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to} ({self.status})"


class TeamsStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


# A card that says how a task the first card was about closed ("Approved by Bob Baker").
CLOSED_KIND = "closed"
TEAMS_KINDS = [*NotificationKind.choices, (CLOSED_KIND, "Task closed")]


class TeamsMessage(models.Model):
    kind = models.CharField(max_length=20, choices=TEAMS_KINDS)
    notification = models.OneToOneField(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="teams"
    )
    recipient = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    role = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL)
    follows = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="follow_ups",
        help_text="The card whose task closed, for a follow-up card.",
    )
    text = models.CharField(max_length=300)
    status = models.CharField(
        max_length=10, choices=TeamsStatus.choices, default=TeamsStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    closed_shown_at = models.DateTimeField(
        null=True, blank=True, help_text="When a follow-up card for its closed task was written."
    )

    class Meta:
        app_label = "approvals"
        ordering = ["-id"]
        verbose_name = "Teams message"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="teams_due",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(recipient__isnull=False) | Q(role__isnull=False),
                name="teams_message_has_target",
            ),
            # One follow-up per card, however often its task's closing is seen.
            models.UniqueConstraint(
                fields=["follows"], condition=Q(follows__isnull=False), name="teams_one_follow_up"
            ),
        ]

    def __str__(self) -> str:
        target = f"role {self.role_id}" if self.role_id else f"user {self.recipient_id}"
        return f"{self.get_kind_display()} to {target} ({self.status})"


# ----- The signed audit export (approvals/audit_export/)


class AuditExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Building"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"


class AuditExport(models.Model):
    """A signed audit bundle asked for on the auditor's page, built by a Celery task and kept
    through Django's storage under `storage_key`; downloaded by whoever asked, or anyone with
    `approvals.export_audit`."""

    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    instance_id = models.PositiveBigIntegerField(null=True, blank=True)
    workflow_key = models.CharField(max_length=100, blank=True)
    since = models.DateField(null=True, blank=True)
    until = models.DateField(null=True, blank=True)
    include_files = models.BooleanField(default=False)
    status = models.CharField(
        max_length=10, choices=AuditExportStatus.choices, default=AuditExportStatus.QUEUED
    )
    total = models.PositiveIntegerField(default=0, help_text="Requests in the range.")
    done = models.PositiveIntegerField(default=0, help_text="Requests written so far.")
    events = models.PositiveBigIntegerField(default=0)
    storage_key = models.CharField(max_length=300, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("export_audit", "Can export the signed audit trail")]

    def __str__(self) -> str:
        return f"audit export {self.pk} ({self.status})"


class RetiredRequest(models.Model):
    """What is left of a request deleted at the end of its workflow's retention period: its
    id, dates and the head of its audit chain, and where the signed bundle it was archived
    into is kept (`bundle_key` in Django's storage, with the bundle file's SHA-256). The
    chain heads of earlier exports still prove what the request held. On PostgreSQL rows are
    never updated nor deleted, and a request's audit events may only be deleted once its
    tombstone exists (migration retention)."""

    id = models.PositiveBigIntegerField(primary_key=True, help_text="The request's id.")
    workflow_key = models.CharField(max_length=100)
    definition_version = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=InstanceStatus.choices)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField()
    retention = models.CharField(max_length=20, help_text="The period it was kept for.")
    retired_at = models.DateTimeField()
    head_seq = models.PositiveIntegerField()
    head_hash = models.CharField(max_length=64, blank=True)
    bundle_key = models.CharField(max_length=300)
    bundle_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["-retired_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} ({self.workflow_key}, retired {self.retired_at:%Y-%m-%d})"
