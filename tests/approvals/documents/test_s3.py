"""Documents on an S3-compatible server: moto's server mode, started locally (real HTTP,
boto3 and django-storages all the way); skipped where moto is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from approvals.models import ArtifactVersion
from approvals.services.artifacts import Upload, artifact_add, artifact_orphans_sweep, check_files
from tests.approvals.documents.conftest import PDF
from tests.approvals.flows import NOW
from workflow_app.env import env_storage

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

pytestmark = pytest.mark.django_db

BUCKET = "signoff-test"


@pytest.fixture
def s3(settings: Any, monkeypatch: pytest.MonkeyPatch, media: Any) -> Iterator[Any]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    # moto keeps its buckets in this process's memory, across servers: start empty.
    httpx.post(f"{endpoint}/moto-api/reset").raise_for_status()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("STORAGE_URL", f"s3://{BUCKET}/files")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": env_storage("STORAGE_URL", media, endpoint_url=endpoint, region="us-east-1"),
    }
    yield client
    server.stop()


def keys(client: Any) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def add(instance: Any, actor: Any, content: bytes = PDF) -> ArtifactVersion:
    file = SimpleUploadedFile("quote.pdf", content, "application/pdf")
    return artifact_add(
        instance_id=instance.pk, upload=Upload(name="quote", file=file), actor=actor, now=NOW
    )


def test_versions_are_stored_in_the_bucket_and_downloaded_through_the_view(
    s3, client, request_under_review, reviewer
):
    version = add(request_under_review, reviewer)
    assert keys(s3) == [f"files/{version.storage_key}"]
    body = s3.get_object(Bucket=BUCKET, Key=f"files/{version.storage_key}")["Body"].read()
    assert body == PDF
    client.force_login(reviewer)
    url = reverse("artifact_download", args=[request_under_review.pk, "quote", 1])
    response = client.get(url)
    assert response["Content-Disposition"] == 'attachment; filename="quote.pdf"'
    assert b"".join(response.streaming_content) == PDF
    assert not list(check_files([request_under_review.pk]))
    s3.put_object(Bucket=BUCKET, Key=f"files/{version.storage_key}", Body=b"swapped")
    (problem,) = check_files([request_under_review.pk])
    assert "stored bytes hash" in problem.problem


def test_a_refused_upload_writes_nothing_and_orphans_are_swept(s3, request_under_review, reviewer):
    with pytest.raises(Exception, match="empty"):
        add(request_under_review, reviewer, b"")
    assert keys(s3) == []
    with pytest.raises(RuntimeError), transaction.atomic():
        add(request_under_review, reviewer)
        raise RuntimeError
    kept = add(request_under_review, reviewer)
    assert len(keys(s3)) == 2
    assert artifact_orphans_sweep(now=timezone.now()) == 0
    assert artifact_orphans_sweep(now=timezone.now() + timedelta(hours=2)) == 1
    assert keys(s3) == [f"files/{kept.storage_key}"]
    assert default_storage.exists(kept.storage_key)


@pytest.mark.parametrize("value", ["http://bucket", "s3://", "s3://bucket?x=1"])
def test_a_malformed_storage_url_stops_the_process_naming_it(monkeypatch, tmp_path, value):
    monkeypatch.setenv("STORAGE_URL", value)
    with pytest.raises(ImproperlyConfigured, match="STORAGE_URL=.* is not a storage URL"):
        env_storage("STORAGE_URL", tmp_path, endpoint_url=None, region=None)


def test_no_storage_url_is_the_filesystem_under_var_media(monkeypatch, tmp_path):
    monkeypatch.delenv("STORAGE_URL", raising=False)
    storage = env_storage("STORAGE_URL", tmp_path / "media", endpoint_url=None, region=None)
    assert storage == {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "media")},
    }
