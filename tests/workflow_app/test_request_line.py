"""The line in front of the web application: at most WEB_MAX_REQUESTS requests of a process run
at once, the others wait their turn, and one that waited too long is told 503 with Retry-After
(JSON under /api/, a plain page elsewhere). WebSockets do not queue there."""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator, WebsocketCommunicator

from workflow_app.asgi import application
from workflow_app.overload import RequestLine


class Held:
    """An application whose requests run until released: a slow view, without a database."""

    def __init__(self) -> None:
        self.running = 0
        self.release = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.running += 1
        try:
            if scope["type"] == "http":
                await self.release.wait()
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"served"})
            else:
                await send({"type": "websocket.accept"})
        finally:
            self.running -= 1


def test_requests_past_the_limit_wait_then_get_503_and_the_line_moves_on() -> None:
    async def scenario() -> None:
        held = Held()
        line = RequestLine(held, limit=2, timeout=0.3)
        running = [
            asyncio.create_task(HttpCommunicator(line, "GET", "/inbox/").get_response(timeout=30))
            for _ in range(2)
        ]
        while held.running < 2:
            await asyncio.sleep(0.01)

        api = await HttpCommunicator(line, "POST", "/api/v1/tasks/1/decide/").get_response(5)
        assert api["status"] == 503
        headers = dict(api["headers"])
        assert int(headers[b"retry-after"]) > 0
        assert headers[b"content-type"] == b"application/json"
        assert b'"code": "unavailable"' in api["body"]

        page = await HttpCommunicator(line, "GET", "/inbox/").get_response(5)
        assert page["status"] == 503
        assert dict(page["headers"])[b"content-type"].startswith(b"text/html")
        assert b"try again" in page["body"]
        assert held.running == 2  # neither reached the application

        # One that gets its turn within the timeout is served.
        line.timeout = 30
        waiting = asyncio.create_task(HttpCommunicator(line, "GET", "/").get_response(30))
        await asyncio.sleep(0)
        held.release.set()
        for response in [*await asyncio.gather(*running), await waiting]:
            assert (response["status"], response["body"]) == (200, b"served")

    async_to_sync(scenario)()


def test_websockets_do_not_queue_in_the_line() -> None:
    async def scenario() -> None:
        held = Held()
        line = RequestLine(held, limit=1, timeout=0.1)
        busy = asyncio.create_task(HttpCommunicator(line, "GET", "/").get_response(30))
        while held.running < 1:
            await asyncio.sleep(0.01)
        socket = WebsocketCommunicator(line, "/ws/notifications/")
        assert (await socket.connect())[0]
        held.release.set()
        assert (await busy)["status"] == 200

    async_to_sync(scenario)()


def test_the_web_application_is_behind_the_line(settings) -> None:
    # Behind the waits and streams, which hold no database connection (approvals/api/waiting.py).
    line = application.application_mapping["http"].django_app
    assert isinstance(line, RequestLine)
    assert line.limit == settings.WEB_MAX_REQUESTS == settings.DATABASE_POOL_SIZE - 2
    assert line.timeout == settings.WEB_QUEUE_TIMEOUT_SECONDS
