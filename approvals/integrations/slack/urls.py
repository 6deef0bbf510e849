from django.urls import path

from approvals.integrations.slack.views import interactivity

urlpatterns = [
    path("slack/interactivity/", interactivity, name="slack_interactivity"),
]
