"""/api/v1/... endpoints, /api/schema/ (OpenAPI 3) and /api/docs/ (Swagger UI, no CDN)."""

from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from approvals.api import asks, callbacks, discussion, documents, insights, replay, views

app_name = "api"

urlpatterns = [
    path("v1/workflows/", views.WorkflowList.as_view(), name="workflows"),
    path(
        "v1/workflows/<slug:key>/instances/",
        views.InstanceStart.as_view(),
        name="instance-start",
    ),
    path("v1/asks/", asks.Asks.as_view(), name="asks"),
    path("v1/instances/", views.InstanceList.as_view(), name="instances"),
    path("v1/instances/<int:pk>/", views.InstanceDetail.as_view(), name="instance"),
    path("v1/instances/<int:pk>/events/", views.InstanceEvents.as_view(), name="instance-events"),
    path(
        "v1/instances/<int:pk>/history/", views.InstanceHistory.as_view(), name="instance-history"
    ),
    path(
        "v1/instances/<int:pk>/history/verify/",
        views.InstanceHistoryVerify.as_view(),
        name="instance-verify",
    ),
    path(
        "v1/instances/<int:pk>/artifacts/",
        documents.ArtifactList.as_view(),
        name="instance-artifacts",
    ),
    path(
        "v1/instances/<int:pk>/artifacts/<str:name>/versions/<int:number>/",
        documents.ArtifactVersionDetail.as_view(),
        name="instance-artifact-version",
    ),
    path(
        "v1/instances/<int:pk>/artifacts/<str:name>/versions/<int:number>/content/",
        documents.ArtifactVersionContent.as_view(),
        name="instance-artifact-content",
    ),
    path(
        "v1/instances/<int:pk>/comments/",
        discussion.CommentList.as_view(),
        name="instance-comments",
    ),
    re_path(
        r"^v1/callbacks/(?P<token>[A-Za-z0-9_-]{16,128})/(?P<outcome>success|failure|heartbeat)$",
        callbacks.callback,
        name="callback",
    ),
    path("v1/tasks/", views.TaskList.as_view(), name="tasks"),
    path("v1/tasks/<int:pk>/", views.TaskDetail.as_view(), name="task"),
    path("v1/tasks/<int:pk>/claim/", views.TaskClaim.as_view(), name="task-claim"),
    path("v1/tasks/<int:pk>/unclaim/", views.TaskUnclaim.as_view(), name="task-unclaim"),
    path("v1/tasks/<int:pk>/decide/", views.TaskDecide.as_view(), name="task-decide"),
    path("v1/tasks/<int:pk>/delegate/", views.TaskDelegate.as_view(), name="task-delegate"),
    path("v1/instances/<int:pk>/at/", replay.InstanceAt.as_view(), name="instance-at"),
    path("v1/insights/<slug:key>/", insights.InsightsDetail.as_view(), name="insights"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's set-up script as a file of its own (?script): the
    # Content-Security-Policy runs no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^", views.not_found),
]
