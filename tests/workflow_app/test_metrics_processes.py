"""/metrics adds up every process: a web server (Daphne) and two Celery workers, one after
the other, write to one PROMETHEUS_MULTIPROC_DIR; after a scripted set of actions the scrape
says exactly what happened, per label.

Needs PostgreSQL and Redis (the processes share the test's database and broker).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from celery import current_app
from django.db import connection
from django.utils import timezone

from approvals.models import FailedAction, Task, WorkflowInstance
from approvals.services.api_tokens import token_create
from tests.approvals.flows import publish
from tests.approvals.notify.live_server import Daphne
from tests.approvals.services.test_sla_processes import Processes
from tests.processes import child_env
from tests.workflow_app.metrics_scrape import Samples, delta, parse, value

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]

TOKEN = "scrape-token-0123456789"
WAIT = 60.0


@pytest.fixture(autouse=True)
def _production_parts() -> None:
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL)")


class Receiver(BaseHTTPRequestHandler):
    """Answers 200 on /ok and 500 on /bad."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200 if self.path == "/ok" else 500)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def ship_flow(key: str, url: str) -> dict:
    return {
        "id": key,
        "title": key,
        "initial": "posting",
        "settings": {"webhook_url": url},
        "form": {"type": "object", "properties": {"title": {"type": "string"}}},
        "states": {
            "posting": {
                "invoke": {
                    "src": "webhook",
                    "retry": {"max_attempts": 2, "delay": "PT1S"},
                    "onDone": "review",
                }
            },
            "review": {
                "meta": {"task": {"roles": ["manager"]}},
                "on": {"APPROVE": "done", "REJECT": "refused"},
            },
            "done": {"type": "final"},
            "refused": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


def call(web: Daphne, method: str, path: str, token: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        web.http + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def scrape(web: Daphne) -> Samples:
    request = urllib.request.Request(
        web.http + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return parse(response.read().decode())


def wait_until(check: Callable[[], bool], what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{logs()}")
        time.sleep(0.2)


def in_state(ids: list[int], state: str) -> Callable[[], bool]:
    return lambda: WorkflowInstance.objects.filter(pk__in=ids, state=state).count() == len(ids)


def test_a_scrape_adds_up_web_and_two_workers(
    tmp_path: Path, requester, reviewer, receiver, settings
) -> None:
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True  # checked when the flows are published
    publish(ship_flow("ship-ok", receiver + "/ok"))
    publish(ship_flow("ship-bad", receiver + "/bad"))
    now = timezone.now()
    _, rita = token_create(user=requester, name="metrics test", actor=requester, now=now)
    _, rob = token_create(user=reviewer, name="metrics test", actor=reviewer, now=now)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    db = connection.settings_dict
    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    env = child_env(
        tmp_path,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=os.environ["REDIS_URL"],
        DEBUG="true",
        CELERY_QUEUE=queue,
        WEBHOOK_SECRET="test-secret",
        ALLOW_PRIVATE_WEBHOOK_TARGETS="true",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        METRICS_TOKEN=TOKEN,
    )
    processes = Processes(env, tmp_path)
    web = Daphne(env, tmp_path / "web.log")
    try:
        web.start()
        logs = lambda: processes.logs() + web.log_path.read_text()[-4000:]  # noqa: E731
        empty = scrape(web)

        def start(key: str) -> int:
            body = {"context": {"title": key}}
            return call(web, "POST", f"/api/v1/workflows/{key}/instances/", rita, body)["id"]

        # The first worker: two steps that succeed, one that fails twice (then a review).
        processes.worker("first")
        oks = [start("ship-ok"), start("ship-ok")]
        bad = start("ship-bad")
        wait_until(in_state(oks, "review"), "the first steps", logs)
        wait_until(FailedAction.objects.filter(instance_id=bad).exists, "the failed step", logs)
        processes.kill("first", signal.SIGTERM)

        # The second worker: one more step; the decisions go through the web process.
        processes.worker("second")
        oks.append(start("ship-ok"))
        wait_until(in_state(oks, "review"), "the last step", logs)
        tasks = list(Task.objects.filter(instance_id__in=oks).order_by("pk"))
        for task, decision in zip(tasks, ["APPROVE", "APPROVE", "REJECT"], strict=True):
            body = {"decision": decision, "comment": "no"}
            call(web, "POST", f"/api/v1/tasks/{task.pk}/decide/", rob, body)
        # A connection of its own: another test on this process may have closed the app's pool.
        with current_app.connection_for_write() as broker:
            current_app.send_task("approvals.tasks.refresh_metrics", queue=queue, connection=broker)
        gauge = ("signoff_open_tasks", frozenset({("workflow", "ship-bad"), ("state", "posting")}))
        wait_until(lambda: gauge in scrape(web), "the gauges", logs)
        samples = scrape(web)
    finally:
        processes.stop_all()
        web.stop()

    def labels(**pairs: str) -> frozenset:
        return frozenset(pairs.items())

    counted = {
        key: n
        for key, n in delta(empty, samples).items()
        if not key[0].startswith(("signoff_open_", "signoff_overdue", "signoff_outbox_"))
        and key[0] != "signoff_decision_seconds_sum"
    }
    assert counted == {
        ("signoff_transitions_total", labels(workflow="ship-ok", event="invoke.onDone")): 3,
        ("signoff_transitions_total", labels(workflow="ship-ok", event="APPROVE")): 2,
        ("signoff_transitions_total", labels(workflow="ship-ok", event="REJECT")): 1,
        ("signoff_decisions_total", labels(workflow="ship-ok", outcome="APPROVE")): 2,
        ("signoff_decisions_total", labels(workflow="ship-ok", outcome="REJECT")): 1,
        ("signoff_decision_seconds_count", labels(workflow="ship-ok")): 3,
        ("signoff_action_attempts_total", labels(action="webhook", result="completed")): 3,
        ("signoff_action_attempts_total", labels(action="webhook", result="retrying")): 1,
        ("signoff_action_attempts_total", labels(action="webhook", result="failed")): 1,
        ("signoff_manual_reviews_total", labels()): 1,
    }
    assert value(samples, "signoff_open_tasks", workflow="ship-ok", state="review") == 0
    assert value(samples, "signoff_open_tasks", workflow="ship-bad", state="posting") == 1
    assert value(samples, "signoff_overdue_tasks", workflow="ship-ok") == 0
    for channel in ("steps", "slack", "webhooks"):
        assert ("signoff_outbox_backlog", labels(channel=channel)) in samples
        assert value(samples, "signoff_outbox_backlog", channel=channel) == 0
        assert value(samples, "signoff_outbox_oldest_seconds", channel=channel) == 0
    # The counts came from three processes at least: the web and each worker's child.
    writers = {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}
    assert len(writers) >= 3, writers
