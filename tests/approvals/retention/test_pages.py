"""The retention page: who sees it, legal holds placed and released there, and what the
request page and the archive download answer for a deleted request."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from approvals.models import AuditEvent, RetiredRequest
from approvals.services.retention import apply_retention
from tests.approvals.retention.conftest import AFTER
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor(db):
    user = UserFactory(username="ada", first_name="Ada", last_name="Auditor")
    user.user_permissions.add(Permission.objects.get(codename="export_audit"))
    return user


def test_the_page_is_refused_to_the_outsider(client, reviewer):
    client.force_login(reviewer)
    response = client.get("/audit/retention/")
    assert response.status_code == 403
    assert "approvals.hold_legal" in response.content.decode()


def test_a_records_manager_places_and_releases_a_hold(client, keeper, expired_request):
    client.force_login(keeper)
    page = client.get("/audit/retention/").content.decode()
    assert "P30D" in page and "No request is under legal hold" in page

    response = client.post(
        "/audit/retention/", {"instance": expired_request.pk, "reason": "Litigation 2026-14"}
    )
    assert response.status_code == 302
    expired_request.refresh_from_db()
    assert expired_request.legal_hold
    page = client.get("/audit/retention/").content.decode()
    assert f"hold-{expired_request.pk}" in page and "Litigation 2026-14" in page

    response = client.post(
        "/audit/retention/",
        {"instance": expired_request.pk, "reason": "Case closed", "release": "on"},
    )
    assert response.status_code == 302
    expired_request.refresh_from_db()
    assert not expired_request.legal_hold


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"instance": 999999, "reason": "x"}, "No such request."),
        ({"instance": "abc", "reason": "x"}, "Enter a whole number."),
        ({"reason": "x"}, "This field is required."),
        ({"instance": "{pk}", "reason": ""}, "This field is required."),
        ({"instance": "{pk}", "reason": "x", "release": "on"}, "is not under legal hold"),
    ],
)
def test_bad_input_is_named_and_changes_nothing(client, keeper, expired_request, data, says):
    client.force_login(keeper)
    data = {k: (str(expired_request.pk) if v == "{pk}" else v) for k, v in data.items()}
    before = AuditEvent.objects.count()
    response = client.post("/audit/retention/", data)
    assert response.status_code == 400
    assert says in response.content.decode()
    assert AuditEvent.objects.count() == before


def test_an_auditor_sees_but_may_not_place_holds(client, auditor, expired_request):
    client.force_login(auditor)
    assert client.get("/audit/retention/").status_code == 200
    response = client.post("/audit/retention/", {"instance": expired_request.pk, "reason": "x"})
    assert response.status_code == 403
    expired_request.refresh_from_db()
    assert not expired_request.legal_hold


def test_a_deleted_request_is_gone_for_its_keepers_and_missing_for_others(
    client, auditor, keeper, requester, expired_request
):
    (deleted,) = apply_retention(now=AFTER)
    assert deleted.deleted == 1
    tombstone = RetiredRequest.objects.get()
    url = f"/requests/{tombstone.pk}/"

    client.force_login(requester)
    assert client.get(url).status_code == 404
    assert client.get(f"/audit/retention/{tombstone.pk}/archive").status_code == 404

    client.force_login(keeper)
    response = client.get(url)
    assert response.status_code == 410
    assert tombstone.head_hash in response.content.decode()
    assert "Download the signed bundle" not in response.content.decode()
    assert client.get(f"/audit/retention/{tombstone.pk}/archive").status_code == 404

    client.force_login(auditor)
    assert "Download the signed bundle" in client.get(url).content.decode()
    archive = client.get(f"/audit/retention/{tombstone.pk}/archive")
    assert archive.status_code == 200 and archive["Content-Type"] == "application/zip"
    assert archive["Content-Disposition"].startswith("attachment")
    assert b"".join(archive.streaming_content)[:2] == b"PK"
    assert client.get("/audit/retention/999999/archive").status_code == 404
    assert f"#{tombstone.pk}" in client.get("/audit/retention/").content.decode()
