"""A sensitive field is encrypted in the database, plaintext in memory: guards and `assign`
read and write it; the audit trail keeps its hash; the form still validates the plaintext."""

from __future__ import annotations

import pytest
from django.db import connection

from approvals import sensitive
from approvals.models import AuditEvent, WorkflowInstance
from approvals.sensitive import FieldKeyError, value_hash
from approvals.services.errors import Conflict, InvalidInput
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish
from tests.approvals.sensitive.conftest import raw_context, stored
from tests.approvals.sensitive.flows import IBAN, OTHER_IBAN, payment_flow

pytestmark = pytest.mark.django_db


def test_the_database_holds_no_plaintext_but_the_instance_reads_it(payment):
    text = stored(payment)
    assert IBAN not in text
    context = raw_context(payment)
    assert set(context["iban"]) == {"$enc"}
    assert context["title"] == "Desk supplier" and context["amount"] == 1200
    again = WorkflowInstance.objects.get(pk=payment.pk)
    assert again.context["iban"] == IBAN
    assert again.data_key and again.data_key_kek == sensitive.keyring().current
    # The trail keeps what can be checked against the value, never the value.
    started = AuditEvent.objects.get(instance=payment, event="instance.started")
    assert started.data["context"]["iban"] == {"$sha256": value_hash(IBAN)}


def test_a_guard_reads_the_plaintext(payment, requester):
    assert payment.state == "german_check"
    french = instance_start(
        definition_key="payment",
        context={"title": "Paris office", "iban": OTHER_IBAN},
        actor=requester,
        now=NOW,
    )
    assert french.state == "review"


def test_assign_to_a_sensitive_field_keeps_it_encrypted(payment, reviewer):
    task = payment.tasks.get()
    task_decide(
        task_id=task.pk,
        event="CORRECT",
        data={"iban": OTHER_IBAN},
        comment="Wrong account",
        actor=reviewer,
        now=NOW,
    )
    payment = WorkflowInstance.objects.get(pk=payment.pk)
    assert payment.context["iban"] == OTHER_IBAN and payment.state == "review"
    text = stored(payment)
    assert OTHER_IBAN not in text and IBAN not in text
    moved = AuditEvent.objects.filter(instance=payment, data__has_key="assigned").get()
    assert moved.data["assigned"] == {"iban": {"$sha256": value_hash(OTHER_IBAN)}}
    decided = AuditEvent.objects.get(instance=payment, event="task.decided")
    assert decided.data["comment"] == "Wrong account"


def test_the_form_still_validates_the_plaintext_and_does_not_echo_it(payment, requester):
    with pytest.raises(InvalidInput) as refused:
        instance_start(
            definition_key="payment",
            context={"title": "Typo", "iban": "not-an-iban"},
            actor=requester,
            now=NOW,
        )
    (message,) = refused.value.field_errors["iban"]
    assert "does not match" in message and "not-an-iban" not in message
    with pytest.raises(InvalidInput) as refused:
        instance_start(
            definition_key="payment", context={"title": "No account"}, actor=requester, now=NOW
        )
    assert refused.value.field_errors == {"iban": ["This field is required."]}


def test_without_keys_a_sensitive_request_is_refused_and_nothing_is_written(
    settings, requester, reviewer
):
    publish(payment_flow())
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(Conflict, match="has sensitive fields.*FIELD_ENCRYPTION_KEYS"):
        instance_start(
            definition_key="payment",
            context={"title": "Desks", "iban": IBAN},
            actor=requester,
            now=NOW,
        )
    assert not WorkflowInstance.objects.exists()


def test_a_value_edited_in_the_database_does_not_open(payment):
    context = raw_context(payment)
    sealed = context["iban"]["$enc"]
    context["iban"]["$enc"] = ("A" if sealed[0] != "A" else "B") + sealed[1:]
    import json

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {WorkflowInstance._meta.db_table} SET context = %s WHERE id = %s",
            [json.dumps(context), payment.pk],
        )
    with pytest.raises(FieldKeyError, match="'iban' does not decrypt with its request's data key"):
        WorkflowInstance.objects.get(pk=payment.pk)


def test_a_whole_row_save_keeps_the_stored_data_key(payment):
    WorkflowInstance.objects.filter(pk=payment.pk).update(data_key_kek="elsewhere")
    payment.title = "Renamed"
    payment.save()
    assert WorkflowInstance.objects.filter(pk=payment.pk).values_list(
        "title", "data_key_kek"
    ).get() == ("Renamed", "elsewhere")


def test_a_request_without_sensitive_values_gets_no_data_key(requester):
    config = payment_flow()
    config["form"]["required"] = ["title"]
    config["states"]["submitted"]["always"] = [{"target": "review"}]
    del config["states"]["german_check"]
    publish(config)
    plain = instance_start(
        definition_key="payment", context={"title": "Nothing secret"}, actor=requester, now=NOW
    )
    assert (plain.data_key, raw_context(plain)) == ("", {"title": "Nothing secret"})


def test_a_request_loaded_without_its_key_columns_still_opens(payment):
    partial = WorkflowInstance.objects.defer("data_key", "data_key_kek").get(pk=payment.pk)
    assert partial.context["iban"] == IBAN


def test_a_resubmitted_account_is_kept_as_two_hashes(client, requester, reviewer):
    config = payment_flow()
    config["states"]["review"]["on"]["REQUEST_CHANGES"] = "changes"
    config["states"]["changes"] = {
        "meta": {"task": {"requester": True}},
        "on": {"RESUBMIT": "review"},
    }
    publish(config)
    instance = instance_start(
        definition_key="payment",
        context={"title": "Paris office", "iban": OTHER_IBAN},
        actor=requester,
        now=NOW,
    )
    review = instance.tasks.get()
    task_decide(
        task_id=review.pk, event="REQUEST_CHANGES", comment="Wrong bank", actor=reviewer, now=NOW
    )
    answer = instance.tasks.get(status__in=["open", "claimed"])
    task_decide(
        task_id=answer.pk,
        event="RESUBMIT",
        form={"title": "Paris office", "iban": IBAN},
        actor=requester,
        now=NOW,
    )
    resubmitted = AuditEvent.objects.get(instance=instance, event="task.decided", task=answer)
    assert resubmitted.data["changed"] == {
        "iban": [{"$sha256": value_hash(OTHER_IBAN)}, {"$sha256": value_hash(IBAN)}]
    }
    assert IBAN not in stored(instance) and OTHER_IBAN not in stored(instance)
    # The reviewer sees the account as it is now, and that it changed, not what it was.
    again = instance.tasks.get(status__in=["open", "claimed"])
    client.force_login(reviewer)
    page = client.get(f"/tasks/{again.pk}/").content.decode()
    assert IBAN in page and "••••••" in page and OTHER_IBAN not in page
