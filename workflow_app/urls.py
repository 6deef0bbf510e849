from django.contrib import admin
from django.urls import include, path

from accounts.views import home
from approvals.api.tokens import api_tokens
from workflow_app.health import healthz
from workflow_app.observability.metrics import metrics

# Under /api/ every error is JSON (workflow_app.errors.ApiErrorsAsJson); a body too large is a
# 413 for pages and the API alike.
handler400 = "workflow_app.errors.bad_request"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("accounts/api-tokens/", api_tokens, name="api_tokens"),
    path("api/", include("approvals.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("", include("approvals.urls")),
    path("", include("approvals.notify.urls")),
    path("", include("approvals.integrations.slack.urls")),
    path("", include("approvals.integrations.email.urls")),
    path("", include("approvals.integrations.webhooks.urls")),
    path("", home, name="home"),
]
