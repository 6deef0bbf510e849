"""In the embedded default a task sent by one process is executed by a real Celery worker.

No Redis, no PostgreSQL: the filesystem broker and the SQLite file in a fresh var/ directory,
exactly what a newcomer's first run uses.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import BASE_DIR, child_env, manage, migrate

CELERY = [sys.executable, "-m", "celery", "-A", "workflow_app"]
SEND_TASK = (
    "from approvals.tasks import record_heartbeat; record_heartbeat.delay(source='test'); "
    "print('sent')"
)


def heartbeat_seen(database: Path, source: str) -> bool:
    # Read-only and without Django: this is what another process sees once the worker committed.
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        row = db.execute("SELECT 1 FROM approvals_heartbeat WHERE source = ?", (source,)).fetchone()
    return row is not None


@pytest.mark.slow
def test_task_sent_in_one_process_is_executed_by_the_worker(tmp_path: Path) -> None:
    env = child_env(tmp_path)
    migrate(env)
    database = tmp_path / "signoff.sqlite3"
    assert not heartbeat_seen(database, "test")

    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [*CELERY, "worker", "--loglevel", "INFO", "--concurrency", "1"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        sent = manage("shell", "-c", SEND_TASK, env=env)
        assert sent.returncode == 0, sent.stderr

        deadline = time.monotonic() + 45
        while not heartbeat_seen(database, "test"):
            assert worker.poll() is None, "the worker died; see worker.log"
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.5)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
