"""Documents on the request and task pages: upload, download, preview, diff.

Downloads are never public media URLs: each is a view that checks the reader may see the
request (a 404 otherwise, as for the request itself) and sends the bytes as an attachment
with `X-Content-Type-Options: nosniff`, so an uploaded HTML page or SVG never runs in our
origin. Only raster images and PDFs are shown inline, for their preview.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from approvals.artifacts import sniff
from approvals.artifacts.selectors import DIFF_LIMIT, line_diff
from approvals.models import ArtifactVersion, WorkflowInstance
from approvals.permissions import can_view_instance
from approvals.request_schema import sentence
from approvals.services.artifacts import Upload, artifact_add
from approvals.services.errors import Conflict, InvalidInput
from approvals.views import refusals_as_403

# A preview runs nothing: no script, no plugin, its own sandbox.
PREVIEW_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def _visible_instance(request: HttpRequest, instance_id: int) -> WorkflowInstance:
    instance = get_object_or_404(
        WorkflowInstance.objects.select_related("definition", "requester"), pk=instance_id
    )
    if not can_view_instance(request.user, instance):
        raise Http404("No such request.")
    return instance


def _version(request: HttpRequest, instance_id: int, name: str, number: int) -> ArtifactVersion:
    instance = _visible_instance(request, instance_id)
    return get_object_or_404(
        ArtifactVersion.objects.select_related("artifact"),
        artifact__instance=instance,
        artifact__name=name,
        number=number,
    )


def _back(request: HttpRequest, instance_id: int) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(f"{target}#documents")
    return redirect(f"/requests/{instance_id}/#documents")


@login_required
@require_POST
@refusals_as_403
def artifact_upload(request: HttpRequest, instance_id: int) -> HttpResponse:
    instance = _visible_instance(request, instance_id)
    text = request.POST.get("text", "")
    file = request.FILES.get("file")
    upload = Upload(
        name=request.POST.get("name", "").strip(),
        file=file,
        text=text if (text.strip() or file is None) else None,
        note=request.POST.get("note", "").strip(),
    )
    try:
        version = artifact_add(
            instance_id=instance.pk, upload=upload, actor=request.user, now=timezone.now()
        )
    except InvalidInput as exc:
        details = [m for ms in exc.field_errors.values() for m in ms] or [sentence(exc.message)]
        messages.error(request, "Not added: " + " ".join(details))
    except Conflict as exc:
        messages.error(request, "Not added: " + sentence(exc.message))
    else:
        messages.success(
            request, f"Added {version.artifact.name} v{version.number} ({version.filename})."
        )
    return _back(request, instance.pk)


def _file_response(version: ArtifactVersion, *, inline: bool) -> FileResponse:
    try:
        handle = default_storage.open(version.storage_key, "rb")
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=version.filename,
        content_type=version.media_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_safe
def artifact_download(
    request: HttpRequest, instance_id: int, name: str, number: int
) -> FileResponse:
    return _file_response(_version(request, instance_id, name, number), inline=False)


@login_required
@require_safe
def artifact_preview(
    request: HttpRequest, instance_id: int, name: str, number: int
) -> FileResponse:
    """Raster images and PDFs inline (the browser's own PDF viewer); nothing else."""
    version = _version(request, instance_id, name, number)
    if version.media_type not in sniff.PREVIEW_IMAGES and version.media_type != sniff.PDF:
        raise Http404("No preview for this type; download it instead.")
    response = _file_response(version, inline=True)
    if version.media_type in sniff.PREVIEW_IMAGES:
        response["Content-Security-Policy"] = PREVIEW_CSP
    return response


@login_required
@require_safe
def artifact_diff(request: HttpRequest, instance_id: int, name: str) -> HttpResponse:
    instance = _visible_instance(request, instance_id)
    versions = {
        v.number: v
        for v in ArtifactVersion.objects.filter(
            artifact__instance=instance, artifact__name=name
        ).select_related("artifact", "added_by")
    }
    if not versions:
        raise Http404("No such document.")
    try:
        old_n = int(request.GET.get("from", ""))
        new_n = int(request.GET.get("to", ""))
    except ValueError:
        newest = max(versions)
        old_n, new_n = max(1, newest - 1), newest
    old, new = versions.get(old_n), versions.get(new_n)
    problem = ""
    lines = []
    if old is None or new is None:
        problem = f"{name} has versions 1 to {max(versions)}; choose two of them."
    elif not (old.media_type in sniff.DIFFABLE and new.media_type in sniff.DIFFABLE):
        problem = (
            "Only text versions (plain text, Markdown, CSV, JSON) can be compared line by line."
        )
    elif old.size > DIFF_LIMIT or new.size > DIFF_LIMIT:
        problem = "These versions are too large to compare on the page; download them instead."
    else:
        lines = line_diff(old, new)
    return render(
        request,
        "approvals/artifact_diff.html",
        {
            "instance": instance,
            "name": name,
            "old": old,
            "new": new,
            "numbers": sorted(versions),
            "lines": lines,
            "problem": problem,
        },
        status=400 if problem else 200,
    )
