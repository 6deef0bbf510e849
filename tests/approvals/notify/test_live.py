"""End to end: a real Daphne and a real WebSocket client (websockets). Changes are made by
other processes, so what arrives crossed a process boundary: in the embedded default through
each web process's poll relay; in production through channels-redis."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.approvals.notify.live_server import Daphne, seed, start_request
from tests.processes import child_env

pytestmark = pytest.mark.slow

# Generous: a deadline for "it arrives", not a measured timing (bench/push_latency.py measures).
ARRIVES_WITHIN = 20


def open_socket(server: Daphne, session: str | None, *, since: int | None = None, origin=None):
    headers = {"Cookie": f"sessionid={session}"} if session else {}
    url = server.ws + (f"?since={since}" if since is not None else "")
    return connect(
        url,
        additional_headers=headers,
        origin=origin or server.http,
        proxy=None,
        open_timeout=10,
    )


async def next_of(socket, kind: str, timeout: float = ARRIVES_WITHIN) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {kind} arrived"
        message = json.loads(await asyncio.wait_for(socket.recv(), remaining))
        if message["type"] == kind:
            return message


async def nothing_personal(socket, seconds: float) -> bool:
    try:
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), seconds))
            if message["type"] == "notification":
                return False
    except TimeoutError:
        return True


@pytest.fixture
def embedded(tmp_path: Path):
    env = child_env(tmp_path)
    sessions = seed(env)
    server = Daphne(env, tmp_path / "daphne.log").start()
    yield env, sessions, server
    server.stop()


def test_live_push_catch_up_and_refusals_on_a_real_server(embedded, tmp_path):
    env, sessions, server = embedded

    async def scenario() -> None:
        # Refused: no session (told 4401, so that live.js stops retrying); a foreign origin
        # even with a valid session (at the handshake).
        async with open_socket(server, None) as anonymous:
            with pytest.raises(ConnectionClosed) as closed:
                await anonymous.recv()
        assert closed.value.rcvd.code == 4401
        with pytest.raises(InvalidStatus) as foreign:
            async with open_socket(server, sessions["rob"], origin="https://evil.example"):
                pass
        assert foreign.value.response.status_code == 403

        async with (
            open_socket(server, sessions["rob"]) as rob,
            open_socket(server, sessions["otto"]) as otto,
        ):
            assert (await next_of(rob, "ready"))["unread"] == 0
            await next_of(otto, "ready")
            instance = await asyncio.to_thread(start_request, env, "Chair")
            pushed = await next_of(rob, "notification")
            note = pushed["notification"]
            assert (note["kind"], note["instance"]) == ("task_new", instance)
            assert note["text"] == "New task: Review for “Chair”" and pushed["unread"] == 1
            assert await nothing_personal(otto, 1.5), "the outsider was told something"
            last_seen = note["id"]

        # Missed while disconnected: sent on reconnect from the last id seen.
        missed = await asyncio.to_thread(start_request, env, "Desk")
        async with open_socket(server, sessions["rob"], since=last_seen) as rob:
            caught = await next_of(rob, "notification")
            assert caught["notification"]["instance"] == missed
            ready = await next_of(rob, "ready")
            assert ready["unread"] == 2 and ready["last_id"] == caught["notification"]["id"]
            last_seen = ready["last_id"]

        # Missed while the server was down: the rows are the source of truth.
        server.stop()
        during = await asyncio.to_thread(start_request, env, "Lamp")
        await asyncio.to_thread(server.start)
        async with open_socket(server, sessions["rob"], since=last_seen) as rob:
            caught = await next_of(rob, "notification")
            assert caught["notification"]["instance"] == during
            assert (await next_of(rob, "ready"))["unread"] == 3

    asyncio.run(scenario())


def _postgres_env(tmp_path: Path) -> tuple[dict[str, str], str] | None:
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not (database_url and redis_url and database_url.startswith("postgres")):
        return None
    name = f"signoff_live_{os.getpid()}"
    base = urlsplit(database_url)
    env = child_env(
        tmp_path,
        DATABASE_URL=base._replace(path=f"/{name}").geturl(),
        REDIS_URL=redis_url,
        DEBUG="true",
        SECRET_KEY="live-test-secret-key-live-test-secret-key-0123456789",
    )
    return env, name


@pytest.mark.postgres_only
def test_production_mode_pushes_across_two_web_processes_through_redis(tmp_path):
    """PostgreSQL + channels-redis, two Daphne processes: a change committed by a third
    process reaches clients of both, also after the connections sat idle longer than redis-py's
    default 5 s socket timeout (the `socket_timeout: None` trap)."""
    import psycopg

    found = _postgres_env(tmp_path)
    if found is None:
        pytest.skip("needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    env, name = found
    admin = urlsplit(env["DATABASE_URL"])._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')
    servers: list[Daphne] = []
    try:
        sessions = seed(env)
        servers = [Daphne(env, tmp_path / f"daphne{i}.log").start() for i in (1, 2)]

        async def scenario() -> None:
            async with (
                open_socket(servers[0], sessions["rob"]) as first,
                open_socket(servers[1], sessions["rob"]) as second,
            ):
                for socket in (first, second):
                    await next_of(socket, "ready")
                await asyncio.sleep(6)  # idle past a 5 s socket timeout
                instance = await asyncio.to_thread(start_request, env, "Printer")
                for socket in (first, second):
                    note = (await next_of(socket, "notification"))["notification"]
                    assert note["instance"] == instance and note["kind"] == "task_new"

        asyncio.run(scenario())
    finally:
        for server in servers:
            server.stop()
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
