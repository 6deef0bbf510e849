"""Inbound webhooks through HTTP: signed as our outgoing webhooks are, a start or an event by
business key, the body mapped to the context; every refusal writes nothing."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from approvals.integrations.webhooks.signing import signature
from approvals.models import (
    AuditEvent,
    Channel,
    InboundDelivery,
    InboundHook,
    WorkflowInstance,
)
from approvals.services.errors import InvalidInput
from approvals.services.inbound_hooks import (
    inbound_deliveries_purge,
    inbound_hook_create,
    inbound_hook_receive,
)
from tests.approvals.flows import publish
from tests.approvals.triggers.flows import order_flow

pytestmark = pytest.mark.django_db

SECRET = "s3cret-shared-with-the-erp"
ORDER = {"order": {"id": "SO-17", "customer": {"name": "Acme"}, "total": 120.5}}


@pytest.fixture
def hooks(bot):
    publish(order_flow())
    start, _ = inbound_hook_create(
        workflow_key="order",
        name="erp orders",
        secret=SECRET,
        business_key="/order/id",
        mapping={"customer": "/order/customer/name", "amount": "order.total"},
        run_as=bot,
        now=timezone.now(),
    )
    paid, _ = inbound_hook_create(
        workflow_key="order",
        name="payments",
        secret=SECRET,
        action="event",
        event="PAID",
        business_key="/order",
        mapping={"amount": "/paid"},
        run_as=bot,
        now=timezone.now(),
    )
    return start, paid


def post(
    hook_path: str,
    body,
    *,
    secret: str = SECRET,
    delivery: str = "d-1",
    age: int = 0,
    signature_header: str | None = None,
):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = str(int(time.time()) - age)
    return Client().post(
        hook_path,
        data=raw,
        content_type="application/json",
        headers={
            "X-Signoff-Timestamp": timestamp,
            "X-Signoff-Signature": signature_header or signature(secret, timestamp, raw),
            "X-Signoff-Delivery": delivery,
        },
    )


def nothing_written() -> bool:
    return not WorkflowInstance.objects.exists() and not InboundDelivery.objects.exists()


def test_a_signed_delivery_starts_a_request_mapped_from_the_body(hooks, bot):
    start, _ = hooks
    response = post(start.path, ORDER)
    assert response.status_code == 201, response.content
    request = WorkflowInstance.objects.get(pk=response.json()["request"])
    assert request.context == {"customer": "Acme", "amount": 120.5}
    assert (request.business_key, request.requester) == ("SO-17", bot)
    started = AuditEvent.objects.get(instance=request, event="instance.started")
    assert started.channel == Channel.HOOK
    assert started.data["trigger"] == {
        "hook": "erp orders",
        "delivery": "d-1",
        "message": "started by the inbound webhook erp orders",
    }
    assert InboundDelivery.objects.get().instance == request


def test_an_event_hook_moves_the_request_found_by_business_key(hooks):
    start, paid = hooks
    post(start.path, ORDER)
    response = post(paid.path, {"order": "SO-17", "paid": 120.5}, delivery="pay-1")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "paid"
    request = WorkflowInstance.objects.get()
    assert request.context["paid"] == 120.5
    assert AuditEvent.objects.get(instance=request, event="transition").channel == Channel.HOOK


def test_a_replayed_delivery_id_is_refused(hooks):
    start, _ = hooks
    assert post(start.path, ORDER).status_code == 201
    again = post(start.path, {"order": {**ORDER["order"], "id": "SO-18"}})
    assert again.status_code == 409
    assert "d-1 was received before" in again.json()["detail"]
    assert WorkflowInstance.objects.count() == 1


@pytest.mark.parametrize(
    "case",
    ["wrong secret", "tampered body", "no signature", "stale", "future", "not a number"],
)
def test_a_bad_signature_gets_401_and_nothing_is_written(hooks, case):
    start, _ = hooks
    if case == "wrong secret":
        response = post(start.path, ORDER, secret="another-secret-entirely")
    elif case == "tampered body":
        raw = json.dumps(ORDER).encode()
        timestamp = str(int(time.time()))
        response = Client().post(
            start.path,
            data=raw.replace(b"120.5", b"999"),
            content_type="application/json",
            headers={
                "X-Signoff-Timestamp": timestamp,
                "X-Signoff-Signature": signature(SECRET, timestamp, raw),
                "X-Signoff-Delivery": "d-1",
            },
        )
    elif case == "no signature":
        response = post(start.path, ORDER, signature_header="v1=")
    elif case == "stale":
        response = post(start.path, ORDER, age=301)
    elif case == "future":
        response = post(start.path, ORDER, age=-400)
    else:
        response = Client().post(
            start.path,
            data=b"{}",
            content_type="application/json",
            headers={"X-Signoff-Timestamp": "yesterday", "X-Signoff-Signature": "v1=00"},
        )
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "bad_signature"
    assert nothing_written()


def test_a_stale_timestamp_says_how_stale(hooks):
    start, _ = hooks
    detail = post(start.path, ORDER, age=600).json()["detail"]
    assert detail == "X-Signoff-Timestamp is 600 s away from now; at most 300 s"


def test_a_mapping_path_missing_from_the_body_is_422_with_the_path(hooks):
    start, _ = hooks
    response = post(start.path, {"order": {"id": "SO-17", "total": 3}})
    assert response.status_code == 422
    assert response.json()["fields"] == {
        "mapping.customer": [
            "/order/customer/name: member 'customer' not found in {'id': 'SO-17', 'total': 3}"
        ]
    }
    assert nothing_written()


def test_a_body_the_form_refuses_is_422_naming_the_field(hooks):
    start, _ = hooks
    body = {"order": {"id": "SO-17", "customer": {"name": "Acme"}, "total": "lots"}}
    response = post(start.path, body)
    assert response.status_code == 422
    assert list(response.json()["fields"]) == ["context.amount"]
    assert nothing_written()


def test_an_event_for_an_unknown_business_key_is_422(hooks):
    _, paid = hooks
    response = post(paid.path, {"order": "SO-404", "paid": 1})
    assert response.status_code == 422
    assert response.json()["fields"]["business_key"] == [
        "/order: no request has the business key 'SO-404'"
    ]
    assert nothing_written()


def test_a_body_that_is_not_json_is_400(hooks):
    start, _ = hooks
    response = post(start.path, b"order=SO-17")
    assert response.status_code == 400
    assert nothing_written()


def test_a_delivery_without_its_id_is_400(hooks):
    start, _ = hooks
    response = post(start.path, ORDER, delivery="")
    assert response.status_code == 400
    assert "X-Signoff-Delivery" in response.json()["fields"]


def test_unknown_hooks_and_keys_are_404(hooks):
    start, _ = hooks
    assert post(f"/hooks/order/{'x' * 22}/", ORDER).status_code == 404
    # A hook's id under another workflow's key is no hook.
    assert post(f"/hooks/purchase/{start.hook_id}/", ORDER).status_code == 404
    InboundHook.objects.filter(pk=start.pk).update(is_active=False)
    assert post(start.path, ORDER).status_code == 404
    assert nothing_written()


def test_only_post(hooks):
    start, _ = hooks
    assert Client().get(start.path).status_code == 405


def test_the_command_makes_a_hook_and_prints_its_path(hooks, admin_user):
    out = io.StringIO()
    call_command(
        "create_inbound_hook",
        "order",
        "shop",
        "--secret",
        "x" * 20,
        "--map",
        "customer=/who",
        "--map",
        "amount=/total",
        "--run-as",
        "report-bot",
        stdout=out,
    )
    hook = InboundHook.objects.get(name="shop")
    assert out.getvalue() == f"{hook.path}\n"
    assert hook.path == f"/hooks/order/{hook.hook_id}/"
    assert hook.secret == "x" * 20 and hook.mapping == {"customer": "/who", "amount": "/total"}
    response = post(hook.path, {"who": "Zed", "total": 4}, secret="x" * 20)
    assert response.status_code == 201


def test_the_command_without_secret_prints_a_new_one_once(hooks, bot):
    out = io.StringIO()
    call_command("create_inbound_hook", "order", "other", "--run-as", "report-bot", stdout=out)
    path, secret = out.getvalue().split()
    assert InboundHook.objects.get(name="other").secret == secret and len(secret) >= 32
    assert path.startswith("/hooks/order/")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nothing", "x"], "no published workflow 'nothing'"),
        (["order", "erp orders"], "already has a hook named 'erp orders'"),
        (["order", "y", "--secret", "short"], "At least 16 characters"),
        (["order", "y", "--map", "amount=/a/~9"], "mapping.amount"),
        (["order", "y", "--map", "amount=total +"], "mapping.amount"),
        (["order", "y", "--action", "event"], "an event hook needs the event"),
        (["order", "y"], "is not an active user"),  # no --run-as, and no owner
        (["order", "y", "--run-as", "nobody"], "no user 'nobody'"),
    ],
)
def test_the_command_refuses_bad_input(hooks, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_inbound_hook", *args, stdout=io.StringIO())
    assert InboundHook.objects.count() == 2


def test_old_delivery_ids_are_forgotten_once_their_timestamps_are_stale(hooks):
    start, _ = hooks
    post(start.path, ORDER)
    assert inbound_deliveries_purge(now=timezone.now()) == 0
    assert inbound_deliveries_purge(now=timezone.now() + timedelta(minutes=11)) == 1


def test_the_service_checks_the_timestamp_against_its_now(hooks):
    start, _ = hooks
    raw = json.dumps(ORDER).encode()
    at = datetime.fromisoformat("2026-11-02T09:00:00+00:00")
    timestamp = str(int(at.timestamp()))
    outcome = inbound_hook_receive(
        workflow_key="order",
        hook_id=start.hook_id,
        body=raw,
        timestamp=timestamp,
        signature=signature(SECRET, timestamp, raw),
        delivery_id="svc-1",
        now=at + timedelta(seconds=299),
    )
    assert outcome.started and outcome.instance.business_key == "SO-17"
    with pytest.raises(InvalidInput):
        inbound_hook_create(workflow_key="order", name="", now=at)


def test_the_documented_demo_hook_starts_a_purchase_order(db):
    """docs/start-triggers.md, "Try it on the demo data", as written there."""
    call_command("seed_demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command(
        "create_inbound_hook",
        "purchase-order",
        "ERP orders",
        "--secret",
        "demo-secret-0123456789",
        "--business-key",
        "/order/id",
        "--map",
        "title=/order/subject",
        "--map",
        "amount=/order/total",
        "--map",
        "justification=/order/note",
        "--run-as",
        "alice",
        stdout=out,
    )
    path = out.getvalue().strip()
    body = {"order": {"id": "SO-17", "subject": "Desks", "total": 4200, "note": "Six desks"}}
    response = post(path, body, secret="demo-secret-0123456789", delivery="SO-17-1")
    assert response.status_code == 201, response.content
    request = WorkflowInstance.objects.get(pk=response.json()["request"])
    assert (request.workflow_key, request.business_key, request.requester.username) == (
        "purchase-order",
        "SO-17",
        "alice",
    )
    assert request.context["currency"] == "EUR"  # the form's default
