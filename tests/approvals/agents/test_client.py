"""approvals/client.py against a real Daphne: ask, retries with the Idempotency-Key, wait
(sync and asyncio), typed answers, refusals."""

from __future__ import annotations

import asyncio
import http.server
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from approvals.client import AsyncSignoff, Signoff, SignoffError
from tests.approvals.api.live_asks import SCHEMA, call, seed_asks
from tests.approvals.notify.live_server import Daphne, free_port
from tests.processes import BASE_DIR, child_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp_path: Path = tmp_path_factory.mktemp("client")
    env = child_env(tmp_path)
    tokens = seed_asks(env)
    daphne = Daphne(env, tmp_path / "daphne.log").start()
    yield tokens, daphne
    daphne.stop()


def refund(signoff: Signoff, **changes):
    fields = dict(
        title="Refund order 1234",
        action="send_refund",
        arguments={"order": "1234", "amount": 120},
        schema=SCHEMA,
        roles=["finance"],
        sla="PT1H",
        expires_in="PT4H",
        context="Damaged parcel.",
    )
    fields.update(changes)
    return signoff.ask(**fields)


def decide(daphne: Daphne, token: str, task_id: int, body: dict) -> None:
    status, data = call(daphne.http, "POST", f"/api/v1/tasks/{task_id}/decide/", token, body)
    assert status == 200, data


def test_the_client_imports_without_django() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, approvals.client; "
            "assert not [m for m in sys.modules if m.split('.')[0] in "
            "('django', 'rest_framework', 'channels')], 'imported a third-party package'",
        ],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_ask_wait_and_the_edited_arguments(server) -> None:
    tokens, daphne = server
    signoff = Signoff(daphne.http, tokens["bot"])
    ask = refund(signoff)
    assert (ask.state, ask.status, len(ask.task_ids)) == ("review", "active", 1)
    assert signoff.wait(ask.id, timeout=1).done is False
    threading.Timer(
        1,
        decide,
        (
            daphne,
            tokens["fred"],
            ask.task_ids[0],
            {
                "decision": "APPROVE_WITH_CHANGES",
                "data": {"arguments": {"order": "1234", "amount": 50}},
            },
        ),
    ).start()
    answer = signoff.wait(ask.id, timeout=60)
    assert answer.done and answer.approved and not answer.timed_out
    assert answer.arguments == {"order": "1234", "amount": 50}
    assert (answer.decision.event, answer.decision.by) == ("APPROVE_WITH_CHANGES", "fred")
    assert signoff.status(ask.id).status == "completed"


def test_the_same_idempotency_key_asks_once(server) -> None:
    tokens, daphne = server
    signoff = Signoff(daphne.http, tokens["bot"])
    first = refund(signoff, idempotency_key="order-1234-refund")
    again = refund(signoff, idempotency_key="order-1234-refund")
    assert again.id == first.id and again.replayed and not first.replayed


class _LosesTheFirstAnswer(http.server.BaseHTTPRequestHandler):
    """A proxy whose first POST reaches the server but whose answer is lost (502)."""

    upstream = ""
    posts = 0

    def do_POST(self) -> None:
        type(self).posts += 1
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = urllib.request.Request(self.upstream + self.path, data=body, method="POST")
        for name in ("Authorization", "Content-Type", "Idempotency-Key"):
            if self.headers.get(name):
                request.add_header(name, self.headers[name])
        with urllib.request.urlopen(request) as response:
            status, payload = response.status, response.read()
            replayed = response.headers.get("Idempotent-Replayed", "")
        if type(self).posts == 1:
            self.send_response(502)
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if replayed:
            self.send_header("Idempotent-Replayed", replayed)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def test_a_lost_answer_is_retried_with_the_same_key_and_asks_once(server) -> None:
    tokens, daphne = server
    _LosesTheFirstAnswer.upstream = daphne.http
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _LosesTheFirstAnswer)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        before = call(daphne.http, "GET", "/api/v1/instances/?page_size=200", tokens["bot"])[1]
        signoff = Signoff(f"http://127.0.0.1:{proxy.server_port}", tokens["bot"], backoff=0.1)
        ask = refund(signoff)
        assert ask.replayed and _LosesTheFirstAnswer.posts == 2
        after = call(daphne.http, "GET", "/api/v1/instances/?page_size=200", tokens["bot"])[1]
        assert after["count"] == before["count"] + 1
    finally:
        proxy.shutdown()


def test_refusals_are_typed_errors_naming_the_field(server) -> None:
    tokens, daphne = server
    signoff = Signoff(daphne.http, tokens["bot"])
    with pytest.raises(SignoffError) as bad:
        refund(signoff, arguments={"order": "1234", "amount": 900})
    assert bad.value.status == 400 and "action.arguments.amount" in bad.value.fields
    with pytest.raises(SignoffError) as refused:
        refund(signoff, roles=["manager"])
    assert refused.value.status == 400  # no such role here
    with pytest.raises(SignoffError) as hidden:
        Signoff(daphne.http, tokens["otto"]).wait(refund(signoff).id, timeout=0)
    assert hidden.value.status == 404


def test_the_asyncio_client_waits_for_several_at_once(server) -> None:
    tokens, daphne = server

    async def scenario() -> list:
        signoff = AsyncSignoff(daphne.http, tokens["bot"])
        asks = [await signoff.ask(title=f"Refund {n}", action="send_refund",
                                  arguments={"order": str(n)}, roles=["finance"])
                for n in range(2)]  # fmt: skip
        waits = [asyncio.create_task(signoff.wait(a.id, timeout=60)) for a in asks]
        await asyncio.sleep(0.5)
        for a in asks:
            await asyncio.to_thread(
                decide,
                daphne,
                tokens["fred"],
                a.task_ids[0],
                {"decision": "REJECT", "comment": "No"},
            )
        return await asyncio.gather(*waits)

    answers = asyncio.run(scenario())
    assert [(a.done, a.approved, a.decision.event, a.arguments) for a in answers] == [
        (True, False, "REJECT", None),
        (True, False, "REJECT", None),
    ]
