"""The Documents pages: upload, permission-checked downloads, previews and diffs."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from approvals.models import ArtifactVersion
from approvals.services.artifacts import Upload, artifact_add
from tests.approvals.documents.conftest import PDF, PNG, documents_flow, stored_files
from tests.approvals.flows import NOW, publish

pytestmark = pytest.mark.django_db


def add(instance, actor, name: str, content: bytes, filename: str, content_type: str):
    file = SimpleUploadedFile(filename, content, content_type=content_type)
    return artifact_add(
        instance_id=instance.pk, upload=Upload(name=name, file=file), actor=actor, now=NOW
    )


def urls(version: ArtifactVersion) -> list[str]:
    args = [version.artifact.instance_id, version.artifact.name, version.number]
    return [
        reverse("artifact_download", args=args),
        reverse("artifact_preview", args=args),
        reverse("artifact_diff", args=args[:2]),
    ]


def test_the_reviewer_uploads_from_the_page_and_sees_it(
    client, request_under_review, reviewer, media
):
    client.force_login(reviewer)
    page = reverse("request", args=[request_under_review.pk])
    response = client.post(
        reverse("artifact_upload", args=[request_under_review.pk]),
        {
            "name": "quote",
            "file": SimpleUploadedFile("quote.pdf", PDF, "application/pdf"),
            "note": "from the supplier",
            "next": page,
        },
    )
    assert response.status_code == 302 and response["Location"] == f"{page}#documents"
    version = ArtifactVersion.objects.get()
    html = client.get(page).content.decode()
    assert 'id="documents"' in html and version.sha256 in html and "from the supplier" in html
    assert reverse("artifact_download", args=[request_under_review.pk, "quote", 1]) in html


def test_a_bad_upload_from_the_page_says_why(client, request_under_review, reviewer, media):
    client.force_login(reviewer)
    response = client.post(
        reverse("artifact_upload", args=[request_under_review.pk]),
        {"name": "quote", "file": SimpleUploadedFile("quote.pdf", b"", "application/pdf")},
        follow=True,
    )
    assert "Not added: The file is empty." in response.content.decode()
    assert not ArtifactVersion.objects.exists() and not stored_files(media)


def test_downloads_are_attachments_with_nosniff(client, request_under_review, reviewer):
    version = add(request_under_review, reviewer, "quote", PDF, "quote.pdf", "application/pdf")
    client.force_login(reviewer)
    response = client.get(urls(version)[0])
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="quote.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == PDF


@pytest.mark.parametrize(
    ("content", "filename", "content_type"),
    [
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "x.svg",
            "image/svg+xml",
        ),
        (b"<!doctype html><script>alert(document.cookie)</script>", "x.html", "text/html"),
    ],
)
def test_svg_and_html_are_served_as_attachments_and_never_previewed(
    client, request_under_review, reviewer, content, filename, content_type
):
    version = add(request_under_review, reviewer, "page", content, filename, content_type)
    client.force_login(reviewer)
    download, preview, _ = urls(version)
    response = client.get(download)
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert client.get(preview).status_code == 404


def test_images_preview_inline_in_a_sandbox_and_pdfs_in_the_browser_viewer(
    client, request_under_review, reviewer
):
    image = add(request_under_review, reviewer, "photo", PNG, "p.png", "image/png")
    quote = add(request_under_review, reviewer, "quote", PDF, "q.pdf", "application/pdf")
    client.force_login(reviewer)
    response = client.get(urls(image)[1])
    assert response["Content-Disposition"].startswith("inline;")
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert client.get(urls(quote)[1])["Content-Disposition"].startswith("inline;")
    html = client.get(reverse("request", args=[request_under_review.pk])).content.decode()
    assert f'<img class="preview" src="{urls(image)[1]}"' in html
    assert f'class="small preview-link" href="{urls(quote)[1]}"' in html


def test_the_diff_of_two_text_versions(client, request_under_review, reviewer):
    add(request_under_review, reviewer, "draft", b"one\ntwo\nthree\n", "d.md", "text/markdown")
    add(request_under_review, reviewer, "draft", b"one\n2\nthree\nfour\n", "d.md", "text/markdown")
    client.force_login(reviewer)
    url = reverse("artifact_diff", args=[request_under_review.pk, "draft"])
    response = client.get(url, {"from": 1, "to": 2})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="diff-del"' in html and "two</td>" in html
    assert 'class="diff-add"' in html and "four</td>" in html
    assert client.get(url, {"from": 1, "to": 9}).status_code == 400


def test_binary_versions_are_not_diffed(client, request_under_review, reviewer):
    add(request_under_review, reviewer, "quote", PDF, "q.pdf", "application/pdf")
    add(request_under_review, reviewer, "quote", PDF * 2, "q.pdf", "application/pdf")
    client.force_login(reviewer)
    response = client.get(reverse("artifact_diff", args=[request_under_review.pk, "quote"]))
    assert response.status_code == 400
    assert "Only text versions" in response.content.decode()


def test_the_outsider_gets_404_on_every_document_url(
    client, request_under_review, reviewer, outsider, media
):
    version = add(request_under_review, reviewer, "quote", PDF, "quote.pdf", "application/pdf")
    client.force_login(outsider)
    for url in urls(version):
        assert client.get(url).status_code == 404, url
    response = client.post(
        reverse("artifact_upload", args=[request_under_review.pk]),
        {"name": "quote", "file": SimpleUploadedFile("q.pdf", PDF, "application/pdf")},
    )
    assert response.status_code == 404
    assert ArtifactVersion.objects.count() == 1 and len(stored_files(media)) == 1


def test_signed_out_readers_are_sent_to_sign_in(client, request_under_review, reviewer):
    version = add(request_under_review, reviewer, "quote", PDF, "quote.pdf", "application/pdf")
    response = client.get(urls(version)[0])
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_reader_who_may_not_add_sees_no_form_and_is_refused(
    client, request_under_review, requester, media
):
    client.force_login(requester)
    html = client.get(reverse("request", args=[request_under_review.pk])).content.decode()
    assert 'id="documents"' in html and 'id="artifact-form"' not in html
    assert "The quote is required" in html
    response = client.post(
        reverse("artifact_upload", args=[request_under_review.pk]),
        {"name": "quote", "file": SimpleUploadedFile("q.pdf", PDF, "application/pdf")},
    )
    assert response.status_code == 403
    assert not stored_files(media)


def test_the_request_form_takes_the_start_forms_documents(client, requester, reviewer, media):
    flow = documents_flow()
    flow["form"]["meta"] = {
        "artifacts": {"quote": {"required": True, "types": ["application/pdf"]}}
    }
    publish(flow)
    client.force_login(requester)
    url = reverse("request_start", args=["review"])
    form = client.get(url).content.decode()
    assert 'enctype="multipart/form-data"' in form and 'name="artifact_quote"' in form
    missing = client.post(url, {"title": "Desk", "amount": "80"})
    assert missing.status_code == 400 and "Add the quote (required)." in missing.content.decode()
    wrong = client.post(
        url,
        {
            "title": "Desk",
            "amount": "80",
            "artifact_quote": SimpleUploadedFile("q.pdf", PNG, "application/pdf"),
        },
    )
    assert wrong.status_code == 400 and "content is image/png" in wrong.content.decode()
    assert not stored_files(media)
    done = client.post(
        url,
        {
            "title": "Desk",
            "amount": "80",
            "artifact_quote": SimpleUploadedFile("q.pdf", PDF, "application/pdf"),
        },
    )
    assert done.status_code == 302
    assert ArtifactVersion.objects.get().added_by == requester
