"""The profile page and its forms (out-of-office, Slack link): an anonymous visitor is sent to
sign in and nothing is written; the forms only accept POST."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client

from accounts.models import OutOfOffice

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/accounts/profile/"),
        ("post", "/accounts/profile/"),
        ("post", "/accounts/profile/slack/"),
        ("post", "/accounts/out-of-office/{absence}/delete/"),
    ],
)
def test_an_anonymous_visitor_is_sent_to_sign_in(client: Client, reviewer, outsider, method, path):
    absence = OutOfOffice.objects.create(
        user=reviewer, substitute=outsider, starts_on=date(2030, 1, 1), ends_on=date(2030, 1, 2)
    )
    response = getattr(client, method)(
        path.format(absence=absence.pk),
        {"substitute": outsider.username, "starts_on": "2030-02-01", "ends_on": "2030-02-02"},
    )
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert list(OutOfOffice.objects.values_list("pk", flat=True)) == [absence.pk]


@pytest.mark.parametrize("path", ["/accounts/profile/slack/", "/accounts/out-of-office/1/delete/"])
def test_the_forms_take_only_post(client: Client, reviewer, path):
    client.force_login(reviewer)
    assert client.get(path).status_code == 405
