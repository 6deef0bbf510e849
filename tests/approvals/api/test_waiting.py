"""Long-poll and Server-Sent Events on a real Daphne (embedded default: the web process's own
pushes and its poll relay for what other processes commit)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.approvals.api.live_asks import call, refund_body, seed_asks
from tests.approvals.notify.live_server import Daphne
from tests.processes import child_env, manage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp_path: Path = tmp_path_factory.mktemp("waits")
    env = child_env(tmp_path, ASK_WAIT_POLL_SECONDS="2")
    tokens = seed_asks(env)
    daphne = Daphne(env, tmp_path / "daphne.log").start()
    yield env, tokens, daphne
    daphne.stop()


def ask(daphne: Daphne, tokens: dict[str, str], **changes) -> dict:
    status, data = call(daphne.http, "POST", "/api/v1/asks/", tokens["bot"], refund_body(**changes))
    assert status == 201, data
    return data


def wait(daphne: Daphne, token: str | None, instance: int, query: str = "") -> tuple[int, dict]:
    return call(daphne.http, "GET", f"/api/v1/instances/{instance}/wait/{query}", token)


def test_a_waiter_gets_the_edited_arguments_as_soon_as_they_are_approved(server) -> None:
    _, tokens, daphne = server
    data = ask(daphne, tokens)
    answers: list[tuple[int, dict]] = []
    waiter = threading.Thread(
        target=lambda: answers.append(wait(daphne, tokens["bot"], data["id"], "?timeout=60"))
    )
    waiter.start()
    time.sleep(1)
    assert waiter.is_alive()  # still waiting: nothing was decided
    status, decided = call(
        daphne.http,
        "POST",
        f"/api/v1/tasks/{data['open_tasks'][0]['id']}/decide/",
        tokens["fred"],
        {
            "decision": "APPROVE_WITH_CHANGES",
            "comment": "Half",
            "data": {"arguments": {"order": "1234", "amount": 60}},
        },
    )
    assert status == 200, decided
    waiter.join(30)
    assert not waiter.is_alive()
    ((status, answer),) = answers
    assert status == 200
    assert answer["done"] is True and answer["status"] == "completed"
    assert answer["decision"]["event"] == "APPROVE_WITH_CHANGES"
    assert answer["decision"]["arguments"] == {"order": "1234", "amount": 60}
    assert (answer["decision"]["by"], answer["decision"]["comment"]) == ("fred", "Half")
    # Asked again, it answers at once.
    assert wait(daphne, tokens["bot"], data["id"], "?until=completed&timeout=60")[1]["done"]


def test_the_timeout_answers_not_done_with_the_current_state(server) -> None:
    _, tokens, daphne = server
    data = ask(daphne, tokens)
    status, answer = wait(daphne, tokens["bot"], data["id"], "?timeout=1")
    assert status == 200
    assert answer == {
        "done": False,
        "id": data["id"],
        "state": "review",
        "status": "active",
        "timed_out": False,
        "decision": None,
    }


def test_an_expiry_committed_by_another_process_wakes_the_waiter(server) -> None:
    env, tokens, daphne = server
    data = ask(daphne, tokens, expires_in="PT1M")
    answers: list[tuple[int, dict]] = []
    waiter = threading.Thread(
        target=lambda: answers.append(wait(daphne, tokens["bot"], data["id"], "?timeout=60"))
    )
    waiter.start()
    time.sleep(1)
    swept = manage(
        "shell",
        "-c",
        "from datetime import timedelta\nfrom django.utils import timezone\n"
        "from approvals.services.sla import sla_sweep\n"
        "print(sla_sweep(now=timezone.now() + timedelta(minutes=2)))",
        env=env,
    )
    assert swept.returncode == 0, swept.stderr
    waiter.join(30)
    ((status, answer),) = answers
    assert (status, answer["done"], answer["timed_out"]) == (200, True, True)
    assert (answer["state"], answer["status"], answer["decision"]) == (
        "timed_out",
        "cancelled",
        None,
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [("?until=soon", "until"), ("?timeout=-1", "timeout"), ("?timeout=61", "timeout")],
)
def test_bad_parameters_are_a_400(server, query: str, field: str) -> None:
    _, tokens, daphne = server
    data = ask(daphne, tokens)
    status, answer = wait(daphne, tokens["bot"], data["id"], query)
    assert status == 400 and field in answer["fields"]


def test_the_outsider_and_the_anonymous_are_refused(server) -> None:
    _, tokens, daphne = server
    data = ask(daphne, tokens)
    assert wait(daphne, tokens["otto"], data["id"], "?timeout=0")[0] == 404
    assert wait(daphne, tokens["otto"], 999999, "?timeout=0")[0] == 404
    assert wait(daphne, None, data["id"], "?timeout=0")[0] == 401
    assert wait(daphne, "sgf_not-a-token", data["id"], "?timeout=0")[0] == 401
    status, _ = call(daphne.http, "GET", f"/api/v1/instances/{data['id']}/stream/", tokens["otto"])
    assert status == 404


def test_waiters_that_disconnect_leave_the_server_serving(server) -> None:
    _, tokens, daphne = server
    data = ask(daphne, tokens)
    sockets = []
    for _ in range(20):
        conn = socket.create_connection(("127.0.0.1", daphne.port))
        conn.sendall(
            f"GET /api/v1/instances/{data['id']}/wait/?timeout=60 HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {tokens['bot']}\r\n\r\n".encode()
        )
        sockets.append(conn)
    time.sleep(1)
    for conn in sockets:
        conn.close()
    # The server answers the others at once, and a decision still reaches a new waiter.
    assert wait(daphne, tokens["bot"], data["id"], "?timeout=0")[1]["done"] is False
    call(
        daphne.http,
        "POST",
        f"/api/v1/tasks/{data['open_tasks'][0]['id']}/decide/",
        tokens["fred"],
        {"decision": "APPROVE"},
    )
    answer = wait(daphne, tokens["bot"], data["id"], "?timeout=30")[1]
    assert answer["decision"]["arguments"] == {"order": "1234", "amount": 120}


def read_events(daphne: Daphne, token: str, instance: int, last: str | None = None) -> list:
    conn = http.client.HTTPConnection("127.0.0.1", daphne.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    if last is not None:
        headers["Last-Event-ID"] = last
    conn.request("GET", f"/api/v1/instances/{instance}/stream/", headers=headers)
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    events, current = [], {}
    while True:
        line = response.readline().decode()
        if not line:
            break
        line = line.rstrip("\n")
        if not line:
            if current:
                events.append(current)
                if current.get("event") == "end":
                    break
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = value
    conn.close()
    return events


def test_the_stream_sends_every_change_and_resumes_from_last_event_id(server) -> None:
    _, tokens, daphne = server
    data = ask(daphne, tokens)
    got: list = []
    reader = threading.Thread(
        target=lambda: got.extend(read_events(daphne, tokens["bot"], data["id"]))
    )
    reader.start()
    time.sleep(1)
    call(
        daphne.http,
        "POST",
        f"/api/v1/tasks/{data['open_tasks'][0]['id']}/decide/",
        tokens["fred"],
        {"decision": "REJECT", "comment": "No"},
    )
    reader.join(30)
    assert not reader.is_alive()
    names = [e.get("event") for e in got if "id" in e]
    assert names[0] == "instance.started" and "task.decided" in names
    assert got[-1]["event"] == "end"
    decided = next(json.loads(e["data"]) for e in got if e.get("event") == "task.decided")
    assert decided["data"]["decision"] == "REJECT"
    # Resumed after the decision: only what came after it, then the end.
    seq = next(e["id"] for e in got if e.get("event") == "task.decided")
    rest = read_events(daphne, tokens["bot"], data["id"], last=seq)
    assert all(int(e["id"]) > int(seq) for e in rest if "id" in e)
    assert rest[-1]["event"] == "end"
