from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from approvals.models import WorkflowInstance
from approvals.services.instances import instance_start
from tests.approvals.api.conftest import _fresh_throttle_counts, api  # noqa: F401
from tests.approvals.flows import NOW, publish, review_flow


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    """Each test stores its documents in a folder of its own (the sweep lists them all)."""
    root = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    return root


def documents_flow(**step_meta: Any) -> dict[str, Any]:
    """review_flow whose review step asks for a quote (PDF or image, at most 1 MB)."""
    flow = review_flow()
    flow["states"]["review"]["meta"]["artifacts"] = step_meta or {
        "quote": {"required": True, "types": ["application/pdf", "image/*", "text/*"], "max_mb": 1}
    }
    return flow


@pytest.fixture
def request_under_review(requester: Any, reviewer: Any) -> WorkflowInstance:
    publish(documents_flow())
    return instance_start(
        definition_key="review",
        context={"title": "Laptops", "amount": 500},
        actor=requester,
        now=NOW,
    )


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)
