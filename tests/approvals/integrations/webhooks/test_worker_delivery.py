"""End to end with real processes: a committed change is delivered by the Celery worker, and a
failed attempt is retried through the beat sweep (the embedded default, as a first run has it)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.approvals.integrations.webhooks.receiver import receiver
from tests.processes import BASE_DIR, child_env, manage, migrate

CELERY = [sys.executable, "-m", "celery", "-A", "workflow_app"]
SECRET = "whsec-end-to-end-0123456789"

SUBSCRIBE = """
from approvals.models import WebhookSubscription
WebhookSubscription.objects.create(
    name="receiver", url={url!r}, secret={secret!r}, event_types=["instance.started"]
)
"""
START = """
from django.utils import timezone
from accounts.models import User
from approvals.services.instances import instance_start
instance_start(
    definition_key="order-fulfillment",
    context={"customer": "ACME", "items": 2, "address": "1 Main Street"},
    actor=User.objects.get(username="alice"),
    now=timezone.now(),
)
"""


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*CELERY, *args, "--loglevel", "INFO"],
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_worker_delivers_and_beat_retries_after_a_failure(tmp_path: Path) -> None:
    env = child_env(
        tmp_path,
        WEBHOOK_BACKOFF_SECONDS="1",
        WEBHOOK_SWEEP_SECONDS="1",
        HEARTBEAT_SECONDS="60",
        ALLOW_PRIVATE_WEBHOOK_TARGETS="true",  # the receiver listens on 127.0.0.1
    )
    migrate(env)
    done = manage("seed_demo", env=env)
    assert done.returncode == 0, done.stderr
    with receiver(SECRET, statuses=[500, 200]) as hook:
        made = manage("shell", "-c", SUBSCRIBE.format(url=hook.url, secret=SECRET), env=env)
        assert made.returncode == 0, made.stderr
        worker = _start(
            ["worker", "--concurrency", "1", "--pool", "solo"], env, tmp_path / "worker.log"
        )
        beat = _start(
            ["beat", "--schedule", str(tmp_path / "beat-schedule")], env, tmp_path / "beat.log"
        )
        try:
            started = manage("shell", "-c", START, env=env)
            assert started.returncode == 0, started.stderr
            deadline = time.monotonic() + 60
            while len(hook.received) < 2:
                assert worker.poll() is None and beat.poll() is None, "a process died"
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
                time.sleep(0.5)
        finally:
            _stop(beat)
            _stop(worker)
    first, second = hook.received[:2]
    assert first.signature_ok and second.signature_ok
    assert first.json["type"] == "instance.started"
    assert first.json["id"] == second.json["id"]
    assert (first.headers["X-Signoff-Attempt"], second.headers["X-Signoff-Attempt"]) == ("1", "2")
