"""The auditor's pages: the public key, the export page with its progress and download, a
request's PDF audit report, and retention with its legal holds.

The public key is public (an auditor fetches it to verify offline). The export page is for
`approvals.export_audit` (403 otherwise); a bundle is downloaded by whoever asked for it or
anyone with that permission (404 otherwise). The PDF report is for whoever may see the request
(404 otherwise, as the request page)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_safe

from approvals.audit_export.bundle import Scope
from approvals.audit_export.report import audit_report_pdf
from approvals.audit_export.signing import SigningKeyMissing, public_key_pem
from approvals.models import (
    AuditExport,
    AuditExportStatus,
    RetiredRequest,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.request_schema import sentence
from approvals.services.audit_exports import (
    audit_export_request,
    may_download,
    may_export_audit,
)
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.retention import (
    apply_retention,
    legal_hold_place,
    legal_hold_release,
    may_hold,
    may_see_retention,
)

REFUSED = "Only auditors (permission approvals.export_audit) may export the audit trail."
RETENTION_REFUSED = (
    "Only auditors and records managers (permission approvals.export_audit or "
    "approvals.hold_legal) may see retention and legal holds."
)
HOLD_REFUSED = "Only records managers (permission approvals.hold_legal) may place legal holds."


@require_safe
def public_key(request: HttpRequest) -> HttpResponse:
    try:
        pem = public_key_pem()
    except SigningKeyMissing:
        return HttpResponse(
            "No audit signing key is configured (AUDIT_SIGNING_KEY).\n",
            status=404,
            content_type="text/plain; charset=utf-8",
        )
    response = HttpResponse(pem, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="signoff-audit-public-key.pem"'
    return response


class ExportForm(forms.Form):
    instance = forms.IntegerField(required=False, min_value=1, label="One request (its number)")
    workflow = forms.ChoiceField(required=False, label="Or a workflow")
    since = forms.DateField(
        required=False, label="Started from", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="Started until", widget=forms.DateInput(attrs={"type": "date"})
    )
    include_files = forms.BooleanField(required=False, label="Include the documents' files")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        keys = WorkflowDefinition.objects.order_by("key").values_list("key", flat=True).distinct()
        self.fields["workflow"].choices = [("", "All workflows"), *((k, k) for k in keys)]

    def scope(self) -> Scope:
        data = self.cleaned_data
        return Scope(
            instance_id=data["instance"],
            workflow_key=data["workflow"] or "",
            since=data["since"],
            until=data["until"],
            include_files=data["include_files"],
        )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def audit_exports(request: HttpRequest) -> HttpResponse:
    from approvals.views import _forbidden

    if not may_export_audit(request.user):
        return _forbidden(request, REFUSED)
    form = ExportForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                audit_export_request(scope=form.scope(), actor=request.user, now=timezone.now())
            except InvalidInput as exc:
                for field, errors in exc.field_errors.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            except Conflict as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("audit_exports")
        status = 400
    exports = AuditExport.objects.filter(requested_by=request.user)[:20]
    return render(
        request, "approvals/audit_exports.html", {"form": form, "exports": exports}, status=status
    )


def _export(request: HttpRequest, export_id: int) -> AuditExport:
    export = get_object_or_404(AuditExport, pk=export_id)
    if not may_download(request.user, export):
        raise Http404("No such export.")
    return export


@login_required
@require_safe
def audit_export_status(request: HttpRequest, export_id: int) -> HttpResponse:
    """The export's row on the page; htmx polls it until the bundle is ready or failed."""
    return render(request, "approvals/_audit_export.html", {"export": _export(request, export_id)})


@login_required
@require_safe
def audit_export_download(request: HttpRequest, export_id: int) -> FileResponse:
    export = _export(request, export_id)
    if export.status != AuditExportStatus.DONE:
        raise Http404("The bundle is not ready.")
    return _bundle_download(export.storage_key, f"signoff-audit-{export.pk}.zip")


def _bundle_download(key: str, filename: str) -> FileResponse:
    """A bundle kept in the storage, as an attachment nobody caches."""
    try:
        handle = default_storage.open(key, "rb")
    except FileNotFoundError:
        raise Http404("The stored bundle is missing.") from None
    response = FileResponse(
        handle, as_attachment=True, filename=filename, content_type="application/zip"
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_safe
def audit_report(request: HttpRequest, instance_id: int) -> HttpResponse:
    from approvals.views import _visible_instance

    instance = _visible_instance(request, instance_id)
    response = HttpResponse(audit_report_pdf(instance), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="audit-report-{instance.pk}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


# ----- retention and legal holds


class LegalHoldForm(forms.Form):
    instance = forms.IntegerField(min_value=1, label="Request (its number)")
    reason = forms.CharField(max_length=500, label="Why", widget=forms.TextInput())
    release = forms.BooleanField(required=False, widget=forms.HiddenInput())


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def retention(request: HttpRequest) -> HttpResponse:
    """Each workflow's retention and what is due, the requests under legal hold (placed and
    released here by `approvals.hold_legal`), and the requests deleted lately."""
    from approvals.views import _forbidden

    if not may_see_retention(request.user):
        return _forbidden(request, RETENTION_REFUSED)
    form = LegalHoldForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not may_hold(request.user):
            return _forbidden(request, HOLD_REFUSED)
        if form.is_valid():
            change = legal_hold_release if form.cleaned_data["release"] else legal_hold_place
            try:
                instance = change(
                    instance_id=form.cleaned_data["instance"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    now=timezone.now(),
                )
            except NotAllowed:
                form.add_error("instance", "No such request.")
            except (InvalidInput, Conflict) as exc:
                form.add_error(None, sentence(exc.message))
            else:
                messages.success(
                    request,
                    f"Request #{instance.pk} is now under legal hold."
                    if instance.legal_hold
                    else f"The legal hold on request #{instance.pk} was released.",
                )
                return redirect("retention")
        status = 400
    now = timezone.now()
    context = {
        "form": form,
        "may_hold": may_hold(request.user),
        "may_download": may_export_audit(request.user),
        "reports": apply_retention(now=now, dry_run=True),
        "held": WorkflowInstance.objects.filter(legal_hold=True).order_by("pk")[:200],
        "retired": RetiredRequest.objects.all()[:50],
    }
    return render(request, "approvals/retention.html", context, status=status)


@login_required
@require_safe
def retired_archive(request: HttpRequest, instance_id: int) -> FileResponse:
    """The signed bundle a deleted request was archived into (for auditors)."""
    tombstone = get_object_or_404(RetiredRequest, pk=instance_id)
    if not may_export_audit(request.user):
        raise Http404("No such request.")
    return _bundle_download(tombstone.bundle_key, tombstone.bundle_key.rsplit("/", 1)[-1])
