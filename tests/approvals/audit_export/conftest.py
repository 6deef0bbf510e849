from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from approvals.audit_export.signing import public_key_pem
from approvals.models import WorkflowInstance
from approvals.services.artifacts import Upload, artifact_add
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.documents.conftest import PDF, documents_flow, media  # noqa: F401
from tests.approvals.flows import NOW, publish


@pytest.fixture
def decided_request(requester: Any, reviewer: Any) -> WorkflowInstance:
    """A request with a quote in two versions, decided by the reviewer with a comment."""
    publish(documents_flow())
    instance = instance_start(
        definition_key="review",
        context={"title": "Laptops", "amount": 500},
        actor=requester,
        now=NOW,
    )
    for content in (PDF, PDF + b"%second"):
        artifact_add(
            instance_id=instance.pk,
            upload=Upload(
                name="quote",
                file=SimpleUploadedFile("quote.pdf", content, content_type="application/pdf"),
            ),
            actor=reviewer,
            now=NOW,
        )
    task = instance.tasks.get()
    task_decide(
        task_id=task.pk, event="APPROVE", comment="Fits the budget", actor=reviewer, now=NOW
    )
    return instance


@pytest.fixture
def open_request(requester: Any, decided_request: WorkflowInstance) -> WorkflowInstance:
    return instance_start(
        definition_key="review", context={"title": "Chairs", "amount": 90}, actor=requester, now=NOW
    )


@pytest.fixture
def public_key(tmp_path: Path, db: None) -> Path:
    path = tmp_path / "public.pem"
    path.write_text(public_key_pem())
    return path


def export(tmp_path: Path, *args: str, name: str = "bundle.zip") -> Path:
    out = tmp_path / name
    call_command("export_audit", *args, "--out", str(out), stdout=io.StringIO())
    return out


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rewrite(path: Path, out: Path, changes: dict[str, bytes | None]) -> Path:
    """The bundle rewritten as a tamperer would: members replaced (None: left out)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members(path).items():
            if name in changes:
                if changes[name] is None:
                    continue
                data = changes[name]
            zf.writestr(name, data)
    return out


def flip(data: bytes, old: bytes, new: bytes) -> bytes:
    """`data` with the first `old` replaced by `new` (the same length: one byte edited)."""
    assert len(old) == len(new) and old in data
    return data.replace(old, new, 1)


def flip_after(data: bytes, marker: bytes) -> bytes:
    """`data` with the character after the first `marker` changed (a base64 or hex digit)."""
    at = data.index(marker) + len(marker)
    new = b"B" if data[at : at + 1] != b"B" else b"C"
    return data[:at] + new + data[at + 1 :]
