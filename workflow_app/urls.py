from django.contrib import admin
from django.urls import include, path

from accounts.views import home
from workflow_app.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("healthz", healthz, name="healthz"),
    path("", include("approvals.urls")),
    path("", include("approvals.notification_urls")),
    path("", home, name="home"),
]
