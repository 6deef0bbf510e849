"""Schedules edited as an inline of a draft; inbound hooks made in the admin, the secret shown
once; outsiders refused."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from approvals.models import InboundHook, Schedule
from tests.approvals.admin.test_definitions import draft_change
from tests.approvals.flows import publish
from tests.approvals.triggers.flows import order_flow
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def with_schedule(data, **row):
    data.update(
        {
            "schedules-TOTAL_FORMS": "1",
            "schedules-INITIAL_FORMS": "0",
            "schedules-0-name": "weekly",
            "schedules-0-tz": "Europe/Paris",
            "schedules-0-context": "{}",
            "schedules-0-catch_up": "on",
            "schedules-0-position": "0",
            **{f"schedules-0-{k}": v for k, v in row.items()},
        }
    )
    return data


def test_a_draft_takes_a_schedule_inline(staff_client):
    url, data = draft_change(staff_client)
    response = staff_client.post(url, with_schedule(data, cron="0 8 * * MON"))
    assert response.status_code == 302, response.context["errors"]
    row = Schedule.objects.get()
    assert (row.cron, row.tz, row.definition.version) == ("0 8 * * MON", "Europe/Paris", 2)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"cron": "0 8 * * FUNDAY"}, b"is not a valid cron expression"),
        ({"cron": "0 8 * *"}, b"has 4 field(s)"),
        ({"cron": "0 8 * * MON", "tz": "Mars/Olympus"}, b"is not a known time zone"),
    ],
)
def test_a_bad_cron_or_time_zone_is_refused_in_the_admin(staff_client, row, message):
    url, data = draft_change(staff_client)
    response = staff_client.post(url, with_schedule(data, **row))
    assert response.status_code == 200 and message in response.content
    assert not Schedule.objects.exists()


def test_an_admin_makes_a_hook_and_sees_its_secret_once(staff_client, bot):
    publish(order_flow())
    response = staff_client.post(
        reverse("admin:approvals_inboundhook_add"),
        {
            "workflow_key": "order",
            "name": "erp",
            "action": "start",
            "event": "",
            "business_key": "/id",
            "mapping": '{"customer": "/who", "amount": "/total"}',
            "run_as": str(bot.pk),
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    hook = InboundHook.objects.get()
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(hook.secret in m and hook.path in m for m in shown)
    change = reverse("admin:approvals_inboundhook_change", args=[hook.pk])
    # The page after saving shows it; never again after that.
    assert hook.secret.encode() in staff_client.get(response["Location"]).content
    page = staff_client.get(change)
    assert page.status_code == 200
    assert hook.secret.encode() not in page.content
    assert hook.path.encode() in page.content


def test_a_hook_with_a_bad_mapping_is_refused_in_the_admin(staff_client, bot):
    publish(order_flow())
    response = staff_client.post(
        reverse("admin:approvals_inboundhook_add"),
        {
            "workflow_key": "order",
            "name": "erp",
            "action": "start",
            "mapping": '{"amount": "/total/~x"}',
            "run_as": str(bot.pk),
        },
    )
    assert response.status_code == 200
    assert b"mapping.amount" in response.content
    assert not InboundHook.objects.exists()


def test_outsiders_are_refused(client, outsider):
    client.force_login(outsider)
    for name in ("admin:approvals_inboundhook_changelist", "admin:approvals_inboundhook_add"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(UserFactory(username="stan", is_staff=True))  # staff, no permission
    assert client.get(reverse("admin:approvals_inboundhook_add")).status_code == 403


def test_the_ticks_taken_are_listed_read_only(staff_client, weekly, client, outsider):
    from approvals.services.schedules import schedules_fire
    from tests.approvals.triggers.flows import MONDAY_8_PARIS

    schedules_fire(now=MONDAY_8_PARIS)
    page = staff_client.get(reverse("admin:approvals_schedulefiring_changelist"))
    assert page.status_code == 200 and b"schedule-1" in page.content
    assert staff_client.get(reverse("admin:approvals_schedulefiring_add")).status_code == 403
    client.force_login(outsider)
    response = client.get(reverse("admin:approvals_schedulefiring_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_hook_changed_in_the_admin_is_checked_again(staff_client, bot):
    from django.utils import timezone

    from approvals.services.inbound_hooks import inbound_hook_create

    publish(order_flow())
    hook, secret = inbound_hook_create(
        workflow_key="order",
        name="erp",
        mapping={"amount": "/total"},
        run_as=bot,
        now=timezone.now(),
    )
    url = reverse("admin:approvals_inboundhook_change", args=[hook.pk])
    form = {
        "name": "erp",
        "action": "start",
        "business_key": "",
        "run_as": str(bot.pk),
        "is_active": "on",
    }
    refused = staff_client.post(url, {**form, "mapping": '{"amount": "total +"}'})
    assert refused.status_code == 200 and b"mapping.amount" in refused.content
    saved = staff_client.post(url, {**form, "mapping": '{"amount": "/order/total"}'})
    assert saved.status_code == 302
    hook.refresh_from_db()
    assert hook.mapping == {"amount": "/order/total"} and hook.secret == secret
