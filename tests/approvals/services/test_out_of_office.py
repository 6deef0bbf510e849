"""Out-of-office: setting it (and the loops it refuses), and work going to the substitute."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.absences import covered_user_ids, resolve_assignee
from accounts.models import OutOfOffice
from approvals.models import AuditEvent, Decision
from approvals.services.absences import absence_create
from approvals.services.errors import InvalidInput, NotAllowed
from approvals.services.task_work import task_claim, task_decide, task_delegate
from tests.approvals.flows import publish, review_flow
from tests.approvals.views.conftest import start
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


@pytest.fixture(autouse=True)
def _today_all_day(time_machine):
    """The module's TODAY is read at import; a run that crosses midnight would compare it with
    another day. Each test runs at noon of that day, the clock ticking."""
    time_machine.move_to(
        datetime.combine(TODAY, time(12), tzinfo=timezone.get_current_timezone()), tick=True
    )


def away(user, substitute, days=(0, 3)):
    return OutOfOffice.objects.create(
        user=user,
        substitute=substitute,
        starts_on=TODAY + timedelta(days=days[0]),
        ends_on=TODAY + timedelta(days=days[1]),
    )


def test_setting_out_of_office_on_the_profile(client: Client, reviewer, outsider):
    client.force_login(reviewer)
    response = client.post(
        "/accounts/profile/",
        {"substitute": "otto", "starts_on": TODAY, "ends_on": TODAY + timedelta(days=5)},
        follow=True,
    )
    absence = OutOfOffice.objects.get()
    assert (absence.user, absence.substitute) == (reviewer, outsider)
    assert "covered by <strong>Otto Outsider</strong>" in response.content.decode()
    client.force_login(outsider)
    assert "You cover for" in client.get("/accounts/profile/").content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"substitute": "rob", "starts_on": TODAY, "ends_on": TODAY}, "other than yourself"),
        ({"substitute": "ghost", "starts_on": TODAY, "ends_on": TODAY}, "No active user"),
        (
            {"substitute": "otto", "starts_on": TODAY, "ends_on": TODAY - timedelta(days=1)},
            "cannot be before the first",
        ),
        (
            {
                "substitute": "otto",
                "starts_on": TODAY - timedelta(days=9),
                "ends_on": TODAY - timedelta(days=2),
            },
            "already over",
        ),
        ({"substitute": "otto", "starts_on": "soon", "ends_on": TODAY}, "Enter a valid date"),
    ],
)
def test_bad_periods_are_refused(client: Client, reviewer, outsider, data, message):
    client.force_login(reviewer)
    response = client.post("/accounts/profile/", data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not OutOfOffice.objects.exists()


def test_overlapping_periods_are_refused(client: Client, reviewer, outsider, requester):
    away(reviewer, outsider, (0, 5))
    client.force_login(reviewer)
    response = client.post(
        "/accounts/profile/",
        {
            "substitute": "rita",
            "starts_on": TODAY + timedelta(days=4),
            "ends_on": TODAY + timedelta(days=8),
        },
    )
    assert response.status_code == 400 and "Overlaps the absence" in response.content.decode()
    assert OutOfOffice.objects.count() == 1


def test_a_loop_is_refused_with_a_message(reviewer, outsider, requester):
    away(reviewer, outsider, (0, 5))  # rob → otto
    with pytest.raises(InvalidInput) as exc:  # otto → rob on a shared day
        absence_create(
            user_id=outsider.pk,
            substitute_id=reviewer.pk,
            starts_on=TODAY + timedelta(days=5),
            ends_on=TODAY + timedelta(days=9),
            actor=outsider,
            now=timezone.now(),
        )
    assert (
        "loop: Otto Outsider → Rob Reviewer → Otto Outsider"
        in exc.value.field_errors["substitute"][0]
    )
    away(outsider, requester, (0, 5))  # otto → rita
    with pytest.raises(InvalidInput, match="errors") as exc:  # rita → rob closes rob→otto→rita
        absence_create(
            user_id=requester.pk,
            substitute_id=reviewer.pk,
            starts_on=TODAY,
            ends_on=TODAY,
            actor=requester,
            now=timezone.now(),
        )
    assert "loop" in exc.value.field_errors["substitute"][0]
    # Not a loop when the periods share no day.
    absence_create(
        user_id=requester.pk,
        substitute_id=reviewer.pk,
        starts_on=TODAY + timedelta(days=6),
        ends_on=TODAY + timedelta(days=7),
        actor=requester,
        now=timezone.now(),
    )


def test_only_the_user_or_an_admin_manages_their_absences(
    client: Client, reviewer, outsider, admin_user
):
    absence = away(reviewer, outsider)
    with pytest.raises(NotAllowed):
        absence_create(
            user_id=reviewer.pk,
            substitute_id=outsider.pk,
            starts_on=TODAY,
            ends_on=TODAY,
            actor=outsider,
            now=timezone.now(),
        )
    client.force_login(outsider)
    assert client.post(f"/accounts/out-of-office/{absence.pk}/delete/").status_code == 404
    assert client.get(f"/accounts/out-of-office/{absence.pk}/delete/").status_code == 405
    assert OutOfOffice.objects.filter(pk=absence.pk).exists()
    client.force_login(reviewer)
    client.post(f"/accounts/out-of-office/{absence.pk}/delete/")
    assert not OutOfOffice.objects.exists()


def test_chains_are_followed(reviewer, outsider, requester):
    away(reviewer, outsider)
    away(outsider, requester)
    assert resolve_assignee(reviewer.pk, TODAY) == (requester.pk, reviewer.pk)
    assert covered_user_ids(requester, TODAY) == {reviewer.pk, outsider.pk}
    assert resolve_assignee(reviewer.pk, TODAY + timedelta(days=10)) == (reviewer.pk, None)


def test_work_goes_to_the_substitute_on_behalf_of_the_absent(requester, reviewer, reviewer2):
    publish(review_flow())
    cover = UserFactory(username="cory", first_name="Cory", last_name="Cover")
    away(reviewer2, cover)
    now = timezone.now()
    task = start(requester).tasks.get()

    handed = task_delegate(task_id=task.pk, to_user_id=reviewer2.pk, actor=reviewer, now=now)
    assert handed.assignee == cover and handed.on_behalf_of == reviewer2
    assert AuditEvent.objects.get(event="task.delegated").data["on_behalf_of"] == "mia"

    task_decide(task_id=handed.pk, event="APPROVE", actor=cover, now=now)
    decision = Decision.objects.get()
    assert (decision.actor, decision.on_behalf_of) == (cover, reviewer2)
    event = AuditEvent.objects.get(event="task.decided")
    assert event.data["on_behalf_of"] == "mia"


def test_a_substitute_acts_on_the_absent_users_role_tasks_only_while_it_lasts(requester, reviewer):
    publish(review_flow())
    cover = UserFactory(username="cory", first_name="Cory", last_name="Cover")
    away(reviewer, cover, (0, 1))
    now = timezone.now()
    task = start(requester).tasks.get()
    claimed = task_claim(task_id=task.pk, actor=cover, now=now)
    assert claimed.on_behalf_of == reviewer

    later = start(requester, title="Later").tasks.get()
    with pytest.raises(NotAllowed):
        task_claim(task_id=later.pk, actor=cover, now=now + timedelta(days=3))


def test_the_requesters_substitute_may_not_decide_the_request(requester, reviewer):
    publish(review_flow())
    requester.groups.add(*reviewer.groups.all())
    cover = UserFactory(username="cory")
    away(requester, cover)
    task = start(requester).tasks.get()
    with pytest.raises(NotAllowed):
        task_decide(task_id=task.pk, event="APPROVE", actor=cover, now=timezone.now())


def test_the_admin_refuses_a_loop(client: Client, admin_user, reviewer, outsider):
    away(reviewer, outsider)
    client.force_login(admin_user)
    response = client.post(
        "/admin/accounts/outofoffice/add/",
        {"user": outsider.pk, "substitute": reviewer.pk, "starts_on": TODAY, "ends_on": TODAY},
    )
    assert response.status_code == 200 and "That would make a loop" in response.content.decode()
    assert OutOfOffice.objects.count() == 1
    client.post(
        "/admin/accounts/outofoffice/add/",
        {"user": outsider.pk, "substitute": admin_user.pk, "starts_on": TODAY, "ends_on": TODAY},
    )
    assert OutOfOffice.objects.count() == 2


def test_guardians_anonymous_user_cannot_cover_for_anyone(
    client: Client, reviewer, admin_user, anonymous
):
    client.force_login(reviewer)
    response = client.post(
        "/accounts/profile/",
        {"substitute": anonymous.username, "starts_on": TODAY, "ends_on": TODAY},
    )
    assert response.status_code == 400
    assert "No active user &#x27;AnonymousUser&#x27;." in response.content.decode()
    with pytest.raises(InvalidInput) as caught:
        absence_create(
            user_id=reviewer.pk,
            substitute_id=anonymous.pk,
            starts_on=TODAY,
            ends_on=TODAY,
            actor=reviewer,
            now=timezone.now(),
        )
    assert caught.value.field_errors == {"substitute": ["Choose an active user."]}
    # Nor in the admin: not offered by the person search, refused when posted.
    client.force_login(admin_user)
    found = client.get(
        "/admin/autocomplete/",
        {
            "term": "anon",
            "app_label": "accounts",
            "model_name": "outofoffice",
            "field_name": "substitute",
        },
    ).json()["results"]
    assert found == []
    response = client.post(
        "/admin/accounts/outofoffice/add/",
        {
            "user": reviewer.pk,
            "substitute": anonymous.pk,
            "starts_on": TODAY,
            "ends_on": TODAY,
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not OutOfOffice.objects.exists()
