"""migrate_instances: requests of one version moved to the next, through the services."""

from __future__ import annotations

import pytest

from approvals.history import timeline
from approvals.models import AuditEvent, Task, TaskStatus, WorkflowInstance
from approvals.services.audit import verify_instances
from tests.approvals.flows import publish, review_flow
from tests.approvals.migration.conftest import migrate, next_version, renamed_flow, start

pytestmark = pytest.mark.django_db


def test_a_renamed_step_is_mapped_and_its_task_kept(rita, reviewer):
    v1 = publish(review_flow())
    first, second = start(rita, 2)
    task = first.tasks.get()
    task.claim()
    task.assignee = reviewer
    task.save()
    v2 = next_version(renamed_flow())

    out, _ = migrate("review", "--from", "1", "--to", "2", "--map", "review=manager_review")

    assert "2 request(s) migrated from v1 to v2" in out
    assert f"#{first.pk} migrated from v1 to v2 (review → manager_review)" in out
    for instance in (first, second):
        instance.refresh_from_db()
        assert instance.definition == v2
        assert instance.state == "manager_review"
    task.refresh_from_db()
    assert (task.state, task.status, task.assignee, task.definition) == (
        "manager_review",
        TaskStatus.CLAIMED,
        reviewer,
        v2,
    )
    event = first.audit_events.get(event="instance.migrated")
    assert (event.from_state, event.to_state) == ("review", "manager_review")
    assert event.data["message"] == "migrated from v1 to v2 (review → manager_review)"
    assert event.data["tasks_kept"] == [[task.pk, "manager_review"]]
    assert list(verify_instances([first, second])) == []
    assert not v1.instances.exists()


def test_the_request_page_tells_the_migration_in_words(rita):
    publish(review_flow())
    (instance,) = start(rita)
    next_version(renamed_flow())
    migrate("review", "--from", "1", "--to", "2", "--map", "review=manager_review")

    texts = [entry.text for entry in timeline(WorkflowInstance.objects.get(pk=instance.pk))]

    assert "Moved from version 1 to version 2 of the workflow (Review → Manager review)" in texts


def test_a_migrated_request_goes_on_in_the_new_version(rita, reviewer):
    from approvals.services.task_work import task_decide
    from tests.approvals.flows import NOW
    from tests.factories import GroupFactory

    publish(review_flow())
    (instance,) = start(rita, amount=20000)
    next_version(renamed_flow())
    GroupFactory(name="director")
    migrate("review", "--from", "1", "--to", "2", "--map", "review=manager_review")

    task_decide(task_id=instance.tasks.get().pk, event="APPROVE", actor=reviewer, now=NOW)

    instance.refresh_from_db()
    assert instance.state == "director"
    assert list(verify_instances([instance])) == []


def test_identity_needs_no_map(rita):
    publish(review_flow())
    (instance,) = start(rita)
    flow = review_flow()
    flow["title"] = "Review, second edition"
    next_version(flow)

    out, _ = migrate("review", "--from", "1", "--to", "2")

    assert "(review → review)" in out
    instance.refresh_from_db()
    assert instance.definition.version == 2


def test_a_second_run_finds_nothing_to_do(rita):
    publish(review_flow())
    start(rita, 3)
    next_version(renamed_flow())
    args = ("review", "--from", "1", "--to", "2", "--map", "review=manager_review")
    migrate(*args)
    events = AuditEvent.objects.count()

    out, _ = migrate(*args)

    assert "nothing to do" in out
    assert AuditEvent.objects.count() == events


def test_only_the_requests_named(rita):
    publish(review_flow())
    first, second = start(rita, 2)
    next_version(renamed_flow())

    migrate(
        "review",
        "--from",
        "1",
        "--to",
        "2",
        "--map",
        "review=manager_review",
        "--only",
        str(second.pk),
    )

    assert WorkflowInstance.objects.get(pk=first.pk).definition.version == 1
    assert WorkflowInstance.objects.get(pk=second.pk).definition.version == 2


def test_changed_work_closes_the_task_and_opens_the_new_steps(rita):
    publish(review_flow())
    (instance,) = start(rita)
    old_task = instance.tasks.get()
    flow = review_flow()
    flow["states"]["review"]["meta"]["task"]["roles"] = ["director"]
    next_version(flow)

    out, _ = migrate("review", "--from", "1", "--to", "2", "--dry-run")
    assert f"task #{old_task.pk} in review closed" in out
    assert "a task opens in review" in out
    migrate("review", "--from", "1", "--to", "2")

    old_task.refresh_from_db()
    assert old_task.status == TaskStatus.CANCELLED
    new_task = instance.tasks.get(status=TaskStatus.OPEN)
    assert list(new_task.candidate_groups.values_list("name", flat=True)) == ["director"]
    migrated = instance.audit_events.get(event="instance.migrated")
    assert new_task.visit == migrated.seq
    assert list(verify_instances([instance])) == []


def test_due_dates_are_kept_unless_recomputed(rita):
    publish(review_flow(sla="P2D"))
    first, second = start(rita, 2)
    kept_due = first.tasks.get().due_at
    next_version(review_flow(sla="P5D"))

    migrate("review", "--from", "1", "--to", "2", "--only", str(first.pk))
    out, _ = migrate("review", "--from", "1", "--to", "2", "--recompute-sla", "--dry-run")
    assert "SLA recomputed" in out
    migrate("review", "--from", "1", "--to", "2", "--recompute-sla")

    assert Task.objects.get(instance=first).due_at == kept_due
    task = Task.objects.get(instance=second)
    assert (
        task.due_at == task.sla_started_at + (kept_due - first.tasks.get().sla_started_at) * 5 / 2
    )
    event = second.audit_events.get(event="instance.migrated")
    assert event.data["sla"] == "recomputed"


def test_dry_run_lists_the_plan_and_writes_nothing(rita):
    publish(review_flow())
    first, _ = start(rita, 2)
    next_version(renamed_flow())
    before = (
        AuditEvent.objects.count(),
        list(WorkflowInstance.objects.values_list("definition_id", "state", "version")),
    )

    out, _ = migrate(
        "review", "--from", "1", "--to", "2", "--map", "review=manager_review", "--dry-run"
    )

    assert f"#{first.pk} r0: migrated from v1 to v2 (review → manager_review)" in out
    assert f"task #{first.tasks.get().pk} kept in manager_review (unassigned, no due date)" in out
    assert "dry run: 2 request(s) would be migrated from v1 to v2, 0 refused" in out
    after = (
        AuditEvent.objects.count(),
        list(WorkflowInstance.objects.values_list("definition_id", "state", "version")),
    )
    assert after == before


def test_a_replay_follows_the_migration(rita):
    from approvals.replay import snapshot_at

    publish(review_flow())
    (instance,) = start(rita)
    task = instance.tasks.get()
    next_version(renamed_flow())
    migrate("review", "--from", "1", "--to", "2", "--map", "review=manager_review")
    instance.refresh_from_db()

    after = snapshot_at(instance, instance.audit_seq)

    assert after.states == ["manager_review"]
    assert [(t.id, t.state) for t in after.open_tasks] == [(task.pk, "manager_review")]
