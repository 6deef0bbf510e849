"""The LangGraph example of docs/agents.md against a real Daphne: the graph asks and pauses in
one process, which exits; a person decides; another process resumes it from the checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.approvals.api.live_asks import call, seed_asks
from tests.approvals.notify.live_server import Daphne
from tests.processes import BASE_DIR, child_env

pytestmark = pytest.mark.slow


def run_phase(phase: str, daphne: Daphne, token: str, db: Path, env: dict) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.approvals.agents.refund_graph",
            phase,
            daphne.http,
            token,
            str(db),
            "thread-1",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_interrupt_ask_restart_and_resume_with_the_edited_arguments(tmp_path: Path) -> None:
    env = child_env(tmp_path)
    tokens = seed_asks(env)
    daphne = Daphne(env, tmp_path / "daphne.log").start()
    try:
        checkpoints = tmp_path / "checkpoints.sqlite"
        paused = run_phase("ask", daphne, tokens["bot"], checkpoints, env)
        ask_id = paused["ask_id"]
        status, request = call(daphne.http, "GET", f"/api/v1/instances/{ask_id}/", tokens["bot"])
        assert status == 200 and request["state"] == "review"
        task_id = request["open_tasks"][0]["id"]
        status, _ = call(
            daphne.http,
            "POST",
            f"/api/v1/tasks/{task_id}/decide/",
            tokens["fred"],
            {
                "decision": "APPROVE_WITH_CHANGES",
                "data": {"arguments": {"order": "1234", "amount": 90}},
            },
        )
        assert status == 200
        final = run_phase("resume", daphne, tokens["bot"], checkpoints, env)
        assert final["refunded"] == {"order": "1234", "amount": 90}
        assert final["ask_id"] == ask_id
        # The node ran twice (ask, then resume); the Idempotency-Key asked once.
        listed = call(
            daphne.http, "GET", "/api/v1/instances/?workflow=review-action", tokens["bot"]
        )[1]
        assert listed["count"] == 1
    finally:
        daphne.stop()
