from django.contrib import admin
from django.urls import include, path

from accounts.views import home
from approvals.api.tokens import api_tokens
from workflow_app.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("accounts/api-tokens/", api_tokens, name="api_tokens"),
    path("api/", include("approvals.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("", include("approvals.urls")),
    path("", include("approvals.notify.urls")),
    path("", include("approvals.integrations.slack.urls")),
    path("", home, name="home"),
]
