"""The shipped supplier onboarding keeps its bank account encrypted, in the demo too."""

from __future__ import annotations

import pytest

from accounts.demo import ensure_demo_users
from approvals.demo import ensure_demo_requests, ensure_demo_workflows
from approvals.models import WorkflowInstance
from tests.approvals.sensitive.conftest import raw_context, stored

pytestmark = pytest.mark.django_db

DEMO_IBAN = "DE89370400440532013000"


def test_the_demo_supplier_s_bank_account_is_encrypted():
    ensure_demo_users()
    ensure_demo_workflows()
    ensure_demo_requests()
    supplier = WorkflowInstance.objects.get(workflow_key="supplier-onboarding")
    assert supplier.context["iban"] == DEMO_IBAN and supplier.state == "due_diligence"
    assert set(raw_context(supplier)["iban"]) == {"$enc"}
    assert DEMO_IBAN not in stored(supplier)
