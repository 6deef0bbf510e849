"""A run of a web server and a worker with LOG_FORMAT=json: every line is a JSON object with
its context, the worker's lines carry the id of the request that caused them, and no secret,
token or signed link appears anywhere in the logs.

Needs PostgreSQL and Redis (the processes share the test's database and broker).
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from approvals.models import FailedAction, WorkflowInstance
from approvals.services.api_tokens import token_create
from tests.approvals.flows import publish
from tests.approvals.notify.live_server import Daphne, free_port
from tests.approvals.services.test_sla_processes import Processes
from tests.processes import child_env
from tests.workflow_app.test_metrics_processes import ship_flow, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]

SECRETS = {
    "SECRET_KEY": "log-test-secret-key-" + "k" * 40,
    "WEBHOOK_SECRET": "log-test-webhook-secret-77",
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-logtestbottoken",
    "SLACK_SIGNING_SECRET": "log-test-slack-signing-secret",
    "METRICS_TOKEN": "log-test-metrics-token-55",
}
SIGNATURE = "signedlinksig0123456789"
# Celery prints this on SIGTERM straight to the terminal, past logging; nothing configures it.
CELERY_SHUTDOWN_NOTICE = "worker: Warm shutdown (MainProcess)"


@pytest.fixture(autouse=True)
def _production_parts() -> None:
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL)")


def send(web: Daphne, method: str, path: str, token: str, body=None, **headers: str) -> dict:
    request = urllib.request.Request(
        web.http + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"} | headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            is_json = response.headers.get_content_type() == "application/json"
            return json.loads(body or b"{}") if is_json else {"status": response.status}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code}


def test_json_logs_of_a_run_have_context_and_no_secrets(
    tmp_path: Path, requester, reviewer, settings
) -> None:
    import threading
    from http.server import ThreadingHTTPServer

    from tests.workflow_app.test_metrics_processes import Receiver  # 200 on /ok, else 500

    class Refusing(Receiver):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200 if self.path == "/ok" else 404)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver = f"http://127.0.0.1:{server.server_address[1]}"
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True
    publish(ship_flow("ship-ok", receiver + "/ok"))
    publish(ship_flow("ship-bad", f"{receiver}/bad?sig={SIGNATURE}"))
    now = timezone.now()
    _, rita = token_create(user=requester, name="logs", actor=requester, now=now)
    _, rob = token_create(user=reviewer, name="logs", actor=reviewer, now=now)
    db = connection.settings_dict
    env = child_env(
        tmp_path,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=os.environ["REDIS_URL"],
        DEBUG="true",
        CELERY_QUEUE=f"logs-test-{uuid.uuid4().hex[:8]}",
        ALLOW_PRIVATE_WEBHOOK_TARGETS="true",
        LOG_FORMAT="json",
        SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api/",  # nobody listens: errors logged
        **SECRETS,
    )
    processes = Processes(env, tmp_path)
    web = Daphne(env, tmp_path / "web.log", args=("-v", "0"))  # as the launcher runs it
    try:
        web.start()
        # As the launcher starts it with LOG_FORMAT=json: no banner.
        processes.start("worker", "--quiet", "worker", "-c", "1", "--hostname", "worker@%h")
        logs = lambda: processes.logs() + web.log_path.read_text()[-4000:]  # noqa: E731
        started = send(
            web,
            "POST",
            "/api/v1/workflows/ship-ok/instances/",
            rita,
            {"context": {"title": "ok"}},
            **{"X-Request-ID": "run-ok-1"},
        )["id"]
        bad = send(
            web,
            "POST",
            "/api/v1/workflows/ship-bad/instances/",
            rita,
            {"context": {"title": "bad"}},
            **{"X-Request-ID": "run-bad-1"},
        )["id"]
        wait_until(
            lambda: WorkflowInstance.objects.get(pk=started).state == "review", "the step", logs
        )
        wait_until(FailedAction.objects.filter(instance_id=bad).exists, "the refusal", logs)
        task = WorkflowInstance.objects.get(pk=started).tasks.get()
        send(web, "POST", f"/api/v1/tasks/{task.pk}/decide/", rob, {"decision": "APPROVE"})
        assert send(web, "GET", "/api/v1/tasks/", "sgf_not-a-real-token-123456")["status"] == 401
        assert send(web, "GET", f"/nowhere/?token={rob}", rob)["status"] == 404
        send(web, "GET", "/metrics", SECRETS["METRICS_TOKEN"])
        # Stopped as the launcher stops it: SIGTERM to the worker, which stops its pool.
        worker = processes.running["worker"]
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    finally:
        processes.stop_all()
        web.stop()
        server.shutdown()
        server.server_close()

    texts = {name: (tmp_path / name).read_text() for name in ("web.log", "worker.log")}
    parsed = {}
    for name, text in texts.items():
        lines = [line for line in text.splitlines() if line.strip()]
        assert lines, name
        not_json = []
        for line in lines:
            if line == CELERY_SHUTDOWN_NOTICE:
                continue
            try:
                parsed.setdefault(name, []).append(json.loads(line))
            except ValueError:
                not_json.append(line)
        assert not not_json, f"{name}: lines that are not JSON:\n" + "\n".join(not_json[:20])
    for record in parsed["web.log"] + parsed["worker.log"]:
        assert {"time", "level", "logger", "message", "request_id", "user_id"} <= set(record)
        assert {"instance_id", "trace_id"} <= set(record)
    # The worker's line about the refused step names the request that started it.
    (refused,) = [r for r in parsed["worker.log"] if "failed for good" in r["message"]]
    assert refused["request_id"] == "run-bad-1"
    assert refused["user_id"] == requester.pk and refused["instance_id"] == bad
    assert f"{receiver}/bad?[redacted]" in refused["message"]
    unauthorized = [r for r in parsed["web.log"] if r["message"].startswith("Unauthorized")]
    assert unauthorized and unauthorized[0]["request_id"]
    everything = "\n".join(texts.values())
    for secret in [*SECRETS.values(), rita, rob, SIGNATURE, "sgf_not-a-real-token-123456"]:
        assert secret not in everything, secret
    assert "xoxb-" not in everything
