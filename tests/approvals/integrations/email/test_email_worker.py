"""End to end in the embedded default: a change committed by one process, its e-mails sent by
a real Celery worker to a real SMTP server (aiosmtpd) after the commit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.approvals.integrations.email.smtp_server import smtp_sink
from tests.approvals.notify.live_server import seed, start_request
from tests.processes import BASE_DIR, child_env

pytestmark = pytest.mark.slow


def test_the_worker_sends_the_new_task_by_e_mail(tmp_path: Path) -> None:
    with smtp_sink() as smtp:
        env = child_env(
            tmp_path,
            EMAIL_URL=f"smtp://{smtp.host}:{smtp.port}?tls=false",
            EMAIL_FROM="Signoff <signoff@example.com>",
            SITE_URL="https://signoff.example.com",
        )
        seed(env)
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workflow_app", "worker", "--concurrency", "1"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            start_request(env, "Monitor")
            deadline = time.monotonic() + 60
            while not smtp.to("rob@example.com"):
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                time.sleep(0.3)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            log.close()
    (got,) = smtp.to("rob@example.com")
    assert got.message["Subject"].strip().startswith("[Signoff] Approve: Monitor")
    assert "https://signoff.example.com/tasks/" in got.text
    assert got.mail_from == "signoff@example.com"
