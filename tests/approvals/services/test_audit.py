"""The audit chain: written with the change, verified, tamper-evident, append-only on PG."""

from __future__ import annotations

import json
import secrets
from itertools import pairwise

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from approvals.models import AuditEvent, WorkflowInstance
from approvals.services.audit import event_hash
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
    with transaction.atomic(), connection.cursor() as cursor:
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


# ----- the keyed chain: AUDIT_CHAIN_KEY lives outside the database


def _rewrite_and_rehash(instance: WorkflowInstance, seq: int, data: dict, *, strip_mac: bool):
    """What someone with write access to the database alone can do: edit an event, recompute
    every later plain hash (the algorithm is public) and the head the instance recorded."""
    events = list(instance.audit_events.order_by("seq"))
    previous = events[seq - 2].hash if seq > 1 else ""
    for event in events[seq - 1 :]:
        if event.seq == seq:
            event.data = data
            if strip_mac:
                event.mac = event.mac_key_id = ""
        event.prev_hash = previous
        event.hash = event_hash(event)
        _tamper(
            "UPDATE approvals_auditevent SET data = %s, prev_hash = %s, hash = %s, mac = %s, "
            "mac_key_id = %s WHERE id = %s",
            [
                json.dumps(event.data),
                event.prev_hash,
                event.hash,
                event.mac,
                event.mac_key_id,
                event.pk,
            ],
        )
        previous = event.hash
    _tamper(
        "UPDATE approvals_workflowinstance SET audit_head = %s WHERE id = %s",
        [previous, instance.pk],
    )


@pytest.mark.parametrize("strip_mac", [False, True], ids=["mac-kept", "mac-removed"])
def test_an_event_rewritten_and_rehashed_without_the_key_is_reported(decided, strip_mac):
    _rewrite_and_rehash(decided, 3, {"decision": "REJECT"}, strip_mac=strip_mac)
    problem = "its MAC was removed" if strip_mac else "MAC does not match"
    with pytest.raises(CommandError, match=rf"instance {decided.pk}: event #3 .*{problem}"):
        call_command("verify_audit")


def test_every_event_carries_a_mac_of_its_hash_made_with_the_configured_key(decided, settings):
    from approvals.services.audit import audit_key_id, event_mac

    for event in decided.audit_events.all():
        assert event.mac_key_id == audit_key_id(settings.AUDIT_CHAIN_KEY)
        assert event.mac == event_mac(settings.AUDIT_CHAIN_KEY, event.hash)


def test_events_written_before_the_key_verify_by_hash_and_are_counted(decided, capsys):
    # What the migration leaves on events that predate AUDIT_CHAIN_KEY.
    _tamper("UPDATE approvals_auditevent SET mac = '', mac_key_id = ''", [])
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "audit chains verified: 1 instance(s), 5 event(s)" in out
    assert "5 event(s) in 1 instance(s) predate AUDIT_CHAIN_KEY" in out

    # Still a hash chain: editing one of them is reported as before.
    event = decided.audit_events.get(seq=2)
    _tamper("UPDATE approvals_auditevent SET actor_name = 'mallory' WHERE id = %s", [event.pk])
    with pytest.raises(CommandError, match="content does not match its hash"):
        call_command("verify_audit")


def test_a_wrong_key_is_reported_as_a_wrong_key(decided, settings):
    from approvals.services.audit import audit_key_id

    written_with = audit_key_id(settings.AUDIT_CHAIN_KEY)
    settings.AUDIT_CHAIN_KEY = secrets.token_urlsafe(32)
    with pytest.raises(CommandError) as refused:
        call_command("verify_audit")
    message = str(refused.value)
    assert f"5 event(s) in 1 instance(s) have a MAC made with key {written_with}" in message
    assert f"AUDIT_CHAIN_KEY (key {audit_key_id(settings.AUDIT_CHAIN_KEY)})" in message
    assert "AUDIT_CHAIN_PREVIOUS_KEYS" in message
    assert "does not match" not in message and "broken" not in message


def test_a_rotated_key_verifies_old_events_with_the_previous_keys(
    decided, settings, requester, capsys
):
    old = settings.AUDIT_CHAIN_KEY
    settings.AUDIT_CHAIN_KEY = secrets.token_urlsafe(32)
    settings.AUDIT_CHAIN_PREVIOUS_KEYS = [old]
    newer = instance_start(
        definition_key="review", context={"title": "b", "amount": 1}, actor=requester, now=NOW
    )
    assert len(set(AuditEvent.objects.values_list("mac_key_id", flat=True))) == 2
    call_command("verify_audit")
    assert "audit chains verified: 2 instance(s), 7 event(s)" in capsys.readouterr().out

    # The old key forgotten: its events cannot be checked, and the message says why.
    settings.AUDIT_CHAIN_PREVIOUS_KEYS = []
    with pytest.raises(CommandError, match=r"5 event\(s\) in 1 instance\(s\) have a MAC made"):
        call_command("verify_audit")
    call_command("verify_audit", "--instance", str(newer.pk))


def test_the_api_says_the_key_is_unknown(decided, settings):
    from approvals.services.audit import check_chains

    settings.AUDIT_CHAIN_KEY = secrets.token_urlsafe(32)
    (result,) = check_chains([decided.pk])
    assert result.broken is None
    assert result.problem.startswith("its events have a MAC made with key ")
    assert "which is neither AUDIT_CHAIN_KEY" in result.problem
    assert "nor one of AUDIT_CHAIN_PREVIOUS_KEYS" in result.problem


@pytest.mark.postgres_only
def test_postgres_refuses_truncate(decided):
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's (SQLite has no TRUNCATE)")
    for sql in (
        "TRUNCATE approvals_auditevent",
        # A cascade from the instances reaches the audit table too.
        "TRUNCATE approvals_workflowinstance CASCADE",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            # The rows this test wrote have their foreign keys checked now: PostgreSQL refuses
            # a TRUNCATE with checks pending before it asks the trigger.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(sql)
    assert AuditEvent.objects.filter(instance=decided).count() == 5
