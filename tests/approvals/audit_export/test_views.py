"""The auditor's pages: the public key, the export page with its progress and download (who may
and who may not), and a request's PDF audit report."""

from __future__ import annotations

import zipfile

import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.auth.models import Permission
from django.urls import reverse

from approvals.audit_export.signing import private_key
from approvals.models import AuditExport
from approvals.services.audit_exports import audit_export_build
from approvals.verify_bundle import verify
from tests.approvals.flows import NOW
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor(db):
    user = UserFactory(username="audrey", first_name="Audrey", last_name="Auditor")
    user.user_permissions.add(Permission.objects.get(codename="export_audit"))
    return user


@pytest.fixture
def eager():
    from workflow_app.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_the_public_key_is_served_to_anyone_as_pem(client):
    response = client.get("/audit/public-key")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    key = serialization.load_pem_public_key(response.content)
    ours = private_key().public_key()
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert key.public_bytes(*raw) == ours.public_bytes(*raw)


def test_without_a_signing_key_the_public_key_page_says_so(client, settings):
    settings.AUDIT_SIGNING_KEY = None
    response = client.get("/audit/public-key")
    assert response.status_code == 404 and b"AUDIT_SIGNING_KEY" in response.content


def test_the_outsider_and_a_reviewer_are_refused_the_export_page(
    client, outsider, reviewer, decided_request
):
    for user in (outsider, reviewer):
        client.force_login(user)
        assert client.get("/audit/exports/").status_code == 403
        response = client.post("/audit/exports/", {"instance": decided_request.pk})
        assert response.status_code == 403
    assert not AuditExport.objects.exists()
    client.logout()
    assert client.get("/audit/exports/").status_code == 302  # to the sign-in page


def test_an_auditor_builds_a_bundle_sees_it_ready_and_downloads_one_that_verifies(
    client, auditor, decided_request, eager, django_capture_on_commit_callbacks, tmp_path
):
    client.force_login(auditor)
    page = client.get("/audit/exports/")
    assert page.status_code == 200 and b"Build the bundle" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/audit/exports/", {"workflow": "review", "include_files": "on"})
    assert response.status_code == 302
    export = AuditExport.objects.get()
    assert export.requested_by == auditor and export.status == "done"
    assert (export.total, export.done) == (1, 1) and export.events > 0

    status = client.get(reverse("audit_export_status", args=[export.pk]))
    assert b"Ready: 1 request" in status.content and b"hx-trigger" not in status.content
    download = client.get(reverse("audit_export_download", args=[export.pk]))
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    path = tmp_path / "downloaded.zip"
    path.write_bytes(b"".join(download.streaming_content))
    assert verify(str(path), private_key().public_key()) == (1, export.events)
    with zipfile.ZipFile(path) as zf:
        assert any("/files/quote/v1/" in name for name in zf.namelist())


def test_a_queued_bundle_shows_its_progress_and_polls_until_built(
    client, auditor, decided_request, open_request
):
    client.force_login(auditor)
    client.post("/audit/exports/", {"instance": open_request.pk})
    export = AuditExport.objects.get()
    assert export.status == "queued"
    status = client.get(reverse("audit_export_status", args=[export.pk]))
    assert b'hx-trigger="every 2s"' in status.content and b"0 of 1 request" in status.content
    assert client.get(reverse("audit_export_download", args=[export.pk])).status_code == 404

    assert audit_export_build(export_id=export.pk, now=NOW).status == "done"
    assert audit_export_build(export_id=export.pk, now=NOW) is None  # delivered twice: once
    status = client.get(reverse("audit_export_status", args=[export.pk]))
    assert b"Ready: 1 request" in status.content


def test_the_download_is_for_who_asked_and_auditors_only(
    client, auditor, outsider, decided_request
):
    client.force_login(auditor)
    client.post("/audit/exports/", {"instance": decided_request.pk})
    export = AuditExport.objects.get()
    audit_export_build(export_id=export.pk, now=NOW)
    urls = [
        reverse("audit_export_status", args=[export.pk]),
        reverse("audit_export_download", args=[export.pk]),
    ]
    other = UserFactory(username="ivy")
    other.user_permissions.add(Permission.objects.get(codename="export_audit"))
    for user, expected in ((outsider, 404), (other, 200)):
        client.force_login(user)
        assert [client.get(url).status_code for url in urls] == [expected, expected]
    # Who asked keeps access to their bundle after losing the permission.
    auditor.user_permissions.clear()
    client.force_login(type(auditor).objects.get(pk=auditor.pk))
    assert [client.get(url).status_code for url in urls] == [200, 200]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"instance": "424242"}, b"No such request."),
        ({"instance": "1", "workflow": "review"}, b"not both"),
        (
            {"since": "2026-12-02", "until": "2026-12-01"},
            b"The end of the range is before its start.",
        ),
        ({"since": "yesterday"}, b"Enter a valid date."),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_asked(
    client, auditor, decided_request, data, message
):
    client.force_login(auditor)
    response = client.post("/audit/exports/", data)
    assert response.status_code == 400 and message in response.content
    assert not AuditExport.objects.exists()


def test_a_build_that_cannot_read_a_file_fails_with_its_reason(
    client, auditor, decided_request, media
):
    for path in media.rglob("*"):
        if path.is_file():
            path.unlink()
    client.force_login(auditor)
    client.post("/audit/exports/", {"instance": decided_request.pk, "include_files": "on"})
    export = audit_export_build(export_id=AuditExport.objects.get().pk, now=NOW)
    assert export.status == "failed" and "cannot be read" in export.error
    status = client.get(reverse("audit_export_status", args=[export.pk]))
    assert b"Failed: request" in status.content


def test_the_audit_report_pdf_is_linked_from_the_request_page_for_its_viewers(
    client, requester, reviewer, outsider, decided_request
):
    url = reverse("request_audit_report", args=[decided_request.pk])
    client.force_login(requester)
    page = client.get(reverse("request", args=[decided_request.pk]))
    assert url.encode() in page.content
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def pdf_text(data: bytes) -> str:
    """The text drawn on a ReportLab PDF's pages (its content streams: ASCII85, then Flate)."""
    import base64
    import re
    import zlib

    texts = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
        stream = zlib.decompress(base64.a85decode(stream.strip().removesuffix(b"~>")))
        texts += re.findall(rb"\((.*?)(?<!\\)\) Tj", stream)
    return " ".join(t.decode("latin-1") for t in texts)


def test_the_audit_report_holds_the_decision_its_comment_the_hashes_and_the_head(
    client, requester, decided_request
):
    import hashlib

    from tests.approvals.documents.conftest import PDF

    client.force_login(requester)
    text = pdf_text(client.get(reverse("request_audit_report", args=[decided_request.pk])).content)
    decided_request.refresh_from_db()
    assert "Comment: Fits the budget" in text
    assert "rob chose APPROVE at review" in text
    # A hash may wrap onto the next line of its cell.
    assert hashlib.sha256(PDF).hexdigest() in text.replace(" ", "")
    assert decided_request.audit_head in text.replace(" ", "")
    assert "the chain verifies" in text


def test_the_audit_report_shows_the_signature_a_decision_recorded(
    client, requester, reviewer, decided_request
):
    from approvals.services.instances import instance_start
    from approvals.services.task_work import task_decide

    instance = instance_start(
        definition_key="review", context={"title": "Desk", "amount": 80}, actor=requester, now=NOW
    )
    signature = {"printed_name": "Rob Reviewer", "meaning": "Approved as Manager"}
    task_decide(
        task_id=instance.tasks.get().pk,
        event="REJECT",
        comment="Not this quarter",
        data={"signature": signature},
        actor=reviewer,
        now=NOW,
    )
    client.force_login(requester)
    text = pdf_text(client.get(reverse("request_audit_report", args=[instance.pk])).content)
    assert "Comment: Not this quarter" in text
    assert "Signature meaning: Approved as Manager" in text
    assert "Signature printed_name: Rob Reviewer" in text
