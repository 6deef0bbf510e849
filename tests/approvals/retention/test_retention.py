"""Retention: expired requests archived into a signed bundle and deleted, leaving a tombstone;
legal holds; what the run refuses to delete; the database's own guard on the audit table."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from approvals.machine.durations import DurationError, parse_period
from approvals.models import (
    ArtifactVersion,
    AuditEvent,
    Comment,
    RetiredRequest,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.services.audit import verify_instances
from approvals.services.definitions import definition_config, definition_problems
from approvals.services.discussion import comment_add
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.retention import (
    apply_retention,
    legal_hold_place,
    legal_hold_release,
)
from approvals.verify_bundle import main as verify_main
from tests.approvals.flows import NOW, review_flow
from tests.approvals.retention.conftest import AFTER, RETENTION, finished, keep_for

pytestmark = pytest.mark.django_db


# ----- the period


@pytest.mark.parametrize(
    ("text", "later"),
    [("P7Y", (2033, 11, 2)), ("P18M", (2028, 5, 2)), ("P90D", (2027, 1, 31)), ("p1y2m", None)],
)
def test_a_period_counts_on_the_calendar(text, later):
    period = parse_period(text)
    if later:
        assert (NOW + period).date().timetuple()[:3] == later


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("PT4H", "not a period"),
        ("P0D", "zero"),
        ("7 years", "not a period"),
        ("P", "not a period"),
        (7, "got int"),
        ("P5000Y", "too long"),
    ],
)
def test_a_bad_period_is_refused_with_what_to_write(value, says):
    with pytest.raises(DurationError, match=says):
        parse_period(value)


def test_the_definition_names_a_bad_retention_at_its_place():
    flow = review_flow()
    flow["retention"] = "forever"
    assert any("not a period" in p and p.endswith("(retention)") for p in definition_problems(flow))
    flow = review_flow()
    flow["settings"] = {"retention": "P7Y"}
    assert any(
        "top level" in p and p.endswith("(settings.retention)") for p in definition_problems(flow)
    )


def test_retention_survives_import_and_export(decided_request):
    keep_for("P7Y")
    published = WorkflowDefinition.objects.get(key="review", status="published")
    assert definition_config(published)["retention"] == "P7Y"
    assert "retention" not in definition_config(published).get("settings", {})


# ----- the run


def test_an_expired_request_is_archived_then_deleted_leaving_its_tombstone(
    expired_request, public_key, tmp_path, capsys, django_capture_on_commit_callbacks
):
    pk, head = expired_request.pk, (expired_request.audit_seq, expired_request.audit_head)
    files = list(
        ArtifactVersion.objects.filter(artifact__instance=expired_request).values_list(
            "storage_key", flat=True
        )
    )
    assert len(files) == 2 and all(default_storage.exists(f) for f in files)

    with django_capture_on_commit_callbacks(execute=True):
        (report,) = apply_retention(now=AFTER)

    assert (report.expired, report.deleted, report.held, report.kept) == (1, 1, 0, [])
    assert not WorkflowInstance.objects.filter(pk=pk).exists()
    assert not AuditEvent.objects.filter(instance_id=pk).exists()
    assert not any(default_storage.exists(f) for f in files)
    tombstone = RetiredRequest.objects.get(pk=pk)
    assert (tombstone.head_seq, tombstone.head_hash) == head
    assert tombstone.retention == RETENTION and tombstone.status == "completed"
    assert tombstone.bundle_key == report.bundles[0]

    # The archive is a signed bundle the offline verifier accepts, holding the documents.
    archive = tmp_path / "archive.zip"
    with default_storage.open(tombstone.bundle_key, "rb") as stored:
        archive.write_bytes(stored.read())
    assert verify_main([str(archive), "--public-key", str(public_key)]) == 0
    assert "OK: 1 requests" in capsys.readouterr().out
    with zipfile.ZipFile(archive) as zf:
        header, entry = (json.loads(line) for line in zf.read("manifest.jsonl").splitlines())
        assert f"requests/{pk}/files/quote/v2/quote.pdf" in zf.namelist()
    assert header["scope"]["requests"] == [pk]
    assert (entry["head_seq"], entry["head_hash"]) == head

    # The next run finds nothing to do.
    (again,) = apply_retention(now=AFTER)
    assert (again.expired, again.deleted, again.bundles) == (0, 0, [])


def test_a_request_not_yet_expired_an_active_one_and_other_workflows_stay(
    expired_request, open_request
):
    (report,) = apply_retention(now=NOW + timedelta(days=29))
    assert (report.expired, report.deleted) == (0, 0)
    (report,) = apply_retention(now=AFTER)
    assert report.deleted == 1
    assert WorkflowInstance.objects.filter(pk=open_request.pk).exists()
    assert apply_retention(now=AFTER, workflow_key="other") == []


def test_dry_run_counts_and_changes_nothing(expired_request):
    (report,) = apply_retention(now=AFTER, dry_run=True)
    assert (report.expired, report.deleted, report.bundles) == (1, 0, [])
    assert WorkflowInstance.objects.filter(pk=expired_request.pk).exists()
    assert not RetiredRequest.objects.exists()


def test_a_workflow_without_retention_keeps_everything(decided_request):
    assert apply_retention(now=NOW + timedelta(days=3650)) == []
    assert WorkflowInstance.objects.filter(pk=decided_request.pk).exists()


def test_a_request_with_replies_and_document_lineage_is_deleted_whole(expired_request, reviewer):
    question = comment_add(
        instance_id=expired_request.pk, body="Which cost centre?", actor=reviewer, now=NOW
    )
    comment_add(
        instance_id=expired_request.pk,
        body="Still which?",
        actor=reviewer,
        now=NOW,
        reply_to=question.pk,
    )
    (report,) = apply_retention(now=AFTER)
    assert report.deleted == 1 and not Comment.objects.exists()
    assert not ArtifactVersion.objects.exists()


def test_a_broken_chain_is_kept_as_evidence(expired_request):
    WorkflowInstance.objects.filter(pk=expired_request.pk).update(audit_head="0" * 64)
    (report,) = apply_retention(now=AFTER)
    assert report.deleted == 0 and report.bundles == []
    assert report.kept and "does not verify" in report.kept[0]
    assert WorkflowInstance.objects.filter(pk=expired_request.pk).exists()
    assert not RetiredRequest.objects.exists()


def test_a_parent_waits_for_its_sub_requests(expired_request, open_request):
    WorkflowInstance.objects.filter(pk=open_request.pk).update(parent=expired_request)
    (report,) = apply_retention(now=AFTER)
    assert (report.expired, report.waiting_for_children, report.deleted) == (1, 1, 0)
    assert WorkflowInstance.objects.filter(pk=expired_request.pk).exists()


# ----- legal holds


def test_a_legal_hold_keeps_an_expired_request_until_released(expired_request, keeper):
    held = legal_hold_place(
        instance_id=expired_request.pk, reason="Litigation 2026-14", actor=keeper, now=NOW
    )
    assert held.legal_hold and held.legal_hold_reason == "Litigation 2026-14"
    (report,) = apply_retention(now=AFTER)
    assert (report.expired, report.held, report.deleted) == (1, 1, 0)
    assert WorkflowInstance.objects.filter(pk=expired_request.pk).exists()

    legal_hold_release(instance_id=expired_request.pk, reason="Case closed", actor=keeper, now=NOW)
    events = list(
        AuditEvent.objects.filter(instance=expired_request, event__startswith="legal_hold")
        .order_by("seq")
        .values_list("event", "data", "actor_name")
    )
    assert events == [
        ("legal_hold.placed", {"reason": "Litigation 2026-14"}, "lena"),
        ("legal_hold.released", {"reason": "Case closed"}, "lena"),
    ]
    assert list(verify_instances([expired_request.pk])) == []
    (report,) = apply_retention(now=AFTER)
    assert report.deleted == 1


def test_legal_holds_refuse_the_outsider_and_bad_input(expired_request, keeper, reviewer):
    with pytest.raises(NotAllowed):
        legal_hold_place(instance_id=expired_request.pk, reason="x", actor=reviewer, now=NOW)
    with pytest.raises(InvalidInput, match="say why"):
        legal_hold_place(instance_id=expired_request.pk, reason="  ", actor=keeper, now=NOW)
    with pytest.raises(InvalidInput, match="longer than 500"):
        legal_hold_place(instance_id=expired_request.pk, reason="x" * 501, actor=keeper, now=NOW)
    with pytest.raises(NotAllowed, match="no such request"):
        legal_hold_place(instance_id=999999, reason="x", actor=keeper, now=NOW)
    with pytest.raises(Conflict, match="not under legal hold"):
        legal_hold_release(instance_id=expired_request.pk, reason="x", actor=keeper, now=NOW)
    legal_hold_place(instance_id=expired_request.pk, reason="Audit", actor=keeper, now=NOW)
    with pytest.raises(Conflict, match="already under legal hold: Audit"):
        legal_hold_place(instance_id=expired_request.pk, reason="Again", actor=keeper, now=NOW)
    expired_request.refresh_from_db()
    assert not AuditEvent.objects.filter(instance=expired_request, data__reason="Again").exists()


# ----- the commands


def test_the_command_reports_and_verify_audit_checks_the_archives(expired_request, keeper):
    out = io.StringIO()
    call_command("apply_retention", "--dry-run", stdout=out)
    assert "review (retention P30D" in out.getvalue() and "1 expired" in out.getvalue()
    assert "archived" not in out.getvalue()
    assert WorkflowInstance.objects.filter(pk=expired_request.pk).exists()
    with pytest.raises(CommandError, match="no workflow 'nope'"):
        call_command("apply_retention", "--workflow", "nope", stdout=io.StringIO())


def test_verify_audit_finds_a_retired_requests_archive_changed(expired_request, settings):
    (report,) = apply_retention(now=AFTER)
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "1 retired request(s) whose 1 archive bundle(s) are intact" in out.getvalue()
    call_command("verify_audit", "--instance", str(expired_request.pk), stdout=io.StringIO())

    key = report.bundles[0]
    default_storage.delete(key)
    default_storage.save(key, ContentFile(b"not the archive"))
    with pytest.raises(CommandError, match=f"retired request #{expired_request.pk}: .* changed"):
        call_command("verify_audit", stdout=io.StringIO())
    default_storage.delete(key)
    with pytest.raises(CommandError, match="cannot be read"):
        call_command("verify_audit", stdout=io.StringIO())


# ----- the database's guard (PostgreSQL)


@pytest.fixture
def postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the audit table's triggers are PostgreSQL's")


def test_audit_events_cannot_be_deleted_without_a_tombstone(postgres, expired_request):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(instance=expired_request).delete()
    assert AuditEvent.objects.filter(instance=expired_request).exists()


def test_tombstones_cannot_be_changed_or_removed(postgres, expired_request):
    apply_retention(now=AFTER)
    with pytest.raises(DatabaseError, match="tombstones are append-only"), transaction.atomic():
        RetiredRequest.objects.update(head_hash="0" * 64)
    with pytest.raises(DatabaseError, match="tombstones are append-only"), transaction.atomic():
        RetiredRequest.objects.all().delete()
    assert RetiredRequest.objects.count() == 1


def test_a_request_in_the_archive_but_held_meanwhile_stays(expired_request, keeper, monkeypatch):
    """A hold placed between the archive and the deletion wins."""
    from approvals.services import retention

    real = retention._manifest_heads

    def hold_after_archiving(bundle):
        legal_hold_place(instance_id=expired_request.pk, reason="Subpoena", actor=keeper, now=NOW)
        return real(bundle)

    monkeypatch.setattr(retention, "_manifest_heads", hold_after_archiving)
    (report,) = apply_retention(now=AFTER)
    assert report.deleted == 0 and report.bundles == []
    # The hold's own audit event changed the chain after the archive was written.
    assert report.kept == [f"#{expired_request.pk}: it changed after it was archived"]
    assert finished(expired_request).legal_hold
