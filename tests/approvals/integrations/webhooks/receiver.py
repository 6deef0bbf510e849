"""A real HTTP receiver on a local port (http.server in a thread) that checks signatures."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from approvals.integrations.webhooks.signing import verify


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str
    # Status codes to answer with, in order; the last one repeats.
    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def next_status(self) -> int:
        index = min(len(self.received), len(self.statuses)) - 1
        return self.statuses[index]


@contextmanager
def receiver(secret: str, statuses: list[int] | None = None) -> Iterator[Receiver]:
    state = Receiver(secret=secret, statuses=statuses or [200])
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ok = verify(
                state.secret,
                self.headers.get("X-Signoff-Timestamp", ""),
                body,
                self.headers.get("X-Signoff-Signature", ""),
            )
            with lock:
                state.received.append(Received(dict(self.headers), body, ok))
                status = state.next_status() if ok else 401
            payload = b"thanks" if status < 300 else b"receiver says no"
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/hooks/signoff"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Listener:
    """Records every request whatever its method, and answers 200 (a place nothing should reach)."""

    url: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@contextmanager
def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def listener() -> Iterator[Listener]:
    state = Listener()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append((self.command, self.path, dict(self.headers)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = _record

        def log_message(self, *args: Any) -> None:
            pass

    with _serve(Handler) as base:
        state.url = base + "/internal"
        yield state


@contextmanager
def redirector(location: str, status: int = 302) -> Iterator[Listener]:
    """Answers every request with a redirect to `location`."""
    state = Listener()

    class Handler(BaseHTTPRequestHandler):
        def _redirect(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append((self.command, self.path, dict(self.headers)))
            self.send_response(status)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _redirect

        def log_message(self, *args: Any) -> None:
            pass

    with _serve(Handler) as base:
        state.url = base + "/hooks/signoff"
        yield state
