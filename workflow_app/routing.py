"""WebSocket routes."""

from django.urls import path

from approvals.notify.consumers import NotificationConsumer

websocket_urlpatterns: list = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
]
