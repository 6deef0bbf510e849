from django.urls import path

from approvals import notification_views
from approvals.slack.views import interactivity

urlpatterns = [
    path("notifications/", notification_views.notification_list, name="notifications"),
    path(
        "notifications/read/",
        notification_views.notification_mark_read,
        name="notifications_mark_read",
    ),
    path(
        "notifications/<int:pk>/open/",
        notification_views.notification_open,
        name="notification_open",
    ),
    path("slack/interactivity/", interactivity, name="slack_interactivity"),
]
