from django.urls import path

from approvals.integrations.webhooks.views import inbound_hook

urlpatterns = [
    path("hooks/<slug:workflow_key>/<str:hook_id>/", inbound_hook, name="inbound_hook"),
]
