"""The launcher starts web, worker and beat, and never leaves one of them behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts.demo import USERS
from tests.processes import BASE_DIR, child_env
from workflow_app import launch

LAUNCHER = str(BASE_DIR / "workflow_app" / "launch.py")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its parent; it holds nothing.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


class Launched:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.log_path = tmp_path / "launch.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, LAUNCHER, "run", "--port", str(self.port)],
            cwd=BASE_DIR,
            env=child_env(tmp_path / "var", HEARTBEAT_SECONDS="1"),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    def children(self) -> dict[str, int]:
        return {
            name: int(pid) for name, pid in re.findall(r"started (\w+) \(pid (\d+)\)", self.output)
        }

    def healthz(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def wait_until(self, condition: Callable[[], object], what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, self.output
            assert time.monotonic() < deadline, f"timed out waiting for {what}\n{self.output}"
            time.sleep(0.3)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in self.children().values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._log.close()


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Launched]:
    running = Launched(tmp_path)
    yield running
    running.close()


@pytest.mark.slow
def test_run_serves_and_ctrl_c_stops_everything(launched: Launched) -> None:
    launched.wait_until(lambda: (launched.healthz() or {}).get("status") == "ok", "healthy")
    assert set(launched.children()) == {"web", "worker", "beat"}
    # Beat sends the heartbeat task and the worker executes it: both are really running.
    launched.wait_until(
        lambda: (launched.healthz() or {}).get("worker", {}).get("last_seen"), "a heartbeat"
    )
    assert f"Demo users: {len(USERS)} created" in launched.output

    launched.process.send_signal(signal.SIGINT)
    assert launched.process.wait(timeout=30) == 0
    assert "all processes stopped" in launched.output
    assert not [name for name, pid in launched.children().items() if alive(pid)]
    assert launched.healthz() is None


@pytest.mark.slow
def test_a_dying_child_stops_the_others_and_fails(launched: Launched) -> None:
    launched.wait_until(lambda: len(launched.children()) == 3, "three children")
    os.kill(launched.children()["beat"], signal.SIGKILL)

    assert launched.process.wait(timeout=30) == 128 + signal.SIGKILL
    assert "beat exited with code -9; stopping the others" in launched.output
    assert not [name for name, pid in launched.children().items() if alive(pid)]


def test_port_in_use_is_detected() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert not launch._port_free("127.0.0.1", taken.getsockname()[1])
    assert launch._port_free("127.0.0.1", free_port())


def test_install_stamp_follows_pyproject(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n')
    monkeypatch.setattr(launch, "PYPROJECT", pyproject)
    first = launch._install_stamp()
    assert launch._install_stamp() == first
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["Django"]\n')
    assert launch._install_stamp() != first


def test_usage_error_needs_no_bootstrap() -> None:
    result = subprocess.run(
        [sys.executable, LAUNCHER, "serve"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "invalid choice: 'serve'" in result.stderr


def test_links_point_at_the_port_the_server_was_started_on() -> None:
    env = launch.child_environment({"PATH": "/bin"}, host="127.0.0.1", port=8200)
    assert env["SITE_URL"] == "http://localhost:8200"
    assert env["PATH"] == "/bin" and env["DJANGO_SETTINGS_MODULE"] == "workflow_app.settings"
    assert (
        launch.child_environment({}, host="10.1.2.3", port=80)["SITE_URL"] == "http://10.1.2.3:80"
    )
    assert (
        launch.child_environment({}, host="fd00::1", port=81)["SITE_URL"] == "http://[fd00::1]:81"
    )
    # An address the operator chose wins.
    chosen = {"SITE_URL": "https://signoff.example.com"}
    assert launch.child_environment(chosen, host="0.0.0.0", port=8200)["SITE_URL"] == (
        "https://signoff.example.com"
    )


def test_every_process_counts_its_metrics_in_one_folder_emptied_at_start(tmp_path: Path) -> None:
    env = launch.child_environment({"SIGNOFF_VAR_DIR": str(tmp_path)}, host="127.0.0.1", port=80)
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "metrics")
    chosen = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    assert launch.child_environment(chosen, host="127.0.0.1", port=80)[
        "PROMETHEUS_MULTIPROC_DIR"
    ] == str(tmp_path / "prom")
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"old run")
    (folder / "gauge_livesum_123.db").write_bytes(b"old run")
    (folder / "notes.txt").write_text("not ours")
    launch.clear_metrics_dir(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
