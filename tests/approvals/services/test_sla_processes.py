"""SLA timers and automated steps with real processes: PostgreSQL, Redis, a Celery worker and
beat (sweeping every second), and two sweepers racing.

These need the production parts, so they run when the suite runs on PostgreSQL with REDIS_URL
set (as in CI). Each test uses its own Celery queue, so stray messages of other runs sharing
the Redis database are never consumed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from approvals.models import AuditEvent, OutboxMessage, Task, WorkflowInstance
from approvals.services.instances import instance_start
from tests.approvals.flows import publish, review_flow
from tests.processes import BASE_DIR, child_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]

CELERY = [sys.executable, "-m", "celery", "-A", "workflow_app"]
WAIT = 60.0  # seconds before a test gives up waiting (a failure, not a measurement)


@pytest.fixture(autouse=True)
def _production_parts() -> None:
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL)")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A child process on this test's database and Redis, sweeping every second."""
    db = connection.settings_dict
    return child_env(
        tmp_path,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=os.environ["REDIS_URL"],
        DEBUG="true",
        CELERY_QUEUE=f"sla-test-{uuid.uuid4().hex[:8]}",
        SLA_SWEEP_SECONDS="1",
        HEARTBEAT_SECONDS="60",
        ACTION_LEASE_SECONDS="3",
        WEBHOOK_SECRET="test-secret",
        ALLOW_PRIVATE_WEBHOOK_TARGETS="true",  # the test's receiver listens on 127.0.0.1
    )


class Processes:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [*CELERY, *args, "--loglevel", "INFO"],
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed with its children
        )
        self.running[name] = process
        return process

    def worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        return self.start(name, "worker", "--concurrency", "1", "--hostname", f"{name}@%h")

    def beat(self) -> subprocess.Popen[bytes]:
        schedule = self.log_dir / "beat-schedule"
        return self.start("beat", "beat", "--schedule", str(schedule))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.running.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def stop_all(self) -> None:
        for name in list(self.running):
            self.kill(name, signal.SIGTERM if name != "beat" else signal.SIGKILL)


@pytest.fixture
def processes(env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(env, tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


def wait_until(check: Callable[[], bool], processes: Processes, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        for name, process in processes.running.items():
            assert process.poll() is None, f"{name} died\n{processes.logs()}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}\n{processes.logs()}"
        time.sleep(0.2)


def sweeps_seen(env: dict[str, str], processes: Processes, count: int) -> None:
    """Wait until the worker logged `count` more sweeps, to show nothing else happens."""
    log = processes.log_dir / "worker.log"
    start = log.read_text().count("approvals.tasks.sla_sweep") if log.exists() else 0
    wait_until(
        lambda: log.read_text().count("approvals.tasks.sla_sweep") >= start + 2 * count,
        processes,
        f"{count} more sweeps",
    )


def start_instances(requester, count: int, *, ago: timedelta, key: str = "review") -> list[int]:
    when = timezone.now() - ago
    return [
        instance_start(
            definition_key=key,
            context={"title": f"r{i}", "amount": 5},
            actor=requester,
            now=when,
        ).pk
        for i in range(count)
    ]


def escalations(instance_ids: list[int]) -> dict[int, int]:
    counts = dict.fromkeys(instance_ids, 0)
    for instance_id in AuditEvent.objects.filter(
        instance_id__in=instance_ids, event="task.escalated"
    ).values_list("instance_id", flat=True):
        counts[instance_id] += 1
    return counts


def test_beat_and_worker_escalate_a_pt2s_task_and_catch_up_once(requester, processes, env):
    publish(review_flow(sla="PT2S", escalate_to=["director"]))
    # Deadlines that passed while beat was down: several per request (reminder, breach).
    overdue = start_instances(requester, 5, ago=timedelta(hours=3))
    processes.worker()
    processes.beat()
    wait_until(lambda: all(escalations(overdue).values()), processes, "the catch-up")
    fresh = start_instances(requester, 1, ago=timedelta(0))
    wait_until(lambda: escalations(fresh)[fresh[0]] == 1, processes, "the PT2S escalation")
    # More sweeps change nothing: each was escalated once (the next level's 2 s may pass
    # meanwhile, but there is no level after director, so that only flags).
    sweeps_seen(env, processes, 3)
    assert set(escalations(overdue + fresh).values()) == {1}
    for instance_id in overdue + fresh:
        tasks = Task.objects.filter(instance_id=instance_id)
        assert tasks.filter(status="escalated").count() == 1
        escalated = tasks.get(escalation_level=1)
        assert list(escalated.candidate_groups.values_list("name", flat=True)) == ["director"]
    audit = AuditEvent.objects.filter(instance_id=fresh[0], event="task.escalated").get()
    assert audit.channel == "sla" and audit.data["reason"] == "escalated by SLA"


def test_two_sweepers_at_once_escalate_each_task_once(requester, env):
    publish(review_flow(sla="PT1H", escalate_to=["director"]))
    ids = start_instances(requester, 80, ago=timedelta(hours=2))
    sweepers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "sla_sweep"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [sweeper.communicate(timeout=120) for sweeper in sweepers]
    for sweeper, (_out, err) in zip(sweepers, outputs, strict=True):
        assert sweeper.returncode == 0, err
    escalated = [
        int(line.split(":")[1])
        for out, _ in outputs
        for line in out.splitlines()
        if "tasks escalated" in line
    ]
    assert sum(escalated) == 80, outputs
    assert set(escalations(ids).values()) == {1}
    assert Task.objects.filter(instance_id__in=ids, status="escalated").count() == 80


class HoldFirstRequest(BaseHTTPRequestHandler):
    """The webhook receiver: holds the first POST (the worker is killed meanwhile), answers
    the next ones."""

    requests: list[dict[str, str]] = []
    first_arrived = threading.Event()
    release = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).requests.append(dict(self.headers))
        if len(type(self).requests) == 1:
            type(self).first_arrived.set()
            type(self).release.wait(WAIT)
        try:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")
        except OSError:
            pass  # the killed worker is not there to read it

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    HoldFirstRequest.requests = []
    HoldFirstRequest.first_arrived = threading.Event()
    HoldFirstRequest.release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), HoldFirstRequest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        HoldFirstRequest.release.set()
        server.shutdown()
        server.server_close()


def test_worker_killed_during_a_step_then_restarted_moves_the_request_once(
    requester, processes, receiver, django_capture_on_commit_callbacks, settings
):
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True  # its URL is checked when it is published
    publish(
        {
            "id": "ship",
            "title": "Ship",
            "initial": "posting",
            "settings": {"webhook_url": receiver},
            "states": {
                "posting": {
                    "invoke": {
                        "src": "webhook",
                        "retry": {"max_attempts": 3, "delay": "PT1S"},
                        "onDone": "done",
                    }
                },
                "done": {"type": "final"},
            },
        }
    )
    # Queued by beat's sweep (the sweep sends due steps), not by this process's broker.
    with django_capture_on_commit_callbacks(execute=False):
        instance = instance_start(
            definition_key="ship", context={}, actor=requester, now=timezone.now()
        )
    processes.worker()
    processes.beat()
    wait_until(HoldFirstRequest.first_arrived.is_set, processes, "the first webhook POST")
    processes.kill("worker")  # SIGKILL to the worker and its pool, mid-request
    HoldFirstRequest.release.set()
    processes.worker("worker2")

    def moved() -> bool:
        return WorkflowInstance.objects.get(pk=instance.pk).state == "done"

    wait_until(moved, processes, "the step to complete after the restart")
    moves = AuditEvent.objects.filter(instance=instance, event="transition", to_state="done")
    assert moves.count() == 1
    keys = {r["Idempotency-Key"] for r in HoldFirstRequest.requests}
    assert len(HoldFirstRequest.requests) >= 2 and keys == {f"{instance.pk}:1:posting:webhook"}
    message = OutboxMessage.objects.get(instance=instance, topic="action.invoke")
    assert message.status == "delivered" and message.attempts >= 2
    assert AuditEvent.objects.filter(instance=instance, event="action.completed").count() == 1
