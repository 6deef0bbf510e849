from django.urls import path

from approvals.notify import preferences_page, views

urlpatterns = [
    path(
        "accounts/profile/notifications/",
        preferences_page.notification_preferences,
        name="notification_preferences",
    ),
    path("notifications/", views.notification_list, name="notifications"),
    path(
        "notifications/read/",
        views.notification_mark_read,
        name="notifications_mark_read",
    ),
    path(
        "notifications/<int:pk>/open/",
        views.notification_open,
        name="notification_open",
    ),
]
