"""Adding document versions: who may, every limit with its message, nothing half-written,
the audit trail and the decisions that name what they saw."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import transaction

from approvals.models import (
    Artifact,
    ArtifactVersion,
    AuditEvent,
    Decision,
    OutboxMessage,
    Task,
)
from approvals.services.artifacts import (
    Upload,
    artifact_add,
    artifact_orphans_sweep,
    check_files,
    instance_start_with_artifacts,
)
from approvals.services.audit import verify_instances
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.task_work import task_decide
from tests.approvals.documents.conftest import PDF, PNG, documents_flow, stored_files
from tests.approvals.flows import NOW, publish

pytestmark = pytest.mark.django_db


def pdf(name: str = "quote.pdf", content: bytes = PDF, content_type: str = "application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def add(instance, actor, upload: Upload, **kwargs):
    return artifact_add(instance_id=instance.pk, upload=upload, actor=actor, now=NOW, **kwargs)


def review_task(instance) -> Task:
    return instance.tasks.get(status__in=["open", "claimed"])


def test_a_reviewer_adds_versions_with_hash_type_parent_and_audit(
    request_under_review, reviewer, media
):
    v1 = add(request_under_review, reviewer, Upload(name="quote", file=pdf(), note="first"))
    v2 = add(request_under_review, reviewer, Upload(name="quote", file=pdf(content=PDF + b"%2")))

    assert (v1.number, v2.number) == (1, 2)
    assert v2.parent == v1 and v1.parent is None
    assert v1.sha256 == hashlib.sha256(PDF).hexdigest()
    assert v1.media_type == "application/pdf" and v1.size == len(PDF)
    assert v1.added_by == reviewer and v1.state == "review" and v1.note == "first"
    assert v1.task == review_task(request_under_review)
    assert len(stored_files(media)) == 2
    events = AuditEvent.objects.filter(
        instance=request_under_review, event="artifact.version_added"
    ).order_by("seq")
    assert [(e.data["version"], e.data["sha256"]) for e in events] == [
        (1, v1.sha256),
        (2, v2.sha256),
    ]
    assert events[1].data["parent"] == 1
    assert not list(verify_instances([request_under_review.pk]))
    message = OutboxMessage.objects.get(topic="artifact.version_added", payload__version=2)
    assert message.payload["sha256"] == v2.sha256 and message.payload["added_by"] == "rob"


def test_the_outsider_and_the_requester_without_a_task_of_theirs_are_refused(
    request_under_review, requester, outsider, media
):
    with pytest.raises(NotAllowed, match="no such request"):
        add(request_under_review, outsider, Upload(name="quote", file=pdf()))
    with pytest.raises(NotAllowed, match="requester while a task of theirs is open"):
        add(request_under_review, requester, Upload(name="quote", file=pdf()))
    assert not ArtifactVersion.objects.exists() and not stored_files(media)


def test_the_requester_adds_while_answering_changes_requested(
    request_under_review, requester, reviewer
):
    add(request_under_review, reviewer, Upload(name="quote", file=pdf()))
    task_decide(
        task_id=review_task(request_under_review).pk,
        event="REQUEST_CHANGES",
        comment="A cheaper one, please",
        actor=reviewer,
        now=NOW,
    )
    version = add(request_under_review, requester, Upload(name="quote", file=pdf(content=PDF * 2)))
    assert version.number == 2 and version.state == "changes"
    # The reviewer has no open task now: they read, they do not add.
    with pytest.raises(NotAllowed):
        add(request_under_review, reviewer, Upload(name="quote", file=pdf()))


BAD_UPLOADS = [
    (Upload(name="quote", file=pdf(content=b"")), "file", "The file is empty"),
    # Django's upload parser strips directories from names; other callers' files may not.
    (Upload(name="quote", file=ContentFile(PDF, "../quote.pdf")), "file", "path separators"),
    (Upload(name="quote", file=ContentFile(PDF, "a\\b.pdf")), "file", "path separators"),
    (Upload(name="quote", file=pdf(name="quo\x07te.pdf")), "file", "control characters"),
    (Upload(name="quote", file=pdf(name="quote\u202e.pdf")), "file", "control characters"),
    (Upload(name="Quote/../x", file=pdf()), "name", "artifact name"),
    (Upload(name="", file=pdf()), "name", "artifact name"),
    (Upload(name="quote", file=pdf(), text="also text"), "file", "not both"),
    (Upload(name="quote"), "file", "not both"),
    (Upload(name="quote", text="   "), "text", "The text is empty"),
    (Upload(name="quote", file=pdf(), note="n" * 501), "note", "longer than 500"),
    # HTML claiming to be a PDF, by its type and by its name.
    (
        Upload(name="quote", file=pdf(content=b"<html><script>alert(1)</script></html>")),
        "file",
        "content is text/html, not application/pdf",
    ),
    # A PNG named .pdf, sent without a type.
    (
        Upload(name="quote", file=pdf(content=PNG, content_type="application/octet-stream")),
        "file",
        "content is image/png, not application/pdf",
    ),
    # A type the step does not accept for a quote.
    (
        Upload(
            name="quote",
            file=SimpleUploadedFile("q.zip", b"PK\x03\x04" + b"\0" * 40, "application/zip"),
        ),
        "file",
        "must be application/pdf or image/* or text/*; this file is application/zip",
    ),
    # Over the step's max_mb (1 MB).
    (
        Upload(name="quote", file=pdf(content=PDF + b"0" * (1024 * 1024))),
        "file",
        "at most 1 MB",
    ),
]


@pytest.mark.parametrize(("upload", "field", "message"), BAD_UPLOADS)
def test_each_bad_upload_is_refused_with_its_message_and_leaves_nothing(
    request_under_review, reviewer, media, upload, field, message
):
    seq = request_under_review.audit_seq
    with pytest.raises(InvalidInput) as refused:
        add(request_under_review, reviewer, upload)
    assert message in " ".join(refused.value.field_errors[field])
    assert not ArtifactVersion.objects.exists() and not Artifact.objects.exists()
    assert not stored_files(media)
    request_under_review.refresh_from_db()
    assert request_under_review.audit_seq == seq


def test_the_site_limits_size_and_count(request_under_review, reviewer, settings, media):
    settings.ARTIFACT_MAX_MB = 1
    with pytest.raises(InvalidInput, match="larger than 1 MB"):
        add(request_under_review, reviewer, Upload(name="spec", file=pdf(content=PDF * 40000)))
    settings.ARTIFACT_MAX_VERSIONS = 2
    add(request_under_review, reviewer, Upload(name="quote", file=pdf()))
    add(request_under_review, reviewer, Upload(name="notes", text="hello"))
    with pytest.raises(InvalidInput, match="already has 2 document versions"):
        add(request_under_review, reviewer, Upload(name="quote", file=pdf()))
    assert len(stored_files(media)) == 2


def test_text_bodies_and_sniffed_text_types(request_under_review, reviewer):
    text = add(request_under_review, reviewer, Upload(name="notes", text="line one\nline two\n"))
    assert (text.media_type, text.is_text, text.filename) == ("text/plain", True, "notes.txt")
    data = add(request_under_review, reviewer, Upload(name="data", text='{"a": [1, 2]}'))
    assert data.media_type == "application/json"
    md = SimpleUploadedFile("draft.md", b"# Draft\n\nSome *words*.\n", content_type="text/markdown")
    assert add(request_under_review, reviewer, Upload(name="draft", file=md)).media_type == (
        "text/markdown"
    )
    svg = SimpleUploadedFile(
        "logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "image/svg+xml"
    )
    assert add(request_under_review, reviewer, Upload(name="logo", file=svg)).media_type == (
        "image/svg+xml"
    )


def test_a_required_document_blocks_approval_but_not_saying_no(request_under_review, reviewer):
    task = review_task(request_under_review)
    with pytest.raises(Conflict, match="needs the quote before it can be approved"):
        task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    assert not Decision.objects.exists()
    add(request_under_review, reviewer, Upload(name="quote", file=pdf()))
    v2 = add(request_under_review, reviewer, Upload(name="quote", file=pdf(content=PDF * 2)))
    task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    decision = Decision.objects.get(task=task)
    assert decision.artifact_versions == [{"name": "quote", "version": 2, "sha256": v2.sha256}]
    event = AuditEvent.objects.get(instance=request_under_review, event="task.decided")
    assert event.data["artifacts"] == decision.artifact_versions


def test_rejecting_needs_no_document(request_under_review, reviewer):
    task = review_task(request_under_review)
    task_decide(task_id=task.pk, event="REJECT", comment="No", actor=reviewer, now=NOW)
    assert Decision.objects.get(task=task).artifact_versions == []


def test_an_upload_in_a_rolled_back_transaction_leaves_no_row_and_the_sweep_removes_its_file(
    request_under_review, reviewer, media
):
    with pytest.raises(RuntimeError), transaction.atomic():
        add(request_under_review, reviewer, Upload(name="quote", file=pdf()))
        raise RuntimeError("the caller's transaction fails after the upload")
    assert not ArtifactVersion.objects.exists()
    # A file whose row was undone by the caller is an orphan; young ones may be in flight.
    assert len(stored_files(media)) == 1
    kept = add(request_under_review, reviewer, Upload(name="quote", file=pdf()))
    assert artifact_orphans_sweep(now=NOW.replace(year=2000)) == 0
    assert artifact_orphans_sweep(now=NOW.replace(year=2100)) == 1
    assert [p.name for p in stored_files(media)] == [kept.storage_key.rsplit("/", 1)[1]]


def test_verify_audit_rehashes_stored_files_and_names_a_changed_one(
    request_under_review, reviewer, media
):
    version = add(request_under_review, reviewer, Upload(name="quote", file=pdf()))
    call_command("verify_audit")
    assert not list(check_files([request_under_review.pk]))
    (media / version.storage_key).write_bytes(PDF + b"tampered")
    with pytest.raises(CommandError, match=r"quote v1 \(artifacts/.*\): the stored bytes hash"):
        call_command("verify_audit")
    (media / version.storage_key).unlink()
    (problem,) = check_files([request_under_review.pk])
    assert "cannot be read" in problem.problem
    # Editing the row's hash to match new bytes does not help: the audit event keeps the old.
    ArtifactVersion.objects.filter(pk=version.pk).update(sha256="0" * 64)
    (problem,) = check_files([request_under_review.pk])
    assert "differs from the one its audit event recorded" in problem.problem


def test_start_form_documents_all_or_nothing(requester, reviewer, media):
    flow = documents_flow()
    flow["form"]["meta"] = {
        "artifacts": {"quote": {"required": True, "types": ["application/pdf"]}}
    }
    publish(flow)
    start = {"context": {"title": "Desk", "amount": 80}, "actor": requester, "now": NOW}
    with pytest.raises(InvalidInput) as refused:
        instance_start_with_artifacts(definition_key="review", uploads=[], **start)
    assert refused.value.field_errors == {"artifact_quote": ["Add the quote (required)."]}
    html = SimpleUploadedFile("quote.pdf", b"<!doctype html><p>hi", content_type="application/pdf")
    with pytest.raises(InvalidInput) as refused:
        instance_start_with_artifacts(
            definition_key="review", uploads=[Upload(name="quote", file=html)], **start
        )
    assert "content is text/html" in refused.value.field_errors["artifact_quote"][0]
    assert not stored_files(media) and not ArtifactVersion.objects.exists()
    instance = instance_start_with_artifacts(
        definition_key="review", uploads=[Upload(name="quote", file=pdf())], **start
    )
    version = ArtifactVersion.objects.get(artifact__instance=instance)
    assert (version.added_by, version.state, version.task) == (requester, "review", None)
    # The step's own requirement is met by the start form's quote.
    task_decide(task_id=review_task(instance).pk, event="APPROVE", actor=reviewer, now=NOW)


def test_a_definition_with_bad_artifact_rules_does_not_publish(db):
    flow = documents_flow(quote={"required": "yes", "types": ["pdf"], "max_mb": -1})
    with pytest.raises(InvalidInput) as refused:
        publish(flow)
    text = str(refused.value.field_errors or refused.value.message)
    assert "states.review.meta.artifacts.quote.required" in text
    assert "'pdf' is not a media type" in text
    assert "megabytes above 0" in text


def test_the_sweep_keeps_young_orphans(request_under_review, reviewer, media):
    with pytest.raises(RuntimeError), transaction.atomic():
        add(request_under_review, reviewer, Upload(name="quote", file=pdf()))
        raise RuntimeError
    (orphan,) = stored_files(media)
    from django.utils import timezone

    assert artifact_orphans_sweep(now=timezone.now()) == 0
    assert artifact_orphans_sweep(now=timezone.now() + timedelta(minutes=61)) == 1
    assert not orphan.exists()
