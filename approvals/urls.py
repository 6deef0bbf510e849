from django.urls import path

from approvals import insights_views, profile, replay_views, views
from approvals.artifacts import views as documents
from approvals.audit_export import views as audit_export
from approvals.discussion import views as discussion

urlpatterns = [
    path("accounts/profile/", profile.profile, name="profile"),
    path("accounts/profile/time-zone/", profile.time_zone_view, name="profile_time_zone"),
    path("accounts/profile/signing-code/", profile.signing_code_view, name="profile_signing_code"),
    path(
        "accounts/out-of-office/<int:absence_id>/delete/",
        profile.absence_delete_view,
        name="absence_delete",
    ),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/counts/", views.inbox_counts, name="inbox_counts"),
    path("inbox/bulk/", views.inbox_bulk, name="inbox_bulk"),
    path("tasks/<int:task_id>/", views.task_detail, name="task"),
    path("tasks/<int:task_id>/claim/", views.task_claim_view, name="task_claim"),
    path("tasks/<int:task_id>/unclaim/", views.task_unclaim_view, name="task_unclaim"),
    path("tasks/<int:task_id>/decide/", views.task_decide_view, name="task_decide"),
    path("tasks/<int:task_id>/delegate/", views.task_delegate_view, name="task_delegate"),
    path("tasks/<int:task_id>/retry/", views.task_retry_view, name="task_retry"),
    path("tasks/<int:task_id>/skip/", views.task_skip_view, name="task_skip"),
    path("tasks/<int:task_id>/cancel/", views.task_cancel_view, name="task_cancel"),
    path("people/", views.user_search, name="user_search"),
    path("requests/", views.request_list, name="requests"),
    path("requests/new/", views.request_new, name="request_new"),
    path("requests/new/<slug:key>/", views.request_start, name="request_start"),
    path("requests/<int:instance_id>/", views.instance_detail, name="request"),
    path("requests/<int:instance_id>/diagram/", views.instance_diagram, name="request_diagram"),
    path(
        "requests/<int:instance_id>/withdraw/",
        views.instance_withdraw_view,
        name="request_withdraw",
    ),
    path(
        "requests/<int:instance_id>/replay/",
        replay_views.instance_replay,
        name="request_replay",
    ),
    path("audit/public-key", audit_export.public_key, name="audit_public_key"),
    path("audit/exports/", audit_export.audit_exports, name="audit_exports"),
    path(
        "audit/exports/<int:export_id>/",
        audit_export.audit_export_status,
        name="audit_export_status",
    ),
    path(
        "audit/exports/<int:export_id>/download",
        audit_export.audit_export_download,
        name="audit_export_download",
    ),
    path("audit/retention/", audit_export.retention, name="retention"),
    path(
        "audit/retention/<int:instance_id>/archive",
        audit_export.retired_archive,
        name="retired_archive",
    ),
    path(
        "requests/<int:instance_id>/audit-report.pdf",
        audit_export.audit_report,
        name="request_audit_report",
    ),
    path("insights/", insights_views.insights_index, name="insights"),
    path("insights/<slug:key>/", insights_views.insights_workflow, name="insights_workflow"),
    path(
        "insights/<slug:key>/waiting/",
        insights_views.insights_waiting_view,
        name="insights_waiting",
    ),
    path(
        "requests/<int:instance_id>/documents/",
        documents.artifact_upload,
        name="artifact_upload",
    ),
    path(
        "requests/<int:instance_id>/documents/<str:name>/v<int:number>/",
        documents.artifact_download,
        name="artifact_download",
    ),
    path(
        "requests/<int:instance_id>/documents/<str:name>/v<int:number>/preview/",
        documents.artifact_preview,
        name="artifact_preview",
    ),
    path(
        "requests/<int:instance_id>/documents/<str:name>/diff/",
        documents.artifact_diff,
        name="artifact_diff",
    ),
    path(
        "requests/<int:instance_id>/comments/",
        discussion.comment_post,
        name="comment_post",
    ),
    path(
        "requests/<int:instance_id>/comments/<int:comment_id>/edit/",
        discussion.comment_edit_view,
        name="comment_edit",
    ),
]
