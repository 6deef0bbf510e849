"""FIELD_ENCRYPTION_KEYS: checked at start, rotated with rotate_field_keys (data keys re-wrapped,
data untouched), and a missing key named clearly."""

from __future__ import annotations

import base64
import io
import os

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from approvals.models import WorkflowInstance
from approvals.sensitive import FieldKeyError
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW
from tests.approvals.sensitive.conftest import raw_context
from tests.approvals.sensitive.flows import IBAN, OTHER_IBAN
from workflow_app import env

OLD = f"2026-01:{base64.b64encode(os.urandom(32)).decode()}"
NEW = f"2026-12:{base64.b64encode(os.urandom(32)).decode()}"


def rotate() -> str:
    out = io.StringIO()
    call_command("rotate_field_keys", stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def old_key(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    return settings


@pytest.mark.django_db
def test_rotation_rewraps_data_keys_and_leaves_the_data(old_key, payment, requester):
    before = raw_context(payment)
    old_wrapped = WorkflowInstance.objects.get(pk=payment.pk).data_key
    old_key.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    # Until rotated, the old key still opens old requests; new ones use the new key.
    assert WorkflowInstance.objects.get(pk=payment.pk).context["iban"] == IBAN
    second = instance_start(
        definition_key="payment",
        context={"title": "Second", "iban": OTHER_IBAN},
        actor=requester,
        now=NOW,
    )
    assert second.data_key_kek == "2026-12"

    assert (
        rotate() == "Re-wrapped 1 data keys with '2026-12' (1 from '2026-01'); 1 already used it."
    )
    rotated = WorkflowInstance.objects.get(pk=payment.pk)
    assert rotated.data_key_kek == "2026-12" and rotated.data_key != old_wrapped
    assert raw_context(payment) == before  # the encrypted values are as they were
    assert rotate() == "Re-wrapped 0 data keys with '2026-12'; 2 already used it."

    old_key.FIELD_ENCRYPTION_KEYS = [NEW]
    assert WorkflowInstance.objects.get(pk=payment.pk).context["iban"] == IBAN
    assert WorkflowInstance.objects.get(pk=second.pk).context["iban"] == OTHER_IBAN


@pytest.mark.django_db
def test_a_missing_key_is_named_and_rotation_writes_nothing(old_key, payment):
    old_key.FIELD_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(FieldKeyError, match="'2026-01', which is not in FIELD_ENCRYPTION_KEYS"):
        WorkflowInstance.objects.get(pk=payment.pk)
    with pytest.raises(
        CommandError,
        match=r"nothing was re-wrapped: .* not in FIELD_ENCRYPTION_KEYS: '2026-01' \(1 requests\)",
    ):
        rotate()
    assert WorkflowInstance.objects.filter(pk=payment.pk, data_key_kek="2026-01").exists()


@pytest.mark.django_db
def test_a_different_key_under_the_same_id_is_refused(old_key, payment):
    old_key.FIELD_ENCRYPTION_KEYS = [f"2026-01:{base64.b64encode(os.urandom(32)).decode()}"]
    with pytest.raises(
        FieldKeyError, match="does not unwrap with the key-encryption key '2026-01'"
    ):
        WorkflowInstance.objects.get(pk=payment.pk)


@pytest.mark.django_db
def test_rotation_without_keys_is_refused(settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(CommandError, match="FIELD_ENCRYPTION_KEYS is not set"):
        rotate()


KEY = base64.b64encode(b"k" * 32).decode()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nocolon", "entry 1 is not <id>:<key>"),
        (f"bad id!:{KEY}", "entry 1 is not <id>:<key> with an id of letters"),
        (f"a:{KEY},b:not base64!", "entry 2 \\(id 'b'\\) is not base64"),
        (f"a:{base64.b64encode(b'short').decode()}", "entry 1 \\(id 'a'\\) is 5 bytes, not 32"),
        (f"a:{KEY},a:{KEY}", "entry 2: the id 'a' is given twice"),
    ],
)
def test_bad_values_stop_the_start_with_a_clear_message(monkeypatch, tmp_path, value, message):
    monkeypatch.setenv("FIELD_ENCRYPTION_KEYS", value)
    with pytest.raises(ImproperlyConfigured, match=f"FIELD_ENCRYPTION_KEYS: {message}") as refused:
        env.field_encryption_keys("FIELD_ENCRYPTION_KEYS", debug=True, keep_file=tmp_path / "k")
    assert KEY not in str(refused.value)


def test_given_keys_are_read_in_order_with_url_safe_base64(monkeypatch, tmp_path):
    url_safe = base64.urlsafe_b64encode(b"\xfb" * 32).decode()
    monkeypatch.setenv("FIELD_ENCRYPTION_KEYS", f" new:{url_safe} , old:{KEY}")
    keys = env.field_encryption_keys("FIELD_ENCRYPTION_KEYS", debug=False, keep_file=tmp_path / "k")
    assert keys == [f"new:{url_safe}", f"old:{KEY}"]
    assert [k for k, _ in env.parse_field_keys(keys, "X")] == ["new", "old"]


def test_the_embedded_default_keeps_one_generated_key_and_production_has_none(
    monkeypatch, tmp_path
):
    monkeypatch.delenv("FIELD_ENCRYPTION_KEYS", raising=False)
    keep = tmp_path / "field_encryption_keys"
    first = env.field_encryption_keys("FIELD_ENCRYPTION_KEYS", debug=True, keep_file=keep)
    again = env.field_encryption_keys("FIELD_ENCRYPTION_KEYS", debug=True, keep_file=keep)
    assert first == again and first[0].startswith("local:") and keep.read_text() == first[0]
    assert oct(keep.stat().st_mode & 0o777) == "0o600"
    assert env.field_encryption_keys("FIELD_ENCRYPTION_KEYS", debug=False, keep_file=keep) == []
