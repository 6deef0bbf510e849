"""The audit chain: written with the change, verified, tamper-evident, append-only on PG."""

from __future__ import annotations

from itertools import pairwise

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from approvals.models import AuditEvent
from approvals.services.errors import InvalidInput
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def decided(requester, reviewer):
    publish(review_flow())
    instance = instance_start(
        definition_key="review", context={"title": "a", "amount": 1}, actor=requester, now=NOW
    )
    task_decide(task_id=instance.tasks.get().pk, event="APPROVE", actor=reviewer, now=NOW)
    instance.refresh_from_db()
    return instance


def test_chain_links_each_event_to_the_previous(decided):
    events = list(decided.audit_events.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == ""
    for previous, event in pairwise(events):
        assert event.prev_hash == previous.hash
    assert decided.audit_head == events[-1].hash
    decision = events[2]
    assert (decision.event, decision.actor_name, decision.channel) == ("task.decided", "rob", "web")


def test_verify_audit_passes(decided, capsys):
    call_command("verify_audit")
    assert "verified: 1 instance(s)" in capsys.readouterr().out


def test_verify_audit_rejects_an_unknown_instance(decided):
    with pytest.raises(CommandError, match="no instance 999"):
        call_command("verify_audit", "--instance", "999")


def _tamper(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Only a superuser can switch the append-only trigger off, as an attacker would.
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def test_an_edited_event_is_named(decided):
    event = decided.audit_events.get(seq=3)
    _tamper(
        "UPDATE approvals_auditevent SET data = %s WHERE id = %s",
        ['{"decision": "REJECT"}', event.pk],
    )
    with pytest.raises(
        CommandError,
        match=rf"instance {decided.pk}: event #3 \(id {event.pk}\): "
        r"content does not match its hash",
    ):
        call_command("verify_audit", "--instance", str(decided.pk))


def test_a_deleted_event_is_named(decided):
    _tamper("DELETE FROM approvals_auditevent WHERE instance_id = %s AND seq = 2", [decided.pk])
    with pytest.raises(CommandError, match=r"event #2: missing"):
        call_command("verify_audit")


def test_a_deleted_tail_is_noticed(decided):
    _tamper("DELETE FROM approvals_auditevent WHERE instance_id = %s AND seq = 5", [decided.pk])
    with pytest.raises(CommandError, match="events deleted"):
        call_command("verify_audit")


@pytest.mark.postgres_only
def test_postgres_refuses_update_and_delete(decided):
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    for sql in ("UPDATE approvals_auditevent SET event = 'x'", "DELETE FROM approvals_auditevent"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert AuditEvent.objects.filter(instance=decided).count() == 5


def test_a_refused_decision_writes_no_audit(decided, requester, reviewer):
    instance = instance_start(
        definition_key="review", context={"title": "b", "amount": 1}, actor=requester, now=NOW
    )
    before = AuditEvent.objects.count()
    with pytest.raises(InvalidInput):
        task_decide(task_id=instance.tasks.get().pk, event="REJECT", actor=reviewer, now=NOW)
    assert AuditEvent.objects.count() == before
