from django.urls import path

from approvals.integrations.slack.views import interactivity, slack_link_view

urlpatterns = [
    path("slack/interactivity/", interactivity, name="slack_interactivity"),
    path("accounts/profile/slack/", slack_link_view, name="slack_link"),
]
