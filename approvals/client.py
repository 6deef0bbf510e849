"""A Python client for asking a person through Signoff (docs/agents.md).

Standard library only, and importable without Django: copy this one file into a program, or
import it from an installed Signoff.

    from approvals.client import Signoff

    signoff = Signoff("https://signoff.example.com", token="sgf_...")
    ask = signoff.ask(
        title="Refund order 1234",
        action="send_refund",
        arguments={"order": "1234", "amount": 120},
        roles=["finance"],
        sla="PT1H",
        expires_in="PT4H",
        context="The parcel arrived **damaged**.",
    )
    answer = signoff.wait(ask.id, timeout=3600)
    if answer.approved:
        send_refund(**answer.arguments)  # as approved: possibly edited by the reviewer

`ask` sends an Idempotency-Key (one made for the call unless given) and retries the same key
on connection errors, 429 and 5xx, so a retried ask never asks twice. `wait` long-polls
`GET /api/v1/instances/{id}/wait/` until the answer or its own timeout. `AsyncSignoff` has the
same methods as coroutines (the calls run in a thread: no third-party event-loop HTTP library).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Answer",
    "Ask",
    "AsyncSignoff",
    "Decision",
    "Signoff",
    "SignoffError",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class SignoffError(Exception):
    """Signoff refused the call: `status` (400, 403, 404, 409...), its `code`, `detail` and,
    for bad input, `fields` (place → messages, e.g. `action.arguments.amount`)."""

    def __init__(self, status: int, body: Mapping[str, Any] | None) -> None:
        body = body or {}
        self.status = status
        self.code = str(body.get("code", ""))
        self.detail = str(body.get("detail", ""))
        self.fields: dict[str, list[str]] = dict(body.get("fields") or {})
        super().__init__(
            f"{status} {self.code}: {self.detail}" + (f" {self.fields}" if self.fields else "")
        )


@dataclass(frozen=True)
class Ask:
    """The request an ask made."""

    id: int
    state: str
    status: str
    task_ids: tuple[int, ...]
    raw: Mapping[str, Any] = field(repr=False)
    replayed: bool = False  # the answer to an earlier call with the same Idempotency-Key

    @property
    def callback_secret(self) -> str | None:
        return (self.raw.get("ask") or {}).get("callback_secret")


@dataclass(frozen=True)
class Decision:
    event: str
    arguments: dict[str, Any] | None
    comment: str
    by: str
    at: str


@dataclass(frozen=True)
class Answer:
    """Where a request stands: `done` once decided (or ended), with the decision."""

    id: int
    done: bool
    state: str
    status: str
    timed_out: bool
    decision: Decision | None

    @property
    def approved(self) -> bool:
        return self.decision is not None and self.decision.event in (
            "APPROVE",
            "APPROVE_WITH_CHANGES",
        )

    @property
    def arguments(self) -> dict[str, Any] | None:
        """The approved arguments (edited ones for APPROVE_WITH_CHANGES), else None."""
        return self.decision.arguments if self.decision is not None else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Answer:
        decision = data.get("decision")
        return cls(
            id=int(data["id"]),
            done=bool(data["done"]),
            state=str(data["state"]),
            status=str(data["status"]),
            timed_out=bool(data.get("timed_out")),
            decision=Decision(
                event=decision["event"],
                arguments=decision.get("arguments"),
                comment=decision.get("comment", ""),
                by=decision.get("by", ""),
                at=decision.get("at", ""),
            )
            if decision
            else None,
        )


class Signoff:
    """A Signoff server and the API token its calls use."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        request_timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retries = retries
        self.backoff = backoff
        self.request_timeout = request_timeout

    # ----- calls

    def ask(
        self,
        *,
        title: str = "",
        action: str | None = None,
        arguments: Mapping[str, Any] | None = None,
        schema: Mapping[str, Any] | None = None,
        roles: Sequence[str] | None = None,
        sla: str | None = None,
        expires_in: str | None = None,
        context: str | Mapping[str, Any] | None = None,
        workflow: str = "review-action",
        business_key: str = "",
        callback_url: str = "",
        idempotency_key: str | None = None,
    ) -> Ask:
        """Ask (POST /api/v1/asks/). Give `idempotency_key` to make the ask safe across
        restarts of your program too (the same key answers the first ask again)."""
        body: dict[str, Any] = {"workflow": workflow, "title": title}
        if action is not None:
            body["action"] = {"name": action, "arguments": dict(arguments or {})}
            if schema is not None:
                body["action"]["schema"] = dict(schema)
        for name, value in (
            ("roles", list(roles) if roles is not None else None),
            ("sla", sla),
            ("expires_in", expires_in),
            ("context", context),
        ):
            if value is not None:
                body[name] = value
        if business_key:
            body["business_key"] = business_key
        if callback_url:
            body["callback_url"] = callback_url
        key = idempotency_key or f"ask-{uuid.uuid4()}"
        _, data, headers = self._call("POST", "/api/v1/asks/", body, idempotency_key=key)
        return Ask(
            id=int(data["id"]),
            state=data["state"],
            status=data["status"],
            task_ids=tuple(t["id"] for t in data.get("open_tasks", [])),
            raw=data,
            replayed=headers.get("Idempotent-Replayed") == "true",
        )

    def status(self, instance_id: int) -> Answer:
        """Where the request stands now, without waiting."""
        return self._wait_once(instance_id, "decided", 0)

    def wait(
        self, instance_id: int, *, until: str = "decided", timeout: float | None = None
    ) -> Answer:
        """Wait for the answer: long-polls of up to 30 s each until done, or until `timeout`
        seconds have passed (then the answer has done=False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = 30 if deadline is None else max(0, min(30, deadline - time.monotonic()))
            answer = self._wait_once(instance_id, until, int(remaining))
            if answer.done or (deadline is not None and time.monotonic() >= deadline):
                return answer

    def _wait_once(self, instance_id: int, until: str, seconds: int) -> Answer:
        query = urllib.parse.urlencode({"until": until, "timeout": seconds})
        _, data, _ = self._call(
            "GET",
            f"/api/v1/instances/{int(instance_id)}/wait/?{query}",
            timeout=seconds + self.request_timeout,
        )
        return Answer.from_json(data)

    def pending_asks(self) -> list[dict[str, Any]]:
        """This token's account's requests still waiting (GET /api/v1/instances/)."""
        _, data, _ = self._call("GET", "/api/v1/instances/?status=active&page_size=200")
        return list(data.get("results", data) if isinstance(data, dict) else data)

    # ----- the transport

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any, Mapping[str, str]]:
        attempt = 0
        while True:
            attempt += 1
            request = urllib.request.Request(self.base_url + path, method=method)
            request.add_header("Authorization", f"Bearer {self.token}")
            request.add_header("Accept", "application/json")
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                request.add_header("Content-Type", "application/json")
            if idempotency_key:
                request.add_header("Idempotency-Key", idempotency_key)
            try:
                with urllib.request.urlopen(
                    request, data, timeout=timeout or self.request_timeout
                ) as response:
                    payload = json.loads(response.read() or b"null")
                    return response.status, payload, dict(response.headers)
            except urllib.error.HTTPError as error:
                try:
                    payload = json.loads(error.read() or b"null")
                except ValueError:
                    payload = None
                if error.code not in RETRY_STATUSES or attempt > self.retries:
                    raise SignoffError(error.code, payload) from None
                delay = _retry_after(error.headers.get("Retry-After")) or self._delay(attempt)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                if attempt > self.retries:
                    raise SignoffError(0, {"code": "unreachable", "detail": str(error)}) from None
                delay = self._delay(attempt)
            time.sleep(delay)

    def _delay(self, attempt: int) -> float:
        return self.backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2)


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


class AsyncSignoff:
    """`Signoff` for asyncio: the same calls as coroutines."""

    def __init__(self, base_url: str, token: str, **options: Any) -> None:
        self.sync = Signoff(base_url, token, **options)

    async def ask(self, **fields: Any) -> Ask:
        return await asyncio.to_thread(lambda: self.sync.ask(**fields))

    async def status(self, instance_id: int) -> Answer:
        return await asyncio.to_thread(self.sync.status, instance_id)

    async def wait(
        self, instance_id: int, *, until: str = "decided", timeout: float | None = None
    ) -> Answer:
        return await asyncio.to_thread(
            lambda: self.sync.wait(instance_id, until=until, timeout=timeout)
        )
