"""/api/v1/instances/{id}/artifacts/: list, add (multipart), metadata, content; permissions,
Idempotency-Key, the webhook event and the schema."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from approvals.models import ArtifactVersion, WebhookDelivery, WebhookSubscription
from tests.approvals.documents.conftest import PDF, stored_files

pytestmark = pytest.mark.django_db


def url(instance, *tail: str) -> str:
    return "/".join([f"/api/v1/instances/{instance.pk}/artifacts", *tail, ""]).replace("//", "/")


def post(client, instance, **fields):
    return client.post(url(instance), fields, format="multipart", **fields.pop("headers", {}))


def quote(content: bytes = PDF) -> SimpleUploadedFile:
    return SimpleUploadedFile("quote.pdf", content, content_type="application/pdf")


def test_post_then_get_each_view(api, request_under_review, reviewer, requester):
    client = api(reviewer)
    first = client.post(url(request_under_review), {"name": "quote", "file": quote()})
    assert first.status_code == 201, first.content
    body = first.json()
    assert set(body) == {
        "name",
        "version",
        "sha256",
        "size",
        "media_type",
        "parent",
        "added_by",
        "added_at",
    }
    assert body["name"] == "quote" and body["version"] == 1 and body["parent"] is None
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert (body["size"], body["media_type"], body["added_by"]) == (
        len(PDF),
        "application/pdf",
        "rob",
    )
    second = client.post(
        url(request_under_review), {"name": "quote", "text": "see v1", "note": "n"}
    )
    assert second.status_code == 201
    assert (second.json()["version"], second.json()["parent"]) == (2, 1)
    assert second.json()["media_type"] == "text/plain"

    reader = api(requester)
    listed = reader.get(url(request_under_review)).json()
    assert [(a["name"], [v["version"] for v in a["versions"]]) for a in listed] == [
        ("quote", [1, 2])
    ]
    meta = reader.get(url(request_under_review, "quote", "versions", "1"))
    assert meta.json() == body
    content = reader.get(url(request_under_review, "quote", "versions", "1", "content"))
    assert content.status_code == 200 and b"".join(content.streaming_content) == PDF
    assert content["Content-Disposition"] == 'attachment; filename="quote.pdf"'
    assert content["X-Content-Type-Options"] == "nosniff"
    assert reader.get(url(request_under_review, "quote", "versions", "3")).status_code == 404


def test_the_outsider_gets_404_everywhere(api, request_under_review, reviewer, outsider, media):
    api(reviewer).post(url(request_under_review), {"name": "quote", "file": quote()})
    client = api(outsider)
    for path in (
        url(request_under_review),
        url(request_under_review, "quote", "versions", "1"),
        url(request_under_review, "quote", "versions", "1", "content"),
    ):
        assert client.get(path).status_code == 404, path
    assert client.post(url(request_under_review), {"name": "q", "file": quote()}).status_code == 404
    assert ArtifactVersion.objects.count() == 1 and len(stored_files(media)) == 1
    assert api(None).get(url(request_under_review)).status_code == 401


def test_a_reader_who_may_not_add_is_403(api, request_under_review, requester, media):
    response = api(requester).post(url(request_under_review), {"name": "quote", "file": quote()})
    assert response.status_code == 403
    assert "requester while a task of theirs is open" in response.json()["detail"]
    assert not stored_files(media)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "quote", "file": quote(b"")}, "file", "The file is empty"),
        ({"name": "Bad/Name", "file": quote()}, "name", "artifact name"),
        ({"name": "quote"}, "file", "not both"),
        (
            {"name": "quote", "file": quote(b"<html><script>x</script>")},
            "file",
            "content is text/html, not application/pdf",
        ),
    ],
)
def test_bad_uploads_are_400_naming_the_field(
    api, request_under_review, reviewer, media, fields, field, message
):
    response = api(reviewer).post(url(request_under_review), fields)
    assert response.status_code == 400
    assert message in " ".join(response.json()["fields"][field])
    assert not stored_files(media) and not ArtifactVersion.objects.exists()


def test_idempotency_key_replays_and_refuses_another_file(api, request_under_review, reviewer):
    client = api(reviewer)
    headers = {"HTTP_IDEMPOTENCY_KEY": "upload-1"}
    first = client.post(url(request_under_review), {"name": "quote", "file": quote()}, **headers)
    again = client.post(url(request_under_review), {"name": "quote", "file": quote()}, **headers)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert ArtifactVersion.objects.count() == 1
    other = client.post(
        url(request_under_review), {"name": "quote", "file": quote(PDF + b"x")}, **headers
    )
    assert other.status_code == 409


def test_outgoing_webhooks_get_artifact_version_added(api, request_under_review, reviewer):
    WebhookSubscription.objects.create(
        name="ERP",
        url="https://erp.example.com/hook",
        secret="s" * 32,
        event_types=["artifact.version_added"],
    )
    api(reviewer).post(url(request_under_review), {"name": "quote", "file": quote()})
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "artifact.version_added"
    data = delivery.payload["data"]
    assert (data["name"], data["version"], data["added_by"]) == ("quote", 1, "rob")
    assert data["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert delivery.payload["instance"]["id"] == request_under_review.pk


def test_the_schema_describes_the_document_endpoints(api, reviewer):
    schema = api(reviewer).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    post_ = paths["/api/v1/instances/{id}/artifacts/"]["post"]
    assert "multipart/form-data" in post_["requestBody"]["content"]
    assert "201" in post_["responses"]
    assert "/api/v1/instances/{id}/artifacts/{name}/versions/{number}/content/" in paths
