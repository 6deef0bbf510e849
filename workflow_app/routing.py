"""WebSocket routes (the notification consumer joins here)."""

websocket_urlpatterns: list = []
