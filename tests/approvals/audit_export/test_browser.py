"""The auditor's page in a real browser under the strict CSP: ask for a bundle, watch it
queued, see it become ready without reloading (htmx polling), download it, verify it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from approvals.audit_export.signing import private_key
from approvals.models import AuditExport
from approvals.services.audit_exports import audit_export_build
from approvals.verify_bundle import verify
from tests.approvals.flows import NOW
from tests.browser.conftest import browser, login  # noqa: F401
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_auditor_asks_watches_and_downloads_a_bundle_that_verifies(
    login,  # noqa: F811
    decided_request,
    tmp_path,
):
    auditor = UserFactory(username="audrey", first_name="Audrey", last_name="Auditor")
    auditor.user_permissions.add(Permission.objects.get(codename="export_audit"))
    page = login("audrey", TEST_PASSWORD)
    page.click("nav >> text=Audit export")
    page.wait_for_url("**/audit/exports/")
    page.select_option("#id_workflow", "review")
    page.check("#id_include_files")
    page.click("text=Build the bundle")
    page.wait_for_url("**/audit/exports/")
    export = AuditExport.objects.get()
    row = page.locator(f"#audit-export-{export.pk}")
    assert "Queued" in row.inner_text() and "0 of 1 request" in row.inner_text()

    audit_export_build(export_id=export.pk, now=NOW)  # what the worker does
    download_link = page.locator(f"#audit-export-{export.pk} >> text=Download")
    download_link.wait_for()  # the page polled and swapped the row in
    assert "Ready: 1 request" in page.locator(f"#audit-export-{export.pk}").inner_text()
    with page.expect_download() as info:
        download_link.click()
    path = tmp_path / "bundle.zip"
    info.value.save_as(path)
    export.refresh_from_db()
    assert verify(str(path), private_key().public_key()) == (1, export.events)
