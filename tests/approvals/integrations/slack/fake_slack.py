"""A local HTTP server speaking the parts of Slack's Web API that Signoff calls.

chat.postMessage, chat.update, users.lookupByEmail, users.info, views.open under /api/, and
response_url posts under /response/. It records every call and answers with what a test queued
for a method (status, JSON body, headers: a 429 with Retry-After, an error), else with Slack's
usual success for that method.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str


@dataclass
class FakeSlack:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # Slack id -> profile
    calls: list[Call] = field(default_factory=list)
    queued: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    ts: int = 1000

    def add_member(self, slack_id: str, email: str) -> None:
        self.members[slack_id] = {"id": slack_id, "profile": {"email": email}}

    def queue(self, method: str, status: int, body: dict[str, Any], headers=None) -> None:
        self.queued[method].append((status, body, headers or {}))

    def called(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    def answer(self, method: str, args: dict[str, Any]) -> tuple[int, dict[str, Any], dict]:
        if self.queued[method]:
            return self.queued[method].popleft()
        if method == "chat.postMessage":
            self.ts += 1
            return 200, {"ok": True, "channel": args.get("channel"), "ts": f"{self.ts}.0001"}, {}
        if method == "users.lookupByEmail":
            for member in self.members.values():
                if member["profile"]["email"] == args.get("email"):
                    return 200, {"ok": True, "user": member}, {}
            return 200, {"ok": False, "error": "users_not_found"}, {}
        if method == "users.info":
            member = self.members.get(args.get("user", ""))
            if member is None:
                return 200, {"ok": False, "error": "user_not_found"}, {}
            return 200, {"ok": True, "user": member}, {}
        return 200, {"ok": True}, {}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        args: dict[str, Any] = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if raw:
            if "json" in (self.headers.get("Content-Type") or ""):
                args.update(json.loads(raw))
            else:
                args.update({k: v[0] for k, v in parse_qs(raw).items()})
        if parts.path.startswith("/response/"):
            method = "response_url"
        else:
            method = parts.path.removeprefix("/api/")
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        self.fake.calls.append(Call(method, args, token))
        status, body, headers = self.fake.answer(method, args)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _handle
    do_POST = _handle


class FakeSlackServer:
    def __init__(self) -> None:
        self.fake = FakeSlack()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSlack:
        self.thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
