"""End to end in the embedded default: a change committed by one process, its Slack message
posted by a real Celery worker to a local server speaking Slack's Web API."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.approvals.integrations.slack.fake_slack import FakeSlackServer
from tests.approvals.notify.live_server import seed, start_request
from tests.processes import BASE_DIR, child_env

pytestmark = pytest.mark.slow


def test_the_worker_posts_the_new_task_to_slack(tmp_path: Path) -> None:
    server = FakeSlackServer()
    with server as slack:
        slack.add_member("UROB", "rob@example.com")
        env = child_env(
            tmp_path,
            SLACK_BOT_TOKEN="xoxb-worker-test",
            SLACK_SIGNING_SECRET="secret",
            SLACK_API_URL=server.url + "/api/",
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
            instance = start_request(env, "Monitor")
            deadline = time.monotonic() + 60
            while not slack.called("chat.postMessage"):
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                time.sleep(0.3)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            log.close()
    post = slack.called("chat.postMessage")[0]
    assert post["channel"] == "UROB" and post["text"] == "New task: Review for “Monitor”"
    assert "https://signoff.example.com/tasks/" in post["blocks"][0]["text"]["text"]
    assert slack.called("users.lookupByEmail") == [{"email": "rob@example.com"}]
    assert instance
