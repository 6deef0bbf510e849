"""The admin's page of who may ask each role grants what POST /api/v1/asks/ checks."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from approvals.models import AskPermission
from approvals.services.asks import askable_role_names
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_admin_grants_asking_a_role(client: Client, admin_user, finance) -> None:
    agent = UserFactory(username="bot")
    client.force_login(admin_user)
    role = Group.objects.get(name="finance")
    response = client.post(
        "/admin/approvals/askpermission/add/", {"role": role.pk, "users": [agent.pk]}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert askable_role_names(agent) == {"finance"}
    listing = client.get("/admin/approvals/askpermission/").content.decode()
    assert "bot" in listing


def test_the_asks_are_read_only_and_staff_only(client: Client, admin_user, outsider) -> None:
    client.force_login(outsider)
    assert client.get("/admin/approvals/askpermission/").status_code == 302
    client.force_login(admin_user)
    assert client.get("/admin/approvals/ask/add/").status_code == 403
    assert AskPermission.objects.count() == 0
