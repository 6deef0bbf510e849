"""Electronic signatures: a step with `meta.task.signature` is decided only by someone who
re-authenticates then, on the task's page; the signature names the signer, the moment and the
meaning, is in the hash chain, signs this decision only, and three wrong attempts lock signing."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from approvals.machine.validation import validate_config
from approvals.models import AuditEvent, Channel, Decision, SigningLockout, Task
from approvals.services import signatures
from approvals.services.api_tokens import token_create
from approvals.services.audit import verify_instances
from approvals.services.errors import InvalidInput, NotAllowed
from approvals.services.instances import instance_start
from approvals.services.signatures import SigningCredentials
from approvals.services.task_work import task_decide, task_decide_many
from tests.approvals.flows import NOW, publish
from tests.factories import TEST_PASSWORD, GroupFactory, UserFactory

pytestmark = pytest.mark.django_db

MEANING = "Approved as Director"


def signed_flow(**signature: Any) -> dict[str, Any]:
    return {
        "id": "capex",
        "title": "Capital expense",
        "initial": "director_review",
        "segregation": "none",
        "states": {
            "director_review": {
                "meta": {
                    "label": "Director review",
                    "task": {
                        "roles": ["director"],
                        "signature": signature or {"meaning": MEANING},
                    },
                },
                "on": {"APPROVE": "approved", "REJECT": "rejected"},
            },
            "approved": {"type": "final"},
            "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


@pytest.fixture
def director(db):
    return UserFactory(
        username="vera",
        first_name="Vera",
        last_name="Director",
        groups=[GroupFactory(name="director")],
    )


@pytest.fixture
def task(requester, director) -> Task:
    publish(signed_flow())
    instance = instance_start(definition_key="capex", context={}, actor=requester, now=NOW)
    return instance.tasks.get()


def password(text: str = TEST_PASSWORD) -> SigningCredentials:
    return SigningCredentials(password=text)


def decide(task: Task, actor, signing: SigningCredentials | None, **kw: Any):
    return task_decide(
        task_id=task.pk, event="APPROVE", actor=actor, now=NOW, signing=signing, **kw
    )


# -- the definition


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("yes", "expected a mapping"),
        ({}, "say what the signature means"),
        ({"meaning": "  "}, "say what the signature means"),
        ({"meaning": "x" * 201}, "at most 200 characters"),
        ({"meaning": "ok", "level": 2}, "level"),
    ],
)
def test_a_signature_must_say_what_it_means(signature, message) -> None:
    config = signed_flow()
    config["states"]["director_review"]["meta"]["task"]["signature"] = signature
    errors = validate_config(config)
    assert any(message in str(e) for e in errors), errors


# -- signing


def test_the_right_password_signs_the_decision_and_the_chain_holds_it(task, director) -> None:
    decide(task, director, password(), comment="Within budget")
    decision = Decision.objects.get(task=task)
    signature = decision.signature
    assert signature["name"] == "Vera Director"
    assert signature["meaning"] == MEANING
    assert signature["method"] == "password"
    signed_at = datetime.fromisoformat(signature["signed_at"])
    assert signed_at == NOW and signed_at.utcoffset() is not None  # with its time zone
    assert signature["time_zone"]
    assert signatures.is_intact(decision)
    event = AuditEvent.objects.get(instance=task.instance, event="task.decided")
    assert event.data["signature"] == signature
    assert list(verify_instances([task.instance_id])) == []
    assert signatures.describe(signature).startswith("Signed by Vera Director on ")


def test_a_signature_cannot_be_moved_to_another_decision(task, director, requester) -> None:
    decide(task, director, password())
    signed = Decision.objects.get(task=task)
    instance = instance_start(definition_key="capex", context={}, actor=requester, now=NOW)
    other = instance.tasks.get()
    decide(other, director, password())
    copy = Decision.objects.get(task=other)
    copy.signature = signed.signature
    assert not signatures.is_intact(copy)
    signed.comment = "edited afterwards"
    assert not signatures.is_intact(signed)


def test_without_the_password_nothing_is_decided(task, director) -> None:
    with pytest.raises(
        NotAllowed, match=rf"needs your electronic signature \({MEANING}\).*/tasks/{task.pk}/"
    ):
        decide(task, director, None)
    with pytest.raises(InvalidInput) as refused:
        decide(task, director, password(""))
    assert refused.value.field_errors == {"password": ["Enter your password to sign."]}
    assert not Decision.objects.exists()
    assert not SigningLockout.objects.filter(user=director, failures__gt=0).exists()


def test_three_wrong_passwords_lock_signing_and_each_is_audited(task, director) -> None:
    for left in ("2 more attempts", "1 more attempt "):
        with pytest.raises(InvalidInput, match=left.strip()):
            decide(task, director, password("wrong"))
    with pytest.raises(InvalidInput, match="signing is locked for 15 minutes"):
        decide(task, director, password("wrong"))
    failed = AuditEvent.objects.filter(instance=task.instance, event="signature.failed")
    assert [e.data["failures"] for e in failed.order_by("seq")] == [1, 2, 3]
    assert "locked_until" in failed.order_by("seq").last().data
    assert list(verify_instances([task.instance_id])) == []
    # Locked: even the right password does not sign, and the lock is not counted again.
    with pytest.raises(InvalidInput, match="signing is locked"):
        decide(task, director, password())
    assert failed.count() == 3
    assert not Decision.objects.exists()
    # After the lock, the right password signs.
    task_decide(
        task_id=task.pk,
        event="APPROVE",
        actor=director,
        now=NOW + timedelta(minutes=16),
        signing=password(),
    )
    assert Decision.objects.get(task=task).signature["meaning"] == MEANING


def test_a_success_resets_the_count(task, director, requester) -> None:
    for _ in range(2):
        with pytest.raises(InvalidInput):
            decide(task, director, password("wrong"))
    decide(task, director, password())
    assert SigningLockout.objects.get(user=director).failures == 0


def test_the_outsider_is_refused_before_any_password_is_checked(task, outsider) -> None:
    outsider.set_password("outsider-pass")
    outsider.save()
    with pytest.raises(NotAllowed):
        decide(task, outsider, password("outsider-pass"))
    with pytest.raises(NotAllowed):
        decide(task, outsider, password("wrong"))
    assert not AuditEvent.objects.filter(event="signature.failed").exists()
    assert not SigningLockout.objects.filter(user=outsider).exists()


def test_the_requester_cannot_sign_their_own_request(task, requester) -> None:
    requester.groups.add(GroupFactory(name="director"))
    with pytest.raises(NotAllowed):
        decide(task, requester, password())


def test_steps_without_a_signature_ignore_credentials(requester, reviewer) -> None:
    from tests.approvals.flows import review_flow

    publish(review_flow())
    instance = instance_start(
        definition_key="review", context={"title": "Desk", "amount": 5}, actor=requester, now=NOW
    )
    task = instance.tasks.get()
    task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    assert Decision.objects.get(task=task).signature == {}
    assert "signature" not in AuditEvent.objects.get(event="task.decided").data


# -- no signing from elsewhere


@pytest.mark.parametrize("channel", [Channel.SLACK, Channel.EMAIL, Channel.API])
def test_other_channels_are_refused_with_a_link_to_the_page(task, director, channel) -> None:
    with pytest.raises(NotAllowed, match=f"sign it on the task's page: .*/tasks/{task.pk}/"):
        decide(task, director, password(), channel=channel)
    assert not Decision.objects.exists()


def test_bulk_approval_leaves_signature_steps_to_their_page(task, director) -> None:
    (outcome,) = task_decide_many(task_ids=[task.pk], event="APPROVE", actor=director, now=NOW)
    assert not outcome.ok
    assert "electronic signature" in outcome.message
    assert not Decision.objects.exists()


def test_the_api_refuses_and_says_where_to_sign(task, director) -> None:
    _, secret = token_create(user=director, name="script", actor=director, now=NOW)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    listed = client.get(f"/api/v1/tasks/{task.pk}/")
    assert listed.status_code == 200
    assert listed.json()["signature"] == MEANING
    response = client.post(
        f"/api/v1/tasks/{task.pk}/decide/",
        {"decision": "APPROVE", "password": TEST_PASSWORD},
        format="json",
    )
    assert response.status_code == 403, response.content
    assert f"/tasks/{task.pk}/" in response.json()["detail"]
    assert not Decision.objects.exists()


# -- an authenticator app's code


def current_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():06d}"


def test_with_an_app_set_up_signing_asks_for_its_code_too(task, director, settings) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device = signatures.code_setup_start(user=director)
    assert signatures.needs(director) == ["password"]  # not before it is confirmed
    with pytest.raises(InvalidInput, match="not the one your app shows"):
        signatures.code_setup_confirm(user=director, code="000000x")
    signatures.code_setup_confirm(user=director, code=current_code(device))
    assert signatures.needs(director) == ["password", "code"]
    with pytest.raises(InvalidInput) as refused:
        decide(task, director, password())
    assert refused.value.field_errors == {"code": ["Enter the code of your app to sign."]}
    with pytest.raises(InvalidInput, match="the code is wrong"):
        decide(task, director, SigningCredentials(password=TEST_PASSWORD, code="123456"))
    device.refresh_from_db()
    # A code is good once: wait for the app's next one when the last was used to confirm.
    code = current_code(device)
    while device.last_t >= int(time.time()) // device.step:
        time.sleep(0.5)
        code = current_code(device)
    decide(task, director, SigningCredentials(password=TEST_PASSWORD, code=code))
    assert Decision.objects.get(task=task).signature["method"] == "password+code"


def test_without_a_password_the_code_signs(task, director, settings) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    director.set_unusable_password()
    director.save()
    with pytest.raises(InvalidInput, match="set up an authenticator app"):
        decide(task, director, password("anything"))
    device = signatures.code_setup_start(user=director)
    device.confirmed = True
    device.save()
    assert signatures.needs(director) == ["code"]
    decide(task, director, SigningCredentials(code=current_code(device)))
    assert Decision.objects.get(task=task).signature["method"] == "code"
    with pytest.raises(InvalidInput, match="cannot be removed"):
        signatures.code_remove(user=director, password="")


def test_removing_the_app_needs_the_password(director) -> None:
    device = signatures.code_setup_start(user=director)
    device.confirmed = True
    device.save()
    with pytest.raises(InvalidInput, match="password is wrong"):
        signatures.code_remove(user=director, password="wrong")
    signatures.code_remove(user=director, password=TEST_PASSWORD)
    assert not TOTPDevice.objects.filter(user=director).exists()


# -- the pages


def test_the_task_page_asks_for_the_password_and_shows_the_signature(task, director) -> None:
    client = Client()
    client.force_login(director)
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert 'id="signature"' in page and MEANING in page
    assert 'autocomplete="current-password"' in page
    refused = client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE", "password": "no"})
    assert refused.status_code == 400
    body = refused.content.decode()
    assert "The password is wrong; 2 more attempts" in body
    assert 'value="no"' not in body  # a password is never sent back
    done = client.post(
        f"/tasks/{task.pk}/decide/", {"decision": "APPROVE", "password": TEST_PASSWORD}
    )
    assert done.status_code == 302
    settled = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "Signed by Vera Director on " in settled and f": {MEANING}." in settled
    request_page = client.get(f"/requests/{task.instance_id}/").content.decode()
    assert "Signed by Vera Director on " in request_page
    assert "tried to sign and gave a wrong password or code" in request_page


def test_the_profile_sets_up_and_removes_the_app(director, settings, outsider) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    anonymous = Client().post("/accounts/profile/signing-code/", {"step": "start"})
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
    client = Client()
    client.force_login(director)
    assert client.post("/accounts/profile/signing-code/", {"step": "bogus"}).status_code == 400
    client.post("/accounts/profile/signing-code/", {"step": "start"})
    page = client.get("/accounts/profile/").content.decode()
    assert 'id="signing-code-key"' in page and "otpauth://totp/Signoff" in page
    device = TOTPDevice.objects.get(user=director)
    client.post("/accounts/profile/signing-code/", {"step": "confirm", "code": "999999x"})
    assert not TOTPDevice.objects.get(user=director).confirmed
    client.post(
        "/accounts/profile/signing-code/", {"step": "confirm", "code": current_code(device)}
    )
    assert TOTPDevice.objects.get(user=director).confirmed
    assert 'id="signing-code-on"' in client.get("/accounts/profile/").content.decode()
    # Another person's profile posts touch only their own devices.
    other = Client()
    other.force_login(outsider)
    other.post("/accounts/profile/signing-code/", {"step": "remove", "password": TEST_PASSWORD})
    assert TOTPDevice.objects.filter(user=director, confirmed=True).exists()
    client.post("/accounts/profile/signing-code/", {"step": "remove", "password": TEST_PASSWORD})
    assert not TOTPDevice.objects.filter(user=director).exists()
